// Lineage: the specs of finished tasks whose results live in node stores, kept at their
// owner while a result may still be read, so that a result lost with its node can be
// made again by running its task once more (Ray's lineage reconstruction).
//
// Memory: one entry per task with a result in a node store (results inline in the
// owner's memory cannot be lost): the task's spec (its function name, its arguments
// inlined up to the inline limit, by reference otherwise) plus ~150 bytes; `bytes()`
// says how much. An entry goes when the last of its stored results is freed.
#pragma once

#include <map>
#include <string>

#include "absl/status/statusor.h"
#include "common.pb.h"
#include "common/ids.h"
#include "common/mutex.h"

namespace lumen::core {

class Lineage {
 public:
  struct Attempt {
    rpc::TaskSpec spec;  // attempt already counted up
    int retries_left = 0;
    bool retry_exceptions = false;
  };

  /// A task finished and `stored_returns` of its results are in node stores and still
  /// wanted: keeps (or, after a rebuild, replaces) its entry.
  void Keep(const rpc::TaskSpec& spec, int retries_left, bool retry_exceptions,
            int stored_returns);
  /// The owner freed `id`: its task's entry goes with its last stored result.
  void Forget(const ObjectId& id);
  /// The task that made `id`, for one more attempt (one retry spent). FailedPrecondition
  /// saying why when it cannot run again: `id` was put, not made by a task; its lineage
  /// is not kept; its retries are spent. AlreadyExists when a rebuild of that task is
  /// under way (its results will come with it).
  absl::StatusOr<Attempt> TakeForRebuild(const ObjectId& id);
  /// A rebuild taken could not start after all: the retry is not spent.
  void Abandon(const TaskId& task);

  size_t size() const;
  /// The bytes the kept specs take.
  size_t bytes() const;

 private:
  struct Entry {
    rpc::TaskSpec spec;
    int retries_left = 0;
    bool retry_exceptions = false;
    int live_returns = 0;
    bool rebuilding = false;
  };
  mutable Mutex mutex_;
  std::map<TaskId, Entry> entries_ ABSL_GUARDED_BY(mutex_);
  size_t bytes_ ABSL_GUARDED_BY(mutex_) = 0;
};

}  // namespace lumen::core
