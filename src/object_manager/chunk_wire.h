// The chunk channel between object managers: a plain TCP stream, one request at a time
// per connection, so that object bytes go from one node's store to the socket and from
// the socket into the other node's store with no copy in between (gRPC would add a
// serialization, a parse and a copy on each side).
//
//   reader ── Request  (magic, version, object id, offset, length) ──────────► server
//   reader ◄─ Reply    (magic, status, object size, body length) + body ────── server
//
// The body is the bytes [offset, offset + length) clipped to the object (status kOk), or
// why the object cannot be read there (kNotHere). Integers are little-endian. A peer that
// sends anything else is not an object manager of this version: the connection closes.
#pragma once

#include <endian.h>

#include <array>
#include <cstdint>
#include <cstring>
#include <optional>

#include "common/ids.h"

namespace lumen::object_manager::wire {

constexpr uint32_t kMagic = 0x434f4d4c;  // "LMOC"
constexpr uint16_t kVersion = 1;
/// The most one request may ask for (the server clips to it; the reader never asks more).
constexpr uint64_t kMaxChunkBytes = 64ull << 20;

constexpr size_t kRequestBytes = 8 + ObjectId::Size() + 16;
constexpr size_t kReplyBytes = 24;

enum Status : uint32_t { kOk = 0, kNotHere = 1 };

struct Request {
  ObjectId id;
  uint64_t offset = 0;
  uint64_t length = 0;
};

struct Reply {
  uint32_t status = kOk;
  uint64_t object_size = 0;
  uint64_t body = 0;
};

namespace detail {
template <typename T>
void Put(uint8_t*& p, T value) {
  if constexpr (sizeof(T) == 2) value = htole16(value);
  if constexpr (sizeof(T) == 4) value = htole32(value);
  if constexpr (sizeof(T) == 8) value = htole64(value);
  std::memcpy(p, &value, sizeof value);
  p += sizeof value;
}
template <typename T>
T Take(const uint8_t*& p) {
  T value;
  std::memcpy(&value, p, sizeof value);
  p += sizeof value;
  if constexpr (sizeof(T) == 2) value = le16toh(value);
  if constexpr (sizeof(T) == 4) value = le32toh(value);
  if constexpr (sizeof(T) == 8) value = le64toh(value);
  return value;
}
}  // namespace detail

inline std::array<uint8_t, kRequestBytes> Encode(const Request& request) {
  std::array<uint8_t, kRequestBytes> out{};
  uint8_t* p = out.data();
  detail::Put<uint32_t>(p, kMagic);
  detail::Put<uint16_t>(p, kVersion);
  detail::Put<uint16_t>(p, 0);
  std::string id = request.id.Binary();
  std::memcpy(p, id.data(), id.size());
  p += id.size();
  detail::Put<uint64_t>(p, request.offset);
  detail::Put<uint64_t>(p, request.length);
  return out;
}

/// nullopt: not a request of this protocol version.
inline std::optional<Request> DecodeRequest(const std::array<uint8_t, kRequestBytes>& in) {
  const uint8_t* p = in.data();
  if (detail::Take<uint32_t>(p) != kMagic || detail::Take<uint16_t>(p) != kVersion) {
    return std::nullopt;
  }
  detail::Take<uint16_t>(p);
  Request request;
  request.id = ObjectId::FromBinary(
      std::string_view(reinterpret_cast<const char*>(p), ObjectId::Size()));
  p += ObjectId::Size();
  request.offset = detail::Take<uint64_t>(p);
  request.length = detail::Take<uint64_t>(p);
  return request;
}

inline std::array<uint8_t, kReplyBytes> Encode(const Reply& reply) {
  std::array<uint8_t, kReplyBytes> out{};
  uint8_t* p = out.data();
  detail::Put<uint32_t>(p, kMagic);
  detail::Put<uint32_t>(p, reply.status);
  detail::Put<uint64_t>(p, reply.object_size);
  detail::Put<uint64_t>(p, reply.body);
  return out;
}

/// nullopt: not a reply of this protocol.
inline std::optional<Reply> DecodeReply(const std::array<uint8_t, kReplyBytes>& in) {
  const uint8_t* p = in.data();
  if (detail::Take<uint32_t>(p) != kMagic) return std::nullopt;
  Reply reply;
  reply.status = detail::Take<uint32_t>(p);
  reply.object_size = detail::Take<uint64_t>(p);
  reply.body = detail::Take<uint64_t>(p);
  if (reply.status != kOk && reply.status != kNotHere) return std::nullopt;
  return reply;
}

}  // namespace lumen::object_manager::wire
