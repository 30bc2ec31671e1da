// Large flat values — std::string, and std::vector<E> of a trivially copyable E — travel
// as one raw block instead of element by element, so that they are written with one
// memcpy and can be read in place from shared memory.
//
// Format (a msgpack ext32 value, so the bytes stay valid msgpack):
//   0xc9 | body length (uint32, big endian) | type 0x4c | element size (uint16, little
//   endian) | elements ... | (strings only) a trailing 0 byte
// The elements start 8 bytes in: aligned for any E up to 8-byte alignment, since the store
// places objects at 64-byte boundaries.
#pragma once

#include <cstdint>
#include <cstring>
#include <memory>
#include <new>
#include <string>
#include <type_traits>
#include <vector>

namespace lumen::detail {

inline constexpr size_t kBlobHeader = 8;
inline constexpr int8_t kBlobExtType = 0x4c;

template <typename T>
struct BlobTraits : std::false_type {};
template <typename E>
struct BlobTraits<std::vector<E>>
    : std::bool_constant<std::is_trivially_copyable_v<E> && !std::is_same_v<E, bool> &&
                         alignof(E) <= 8 && sizeof(E) < 65536> {
  using Element = E;
  static constexpr bool kTerminated = false;
};
template <>
struct BlobTraits<std::string> : std::true_type {
  using Element = char;
  static constexpr bool kTerminated = true;
};

/// True for the types that use the raw format.
template <typename T>
inline constexpr bool kIsBlob = BlobTraits<T>::value;

/// Bytes of the serialized form; 0 when the value is too large for one ext32 body.
template <typename T>
size_t BlobSize(const T& value) {
  using E = typename BlobTraits<T>::Element;
  uint64_t body = 2 + uint64_t(value.size()) * sizeof(E) + (BlobTraits<T>::kTerminated ? 1 : 0);
  if (body > 0xffffffffull) return 0;
  return size_t(6 + body);
}

/// Writes the serialized form (BlobSize bytes) to `out`.
template <typename T>
void WriteBlob(const T& value, char* out) {
  using E = typename BlobTraits<T>::Element;
  size_t payload = value.size() * sizeof(E);
  uint32_t body = uint32_t(BlobSize(value) - 6);
  out[0] = char(0xc9);
  out[1] = char(body >> 24);
  out[2] = char(body >> 16);
  out[3] = char(body >> 8);
  out[4] = char(body);
  out[5] = char(kBlobExtType);
  out[6] = char(sizeof(E) & 0xff);
  out[7] = char(sizeof(E) >> 8);
  if (payload > 0) std::memcpy(out + kBlobHeader, value.data(), payload);
  if constexpr (BlobTraits<T>::kTerminated) out[kBlobHeader + payload] = '\0';
}

/// The number of elements in a serialized blob of T at `data`, or -1 when the bytes are
/// not one (another encoding, or another element size).
template <typename T>
int64_t BlobCount(const char* data, size_t size) {
  using E = typename BlobTraits<T>::Element;
  if (size < kBlobHeader || uint8_t(data[0]) != 0xc9 || data[5] != kBlobExtType) return -1;
  uint64_t body = (uint64_t(uint8_t(data[1])) << 24) | (uint64_t(uint8_t(data[2])) << 16) |
                  (uint64_t(uint8_t(data[3])) << 8) | uint64_t(uint8_t(data[4]));
  size_t element = size_t(uint8_t(data[6])) | (size_t(uint8_t(data[7])) << 8);
  size_t tail = BlobTraits<T>::kTerminated ? 1 : 0;
  if (element != sizeof(E) || body + 6 != size || body < 2 + tail) return -1;
  if ((body - 2 - tail) % sizeof(E) != 0) return -1;
  return int64_t((body - 2 - tail) / sizeof(E));
}

/// Copies a serialized blob into a new T.
template <typename T>
T ReadBlob(const char* data, int64_t count) {
  using E = typename BlobTraits<T>::Element;
  T value;
  value.resize(size_t(count));
  if (count > 0) std::memcpy(value.data(), data + kBlobHeader, size_t(count) * sizeof(E));
  return value;
}

// Views: a const T whose storage is the serialized bytes themselves.
//
// Why the layout is forged: the API hands out `std::shared_ptr<const std::vector<E>>` and
// `std::shared_ptr<const std::string>` (docs/api.md), and the standard library has no way to
// make a std::vector or std::string over memory it does not own: a conforming in-place view
// (a custom or pmr allocator, std::span) is another type, and would change what `Get`
// returns for every user. So the view relies on libstdc++ keeping both as three words
// (begin, end, capacity / pointer, length, capacity), which ViewLayoutHolds checks on a real
// object before the first view is made; where it does not hold (another library or ABI),
// Get copies instead. A view owns nothing and is never destroyed as a T: its holder is freed
// instead, so the shared bytes are never handed to the allocator. It is only ever reachable
// as `const T`, so no member that could write, grow or free the bytes can be called on it
// short of a const_cast; copying it (`auto v = *ref.Get();`, or a std::move of it, which copies) gives an
// ordinary value the caller owns.
template <typename T>
bool ViewLayoutHolds() {
#if defined(__GLIBCXX__) && defined(_GLIBCXX_USE_CXX11_ABI) && _GLIBCXX_USE_CXX11_ABI
  static const bool holds = [] {
    using E = typename BlobTraits<T>::Element;
    if (sizeof(T) < 3 * sizeof(void*)) return false;
    T probe;
    probe.resize(40);
    probe.reserve(100);
    const unsigned char* raw = reinterpret_cast<const unsigned char*>(&probe);
    E* words[3];
    std::memcpy(words, raw, sizeof(words));
    if constexpr (std::is_same_v<T, std::string>) {
      size_t length, capacity;
      std::memcpy(&length, raw + sizeof(void*), sizeof(size_t));
      std::memcpy(&capacity, raw + 2 * sizeof(void*), sizeof(size_t));
      return words[0] == probe.data() && length == probe.size() &&
             capacity == probe.capacity();
    } else {
      return words[0] == probe.data() && words[1] == probe.data() + probe.size() &&
             words[2] == probe.data() + probe.capacity();
    }
  }();
  return holds;
#else
  return false;
#endif
}

/// A const T over `count` elements of a serialized blob at `data`, kept valid by `keep`.
template <typename T>
std::shared_ptr<const T> ViewBlob(const char* data, int64_t count, std::shared_ptr<const void> keep) {
  using E = typename BlobTraits<T>::Element;
  struct Holder {
    alignas(T) unsigned char storage[sizeof(T)];
    std::shared_ptr<const void> keep;
  };
  auto* holder = new Holder{{}, std::move(keep)};
  T* value = new (holder->storage) T();
  E* begin = reinterpret_cast<E*>(const_cast<char*>(data + kBlobHeader));
  if constexpr (std::is_same_v<T, std::string>) {
    size_t length = size_t(count);
    std::memcpy(holder->storage, &begin, sizeof(begin));
    std::memcpy(holder->storage + sizeof(void*), &length, sizeof(length));
    std::memcpy(holder->storage + 2 * sizeof(void*), &length, sizeof(length));
  } else {
    E* words[3] = {begin, begin + count, begin + count};
    std::memcpy(holder->storage, words, sizeof(words));
  }
  return std::shared_ptr<const T>(static_cast<const T*>(value),
                                  [holder](const T*) { delete holder; });
}

}  // namespace lumen::detail
