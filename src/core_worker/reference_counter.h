// Counts the references this process holds to objects, and frees what nothing uses.
#pragma once

#include <functional>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "common/mutex.h"
#include "common/ids.h"

namespace lumen::core {

/// Local reference counting: ObjectRef handles in this process, plus pending tasks that
/// take the object as an argument. When both reach zero the `on_free` callback runs
/// (outside the lock) and the entry is forgotten.
///
/// An owned object whose reference was handed to another process (serialized inside a
/// value) is marked escaped and is never freed here: the borrower protocol that reports
/// remote references back to the owner is the object-store component's work. Thread-safe.
class ReferenceCounter {
 public:
  /// `on_free(id, owned)`: nothing refers to `id` any more; `owned` when this process
  /// owned it (and must free its copies everywhere).
  using OnFree = std::function<void(const ObjectId&, bool owned)>;
  explicit ReferenceCounter(OnFree on_free)
      : on_free_(std::move(on_free)) {}

  /// A new object owned here, with one handle (the ObjectRef returned to the user).
  void AddOwned(const ObjectId& id);
  /// One more handle. `owner` is recorded for borrowed objects seen the first time.
  void AddLocal(const ObjectId& id, const std::string& owner);
  void RemoveLocal(const ObjectId& id);
  void AddTaskUse(const ObjectId& id);
  void RemoveTaskUse(const ObjectId& id);
  void MarkEscaped(const ObjectId& id);

  /// True while this process owns the object and something still refers to it.
  bool IsOwnedAndLive(const ObjectId& id);
  /// The owner endpoint of a borrowed object ("" when unknown or owned here).
  std::string OwnerOf(const ObjectId& id);
  size_t NumTracked();

 private:
  struct Entry {
    int64_t local = 0;
    int64_t task_uses = 0;
    bool owned = false;
    bool escaped = false;
    std::string owner;
  };
  void MaybeFree(const ObjectId& id, Entry& entry, bool* freed, bool* owned)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);

  OnFree on_free_;
  Mutex mutex_;
  absl::flat_hash_map<ObjectId, Entry> entries_ ABSL_GUARDED_BY(mutex_);
};

}  // namespace lumen::core
