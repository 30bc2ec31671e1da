// Typed fixed-size ids (job, node, worker, task, actor, object, lease).
#pragma once

#include <array>
#include <cstdint>
#include <cstring>
#include <functional>
#include <string>
#include <string_view>

namespace lumen {

/// Fills `out` with bytes that are unique across processes and time (random seed per
/// process, then a counter). Thread-safe.
void FillUniqueBytes(uint8_t* out, size_t size);

/// Two lowercase hex digits per byte.
inline std::string HexEncode(std::string_view bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char b : bytes) {
    out.push_back(kHex[b >> 4]);
    out.push_back(kHex[b & 15]);
  }
  return out;
}

/// CRTP base of every id: kSize raw bytes, all-zero is Nil.
template <typename Derived, size_t kSize>
class BaseId {
 public:
  static constexpr size_t Size() { return kSize; }
  static Derived Nil() { return Derived(); }
  static Derived FromRandom() {
    Derived id;
    FillUniqueBytes(id.bytes_.data(), kSize);
    return id;
  }
  /// Wrong-sized input gives Nil; check with IsNil or the size first.
  static Derived FromBinary(std::string_view binary) {
    Derived id;
    if (binary.size() == kSize) std::memcpy(id.bytes_.data(), binary.data(), kSize);
    return id;
  }
  /// Wrong-sized or non-hex input gives Nil.
  static Derived FromHex(std::string_view hex) {
    Derived id;
    if (hex.size() != kSize * 2) return id;
    auto nibble = [](char c) -> int {
      if (c >= '0' && c <= '9') return c - '0';
      if (c >= 'a' && c <= 'f') return c - 'a' + 10;
      if (c >= 'A' && c <= 'F') return c - 'A' + 10;
      return -1;
    };
    for (size_t i = 0; i < kSize; ++i) {
      int hi = nibble(hex[2 * i]), lo = nibble(hex[2 * i + 1]);
      if (hi < 0 || lo < 0) return Derived();
      id.bytes_[i] = uint8_t(hi << 4 | lo);
    }
    return id;
  }
  bool IsNil() const {
    for (uint8_t b : bytes_)
      if (b != 0) return false;
    return true;
  }
  std::string Binary() const {
    return std::string(reinterpret_cast<const char*>(bytes_.data()), kSize);
  }
  std::string Hex() const {
    return HexEncode(std::string_view(reinterpret_cast<const char*>(bytes_.data()), kSize));
  }
  const uint8_t* data() const { return bytes_.data(); }
  bool operator==(const BaseId& o) const { return bytes_ == o.bytes_; }
  bool operator!=(const BaseId& o) const { return bytes_ != o.bytes_; }
  bool operator<(const BaseId& o) const { return bytes_ < o.bytes_; }
  template <typename H>
  friend H AbslHashValue(H h, const BaseId& id) {
    return H::combine_contiguous(std::move(h), id.bytes_.data(), kSize);
  }

 protected:
  std::array<uint8_t, kSize> bytes_{};
};

class JobId : public BaseId<JobId, 4> {
 public:
  static JobId FromInt(uint32_t value) {
    JobId id;
    std::memcpy(id.bytes_.data(), &value, 4);
    return id;
  }
  uint32_t ToInt() const {
    uint32_t value;
    std::memcpy(&value, bytes_.data(), 4);
    return value;
  }
};
class NodeId : public BaseId<NodeId, 16> {};
class WorkerId : public BaseId<WorkerId, 16> {};
class LeaseId : public BaseId<LeaseId, 16> {};
class TaskId : public BaseId<TaskId, 16> {};
class ActorId : public BaseId<ActorId, 16> {};
class PlacementGroupId : public BaseId<PlacementGroupId, 16> {};

/// An object is the index-th return (index >= 1) or put (index has kPutBit) of a task,
/// or (index 0) the handles of an actor: counted like an object's refs, never stored.
class ObjectId : public BaseId<ObjectId, 20> {
 public:
  static constexpr uint32_t kPutBit = 0x80000000u;
  static ObjectId ForTaskReturn(const TaskId& task, uint32_t index) {
    return Make(task, index);
  }
  static ObjectId ForPut(const TaskId& task, uint32_t put_index) {
    return Make(task, put_index | kPutBit);
  }
  static ObjectId ForActorHandle(const ActorId& actor) {
    return Make(TaskId::FromBinary(actor.Binary()), 0);
  }
  /// Stands for an actor's handles (ForActorHandle): the actor is Actor().
  bool IsActorHandle() const { return !IsNil() && Index() == 0; }
  ActorId Actor() const { return ActorId::FromBinary(Task().Binary()); }
  TaskId Task() const {
    return TaskId::FromBinary(
        std::string_view(reinterpret_cast<const char*>(bytes_.data()), 16));
  }
  /// Made by Put (not a task's return).
  bool IsPut() const { return (Index() & kPutBit) != 0; }

 private:
  uint32_t Index() const {
    uint32_t index;
    std::memcpy(&index, bytes_.data() + 16, 4);
    return index;
  }
  static ObjectId Make(const TaskId& task, uint32_t index) {
    ObjectId id;
    std::memcpy(id.bytes_.data(), task.data(), 16);
    std::memcpy(id.bytes_.data() + 16, &index, 4);
    return id;
  }
};

static_assert(sizeof(JobId) == 4 && sizeof(NodeId) == 16 && sizeof(ObjectId) == 20);

}  // namespace lumen
