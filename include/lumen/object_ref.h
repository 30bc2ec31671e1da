// lumen::ObjectRef<T> — a handle to a value that exists, or will, somewhere in the cluster.
#pragma once

#include <memory>
#include <string>
#include <utility>

#include "lumen/detail/counted_ref.h"
#include "lumen/detail/runtime.h"
#include "lumen/detail/serializer.h"

namespace lumen {
namespace detail {

/// Binary ids as printable hex.
inline std::string HexOf(const std::string& binary) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(binary.size() * 2);
  for (unsigned char c : binary) {
    out.push_back(kHex[c >> 4]);
    out.push_back(kHex[c & 15]);
  }
  return out;
}

}  // namespace detail

/// A copyable handle to an object of type T. Every live copy counts as a reference: the
/// object stays available while any copy exists anywhere it was handed. Copies can be
/// stored in containers, serialized into arguments of other tasks, and returned from
/// tasks. Thread-safe to copy and destroy concurrently.
template <typename T>
class ObjectRef {
 public:
  using ValueType = T;

  /// A nil reference; Get on it throws ObjectLostError.
  ObjectRef() = default;

  /// The object id in hex: printable, stable across processes.
  std::string ID() const { return detail::HexOf(ref_.data().id); }
  bool IsNil() const { return ref_.data().id.empty(); }

  /// Same as lumen::Get(*this): blocks until the value is ready; the value is immutable.
  std::shared_ptr<const T> Get() const;

  bool operator==(const ObjectRef& other) const { return Data().id == other.Data().id; }
  bool operator!=(const ObjectRef& other) const { return !(*this == other); }

  /// Internal: adopt a reference that the runtime already counted for this handle.
  static ObjectRef Adopt(detail::RefData data) {
    ObjectRef ref;
    ref.ref_ = detail::CountedRef::Adopt(std::move(data));
    return ref;
  }
  /// Internal: a new handle for `data`, counted now.
  static ObjectRef FromData(detail::RefData data) {
    ObjectRef ref;
    ref.ref_ = detail::CountedRef::FromData(std::move(data));
    return ref;
  }
  const detail::RefData& Data() const { return ref_.data(); }

 private:
  detail::CountedRef ref_;
};

}  // namespace lumen

// ObjectRefs serialize as [id, owner]; serializing one inside a value records it as a
// nested reference, deserializing one makes this process a borrower.
namespace msgpack {
MSGPACK_API_VERSION_NAMESPACE(MSGPACK_DEFAULT_API_NS) {
  namespace adaptor {
  template <typename T>
  struct pack<lumen::ObjectRef<T>> {
    template <typename Stream>
    packer<Stream>& operator()(packer<Stream>& o, const lumen::ObjectRef<T>& ref) const {
      lumen::detail::OnRefSerialized(ref.Data());
      o.pack_array(2);
      o.pack(ref.Data().id);
      o.pack(ref.Data().owner);
      return o;
    }
  };
  template <typename T>
  struct convert<lumen::ObjectRef<T>> {
    const msgpack::object& operator()(const msgpack::object& o,
                                      lumen::ObjectRef<T>& ref) const {
      if (o.type != msgpack::type::ARRAY || o.via.array.size != 2) {
        throw msgpack::type_error();
      }
      lumen::detail::RefData data;
      o.via.array.ptr[0].convert(data.id);
      o.via.array.ptr[1].convert(data.owner);
      ref = lumen::ObjectRef<T>::FromData(std::move(data));
      return o;
    }
  };
  }  // namespace adaptor
}
}  // namespace msgpack
