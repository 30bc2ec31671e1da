// What the object manager needs of its node's store (the raylet's StoreServer).
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/ids.h"

namespace lumen::object_manager {

/// A sealed object pinned in this process's mapping of the store.
struct PinnedObject {
  const uint8_t* data = nullptr;
  uint64_t size = 0;
};

/// Callbacks may run on any thread.
class LocalStore {
 public:
  virtual ~LocalStore() = default;
  /// Whether a sealed copy of `id` is here.
  virtual void HasSealed(const ObjectId& id, std::function<void(bool)> done) = 0;
  /// Reserves a secondary copy of `size` bytes and gives where to write it (mapped in
  /// this process until it is sealed or aborted). AlreadyExists when the id is known.
  virtual void CreateCopy(const ObjectId& id, uint64_t size, const std::string& owner,
                          std::function<void(absl::StatusOr<uint8_t*>)> done) = 0;
  /// Seals (or, `abort`, drops) a copy made by CreateCopy.
  virtual void FinishCopy(const ObjectId& id, bool abort,
                          std::function<void(absl::Status)> done) = 0;
  /// Pins sealed `id` where it is mapped in this process until Unpin (which every
  /// successful Pin gets once). NotFound, saying why, when it is not here.
  virtual void Pin(const ObjectId& id, std::function<void(absl::StatusOr<PinnedObject>)> done) = 0;
  virtual void Unpin(const ObjectId& id) = 0;
};

}  // namespace lumen::object_manager
