// Counts the references to objects that this process holds or owns, and frees what
// nothing uses any more — here and, through the borrower protocol, across processes.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "common.pb.h"
#include "common/ids.h"
#include "common/mutex.h"

namespace lumen::core {

/// One entry per object this process owns or borrows. An object stays while any of these
/// is non-zero:
///  - local: ObjectRef handles in this process;
///  - task_uses: pending tasks that take it as an argument (or nested in one), and
///    short-lived holds (a task result's refs until the caller has them);
///  - contained: objects tracked here whose value holds its ref (a Put value, a task
///    result), each kept while that outer object is;
///  - borrowers (owner only): other processes registered as holding it, with a count each.
///
/// Borrowing: a process that deserializes a ref owned elsewhere has an unregistered
/// borrowed entry; `TakeUnregistered` hands those out so the core worker registers them
/// with their owners (while the container the ref came from is still held), and when the
/// entry is freed the callback says how many registrations to give back. Thread-safe;
/// `on_free` runs outside the lock, once per freed entry.
class ReferenceCounter {
 public:
  struct Freed {
    ObjectId id;
    bool owned = false;         // owned here: free its copies everywhere
    std::string owner;          // borrowed: the owner's endpoint
    int64_t registrations = 0;  // borrowed: registrations to give back to the owner
  };
  using OnFree = std::function<void(const Freed&)>;
  explicit ReferenceCounter(OnFree on_free) : on_free_(std::move(on_free)) {}

  /// A new object owned here, with one handle (the ObjectRef returned to the user).
  void AddOwned(const ObjectId& id);
  /// One more handle. `owner` ("" when owned here) is recorded for a borrowed object seen
  /// the first time, which is then unregistered.
  void AddLocal(const ObjectId& id, const std::string& owner);
  void RemoveLocal(const ObjectId& id);
  void AddTaskUse(const ObjectId& id);
  void RemoveTaskUse(const ObjectId& id);

  /// The value of `outer` holds `inners`: each is kept while `outer` is tracked here (and
  /// released at once when it no longer is). `registered`: the sender of the value has
  /// registered this process (`self`) as a borrower of each inner owned elsewhere.
  void AddContained(const ObjectId& outer,
                    const google::protobuf::RepeatedPtrField<rpc::ObjectRefProto>& inners,
                    const std::string& self, bool registered);

  // Owner side.
  /// False when `id` is not owned and live here.
  bool AddBorrower(const ObjectId& id, const std::string& borrower);
  void RemoveBorrower(const ObjectId& id, const std::string& borrower, int64_t count);
  /// `borrower` is gone: forget all its registrations.
  void RemoveBorrowerEverywhere(const std::string& borrower);

  // Borrower side.
  struct Unregistered {
    ObjectId id;
    std::string owner;
  };
  /// Live borrowed entries that still need registering; each gets a task-use hold that
  /// FinishRegistration releases. Cheap when there are none.
  std::vector<Unregistered> TakeUnregistered();
  /// `ok`: the owner counted this process as a borrower once more.
  void FinishRegistration(const ObjectId& id, bool ok);
  /// Shutdown: every borrowed entry with registrations, forgotten (so nothing is given
  /// back twice).
  std::vector<Freed> TakeAllRegistered();

  /// True while this process owns the object and something still refers to it.
  bool IsOwnedAndLive(const ObjectId& id);
  /// The owner endpoint of a borrowed object ("" when unknown or owned here).
  std::string OwnerOf(const ObjectId& id);
  size_t NumTracked();
  /// Registrations `borrower` holds on `id` (0 when none); for tests.
  int64_t BorrowerCount(const ObjectId& id, const std::string& borrower);

 private:
  struct Entry {
    int64_t local = 0;
    int64_t task_uses = 0;
    int64_t contained = 0;
    bool owned = false;
    std::string owner;          // borrowed
    int64_t registrations = 0;  // borrowed
    absl::flat_hash_map<std::string, int64_t> borrowers;  // owned
    std::vector<ObjectId> contains;
    bool Live() const {
      return local > 0 || task_uses > 0 || contained > 0 || !borrowers.empty();
    }
  };
  /// Erases `id` if nothing uses it, and (transitively) what only it contained.
  void MaybeFree(const ObjectId& id, std::vector<Freed>* freed)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  void RunCallbacks(const std::vector<Freed>& freed);
  /// Applies `change` to the entry of `id` (if tracked), then frees what became unused.
  template <typename Change>
  void Update(const ObjectId& id, Change&& change);

  OnFree on_free_;
  Mutex mutex_;
  absl::flat_hash_map<ObjectId, Entry> entries_ ABSL_GUARDED_BY(mutex_);
  absl::flat_hash_set<ObjectId> unregistered_ ABSL_GUARDED_BY(mutex_);
  std::atomic<bool> any_unregistered_{false};
};

}  // namespace lumen::core
