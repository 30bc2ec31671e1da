// What the core worker stores for an object: a serialized value, or an error.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common.pb.h"

namespace lumen::core {

/// Why an object holds an error. Values travel in rpc::ErrorInfo::kind.
enum class ErrorKind : int {
  kNone = 0,
  kTaskError = 1,
  kWorkerCrashed = 2,
  kFunctionNotFound = 3,
  kObjectLost = 4,
  kOwnerDied = 5,
  kActorDied = 6,
  kObjectStoreFull = 7,
  kInternal = 8,
  kTaskCancelled = 9,
};

/// Immutable once stored; shared by every reader. The value is one of: inline bytes in
/// `data`; in a node's store (`in_store`, a marker kept by owners and borrowers, naming
/// the node: another node's objects are pulled here before they are read); or a pinned
/// view into this node's store's shared memory (`view`, what Get hands out).
struct StoredObject {
  std::string data;                       // msgpack bytes (empty on error)
  bool in_store = false;                  // the bytes are in a node's object store:
  std::string store_node;                 // that node's id (binary), the primary copy
  uint64_t store_size = 0;                // and the value's size there (0: unknown)
  const uint8_t* view = nullptr;          // pinned bytes in shared memory, or nullptr
  uint64_t view_size = 0;
  std::shared_ptr<const void> pin;        // keeps `view` mapped and pinned
  ErrorKind error = ErrorKind::kNone;
  std::string error_type;                 // TaskError: the original exception type
  std::string error_message;
  std::vector<rpc::ObjectRefProto> nested;

  bool IsError() const { return error != ErrorKind::kNone; }
  /// The serialized value (a view, or the inline bytes). Empty for store markers.
  std::string_view Bytes() const {
    if (view != nullptr) return {reinterpret_cast<const char*>(view), size_t(view_size)};
    return data;
  }

  static std::shared_ptr<const StoredObject> MakeError(ErrorKind kind, std::string message,
                                                       std::string type = "") {
    auto object = std::make_shared<StoredObject>();
    object->error = kind;
    object->error_message = std::move(message);
    object->error_type = std::move(type);
    return object;
  }
  void ToErrorInfo(rpc::ErrorInfo* info) const {
    info->set_kind(int(error));
    info->set_type_name(error_type);
    info->set_message(error_message);
  }
  /// A value (`data`, or a marker when `in_store`, held by `store_node`) or an error, as
  /// a reply carries it; mutable until the caller stores it.
  static std::shared_ptr<StoredObject> FromProto(const std::string& data, bool has_error,
                                                 const rpc::ErrorInfo& info,
                                                 bool in_store = false,
                                                 const std::string& store_node = "",
                                                 uint64_t store_size = 0) {
    auto object = std::make_shared<StoredObject>();
    if (has_error) {
      object->error = ErrorKind(info.kind() == 0 ? int(ErrorKind::kInternal) : info.kind());
      object->error_type = info.type_name();
      object->error_message = info.message();
    } else {
      object->data = data;
      object->in_store = in_store;
      object->store_node = store_node;
      object->store_size = store_size;
    }
    return object;
  }
};

using ObjectPtr = std::shared_ptr<const StoredObject>;

}  // namespace lumen::core
