#include "core_worker/lineage.h"

namespace lumen::core {
namespace {

constexpr size_t kEntryOverhead = 150;

}  // namespace

void Lineage::Keep(const rpc::TaskSpec& spec, int retries_left, bool retry_exceptions,
                   int stored_returns) {
  TaskId task = TaskId::FromBinary(spec.task_id());
  MutexLock lock(&mutex_);
  auto it = entries_.find(task);
  if (it != entries_.end()) {
    bytes_ -= it->second.spec.ByteSizeLong() + kEntryOverhead;
    entries_.erase(it);
  }
  if (stored_returns <= 0) return;
  Entry& entry = entries_[task];
  entry.spec = spec;
  entry.retries_left = retries_left;
  entry.retry_exceptions = retry_exceptions;
  entry.live_returns = stored_returns;
  bytes_ += entry.spec.ByteSizeLong() + kEntryOverhead;
}

void Lineage::Forget(const ObjectId& id) {
  MutexLock lock(&mutex_);
  auto it = entries_.find(id.Task());
  if (it == entries_.end() || --it->second.live_returns > 0) return;
  bytes_ -= it->second.spec.ByteSizeLong() + kEntryOverhead;
  entries_.erase(it);
}

absl::StatusOr<Lineage::Attempt> Lineage::TakeForRebuild(const ObjectId& id) {
  if (id.IsPut()) {
    return absl::FailedPreconditionError("it was made by Put, not by a task, so it cannot "
                                         "be made again");
  }
  MutexLock lock(&mutex_);
  auto it = entries_.find(id.Task());
  if (it == entries_.end()) {
    return absl::FailedPreconditionError("the task that made it is not kept (its lineage "
                                         "ended with its other results)");
  }
  Entry& entry = it->second;
  if (entry.rebuilding) return absl::AlreadyExistsError("its task is running again");
  if (entry.retries_left == 0) {
    return absl::FailedPreconditionError(
        "task '" + (entry.spec.name().empty() ? entry.spec.function_name() : entry.spec.name()) +
        "' that made it has no retries left (max_retries; attempts: " +
        std::to_string(entry.spec.attempt() + 1) + ")");
  }
  entry.rebuilding = true;
  Attempt attempt{entry.spec, entry.retries_left < 0 ? -1 : entry.retries_left - 1,
                  entry.retry_exceptions};
  attempt.spec.set_attempt(attempt.spec.attempt() + 1);
  return attempt;
}

void Lineage::Abandon(const TaskId& task) {
  MutexLock lock(&mutex_);
  auto it = entries_.find(task);
  if (it != entries_.end()) it->second.rebuilding = false;
}

size_t Lineage::size() const {
  MutexLock lock(&mutex_);
  return entries_.size();
}

size_t Lineage::bytes() const {
  MutexLock lock(&mutex_);
  return bytes_;
}

}  // namespace lumen::core
