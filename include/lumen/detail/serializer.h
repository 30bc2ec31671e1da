// msgpack-based serialization of values, with a compile-time check that names the type
// that cannot be serialized.
#pragma once

#include <array>
#include <cstdint>
#include <deque>
#include <list>
#include <map>
#include <msgpack.hpp>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <type_traits>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "lumen/detail/blob.h"
#include "lumen/detail/runtime.h"

namespace lumen {
template <typename T>
class ObjectRef;
template <typename T>
class ActorHandle;
}  // namespace lumen

namespace lumen::detail {

template <typename T, typename = void>
struct HasMsgpackMembers : std::false_type {};
template <typename T>
struct HasMsgpackMembers<
    T, std::void_t<decltype(std::declval<const T&>().msgpack_pack(
           std::declval<msgpack::packer<msgpack::sbuffer>&>()))>> : std::true_type {};

/// IsSerializable<T>: the types listed in API.md, recursively, plus user types with
/// LUMEN_SERIALIZE.
template <typename T>
struct IsSerializable
    : std::bool_constant<std::is_arithmetic_v<T> || std::is_enum_v<T> ||
                         HasMsgpackMembers<T>::value> {};
template <>
struct IsSerializable<std::string> : std::true_type {};
template <typename T, typename A>
struct IsSerializable<std::vector<T, A>> : IsSerializable<T> {};
template <typename T, typename A>
struct IsSerializable<std::deque<T, A>> : IsSerializable<T> {};
template <typename T, typename A>
struct IsSerializable<std::list<T, A>> : IsSerializable<T> {};
template <typename T, size_t N>
struct IsSerializable<std::array<T, N>> : IsSerializable<T> {};
template <typename T, typename C, typename A>
struct IsSerializable<std::set<T, C, A>> : IsSerializable<T> {};
template <typename T, typename H, typename E, typename A>
struct IsSerializable<std::unordered_set<T, H, E, A>> : IsSerializable<T> {};
template <typename K, typename V, typename C, typename A>
struct IsSerializable<std::map<K, V, C, A>>
    : std::bool_constant<IsSerializable<K>::value && IsSerializable<V>::value> {};
template <typename K, typename V, typename H, typename E, typename A>
struct IsSerializable<std::unordered_map<K, V, H, E, A>>
    : std::bool_constant<IsSerializable<K>::value && IsSerializable<V>::value> {};
template <typename A, typename B>
struct IsSerializable<std::pair<A, B>>
    : std::bool_constant<IsSerializable<A>::value && IsSerializable<B>::value> {};
template <typename... Ts>
struct IsSerializable<std::tuple<Ts...>>
    : std::bool_constant<(IsSerializable<Ts>::value && ...)> {};
template <typename T>
struct IsSerializable<std::optional<T>> : IsSerializable<T> {};
template <typename T>
struct IsSerializable<ObjectRef<T>> : std::true_type {};
template <typename T>
struct IsSerializable<ActorHandle<T>> : std::true_type {};

/// Instantiating this with a type that cannot be serialized fails to compile, and the
/// compiler's message names the type in "AssertSerializable<T>".
template <typename T>
struct AssertSerializable {
  static_assert(IsSerializable<T>::value,
                "lumen: this type cannot be serialized. Use the types listed in docs/api.md "
                "(Serialization), "
                "or add LUMEN_SERIALIZE(field1, field2, ...) to the struct (see the "
                "AssertSerializable<T> in this message for the type)");
  static constexpr bool value = true;
};

/// Serializes `value`; ObjectRefs met inside are appended to `nested`.
template <typename T>
std::string Serialize(const T& value, std::vector<RefData>* nested) {
  static_assert(AssertSerializable<T>::value);
  if constexpr (kIsBlob<T>) {
    if (size_t size = BlobSize(value); size > 0) {
      std::string out(size, '\0');
      WriteBlob(value, out.data());
      return out;
    }
  }
  msgpack::sbuffer buffer;
  if constexpr (IsSerializable<T>::value) {
    PushRefCollector(nested);
    try {
      msgpack::pack(buffer, value);
    } catch (...) {
      PopRefCollector();
      throw;
    }
    PopRefCollector();
  }
  return std::string(buffer.data(), buffer.size());
}

/// Serialize, then hold every ref in `nested` once (HoldRefs) so that they outlive
/// `value`; whoever takes `nested` releases the holds.
template <typename T>
std::string SerializeAndHold(const T& value, std::vector<RefData>* nested) {
  std::string out = Serialize<T>(value, nested);
  HoldRefs(*nested);
  return out;
}

/// Deserializes a value. Throws msgpack::type_error (or another std::exception) on bytes
/// that are not a T.
template <typename T>
T Deserialize(const char* data, size_t size) {
  static_assert(AssertSerializable<T>::value);
  if constexpr (kIsBlob<T>) {
    if (int64_t count = BlobCount<T>(data, size); count >= 0) return ReadBlob<T>(data, count);
  }
  msgpack::object_handle handle = msgpack::unpack(data, size);
  if constexpr (std::is_default_constructible_v<T>) {
    T value{};
    handle.get().convert(value);
    return value;
  } else {
    return handle.get().as<T>();
  }
}

/// The serialized form of "no value" (what a void function returns).
inline std::string SerializeNil() {
  msgpack::sbuffer buffer;
  msgpack::pack(buffer, msgpack::type::nil_t());
  return std::string(buffer.data(), buffer.size());
}

}  // namespace lumen::detail

/// Makes a struct serializable: list its data members, e.g. LUMEN_SERIALIZE(x, y, name).
/// The struct must be default-constructible.
#define LUMEN_SERIALIZE(...) MSGPACK_DEFINE(__VA_ARGS__)
