// The in-process object store of a core worker: owned values and cached borrowed ones.
#pragma once

#include <chrono>
#include <functional>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "common/mutex.h"
#include "common/ids.h"
#include "common/waker.h"
#include "core_worker/stored_object.h"

namespace lumen::core {

/// Where objects live in a process. The shared-memory node store (a later component)
/// implements the same interface for large values.
class ObjectStore {
 public:
  virtual ~ObjectStore() = default;
  /// Stores (or replaces) an object and wakes whoever waits for it.
  virtual void Put(const ObjectId& id, ObjectPtr object) = 0;
  /// The object, or nullptr when it is not here (yet).
  virtual ObjectPtr GetIfReady(const ObjectId& id) = 0;
  virtual void Erase(const ObjectId& id) = 0;
};

/// Thread-safe. Callbacks registered with OnReady run outside the store's lock, on the
/// thread that stores the object (or the caller's, when it is already there).
class MemoryStore final : public ObjectStore {
 public:
  using Callback = std::function<void(ObjectPtr)>;

  void Put(const ObjectId& id, ObjectPtr object) override;
  ObjectPtr GetIfReady(const ObjectId& id) override;
  void Erase(const ObjectId& id) override;

  /// Runs `callback` once the object is here. At Shutdown, pending callbacks get nullptr.
  void OnReady(const ObjectId& id, Callback callback);

  /// How a waiter sleeps instead of on the store's condition variable: `sleep` blocks
  /// until `waker` is woken (every Put from another thread wakes it), `deadline`, or it
  /// stored objects itself (reading the connection their replies come on); false when it
  /// cannot any more (the waiter then sleeps on the condition variable).
  struct Sleeper {
    std::shared_ptr<Waker> waker;
    std::function<bool(std::chrono::steady_clock::time_point deadline)> sleep;
  };

  /// Waits until at least `num_required` of `ids` are here, or `deadline`, or Shutdown.
  /// Fills `out` (same order; nullptr = not ready). Returns the number ready.
  size_t Wait(const std::vector<ObjectId>& ids, size_t num_required,
              std::chrono::steady_clock::time_point deadline, std::vector<ObjectPtr>* out,
              const Sleeper* sleeper = nullptr);

  /// Wakes every waiter and fails every callback; later waits return at once.
  void Shutdown();
  size_t Size();

 private:
  Mutex mutex_;
  CondVar ready_;
  absl::flat_hash_map<ObjectId, ObjectPtr> objects_ ABSL_GUARDED_BY(mutex_);
  absl::flat_hash_map<ObjectId, std::vector<Callback>> callbacks_ ABSL_GUARDED_BY(mutex_);
  bool shutdown_ ABSL_GUARDED_BY(mutex_) = false;
  std::vector<std::shared_ptr<Waker>> sleepers_ ABSL_GUARDED_BY(mutex_);  // Sleeper wakers
};

}  // namespace lumen::core
