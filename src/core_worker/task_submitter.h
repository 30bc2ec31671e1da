// The owner's side of the task path: resolve arguments, lease workers from the raylet,
// push batches of tasks straight to them, retry on worker death.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "common/mutex.h"
#include "common/event_loop.h"
#include "common/ids.h"
#include "core_worker/clients.h"
#include "core_worker/lineage.h"
#include "core_worker/memory_store.h"
#include "core_worker/reference_counter.h"
#include "core_worker/rpc_tracker.h"
#include "core_worker/task_deps.h"
#include "core_worker/task_events.h"

namespace lumen::core {

struct SubmitterDeps {
  std::string self_endpoint;
  std::string job_id;  // binary
  WorkerId worker_id;
  MemoryStore* store;
  ReferenceCounter* refs;
  EventLoop* timers;
  RayletClient* raylet;
  WorkerClientFactory connect_worker;
  /// Describes the cluster's capacity for the infeasible-task warning.
  std::function<std::string()> cluster_capacity;
  FreeStored free_stored;  // frees unwanted task results in the node store
  /// Raylets of other nodes, for spillbacks (empty: never followed).
  RayletFactory connect_raylet;
  /// How a raylet that has not seen the job starts its workers.
  rpc::JobLaunchInfo launch;
  /// Where finished tasks with results in node stores are kept (null: nowhere).
  Lineage* lineage = nullptr;
  /// Tells the worker at `endpoint` that a task pushed to it is cancelled (Cancel);
  /// `will_skip` runs if the worker says it has not started it and will not.
  std::function<void(const std::string& endpoint, const TaskId& task,
                     std::function<void()> will_skip)>
      cancel_on_worker;
  /// Why placement group `group_id` (binary) was removed, or "" while it exists (asks
  /// the GCS; blocking). Null: never asked.
  std::function<std::string(const std::string& group_id)> placement_group_removed;
  /// This process's node (binary id): tasks whose arguments are elsewhere go there.
  std::string node_id;
  /// Where the tasks' state changes are recorded (null: nowhere).
  TaskEvents* events = nullptr;
};

/// Tasks with the same resource demand share a scheduling key; each key keeps a queue
/// and the leases it holds. Leases are reused while tasks keep coming, and returned
/// after kLeaseIdleMs without work; requests still parked after kLeaseIdleMs with
/// nothing to run are canceled, and a lease granted to an empty queue goes straight
/// back. Each lease carries up to two batches in flight, each batch up to kMaxBatch
/// tasks, sized so that the queue spreads over all leases.
/// Thread-safe: user threads submit, gRPC threads complete.
class TaskSubmitter {
 public:
  static constexpr int kMaxBatch = 100;
  static constexpr size_t kMaxBatchBytes = 16 << 20;
  static constexpr int kMaxPendingLeaseRequests = 16;
  static constexpr int kLeaseIdleMs = 20;
  static constexpr int kInfeasibleWarningMs = 30000;
  static constexpr int kInfeasibleGraceMs = 900;
  /// A task with at least this many bytes of arguments (owned here, in one node's store)
  /// asks for a lease on that node first.
  static constexpr uint64_t kLocalityMinBytes = 1 << 20;
  /// After a soft node affinity's node rejected a lease, how long to place by the hybrid
  /// policy instead.
  static constexpr int64_t kAffinityDeclinedMs = 1000;

  explicit TaskSubmitter(SubmitterDeps deps) : deps_(std::move(deps)) {}

  /// Takes a task whose return objects are already registered with the reference
  /// counter. ObjectRef arguments owned here are waited for and inlined.
  void Submit(rpc::TaskSpec spec, int max_retries, bool retry_exceptions);
  /// Cancels task `id` (see lumen::Cancel): a task waiting for its arguments or queued
  /// here ends with TaskCancelledError; one sent to a worker is left alone unless
  /// `force`: then the worker is killed, the task ends with TaskCancelledError, and the
  /// other tasks on that worker are queued again without being charged an attempt.
  /// NotFound: no such task is pending here (finished, or never submitted here).
  absl::Status Cancel(const TaskId& id, bool force);
  /// Stops dispatching, returns every lease, fails queued tasks and cancels the lease
  /// requests parked at every raylet (this node's and others'), so that their answers
  /// come back before WaitForCallbacks gives up.
  void Shutdown();
  /// After Shutdown and after the peers are gone: waits for RPC callbacks in flight.
  bool WaitForCallbacks(std::chrono::milliseconds timeout) { return rpcs_.WaitIdle(timeout); }
  /// Scheduling keys tracked now (for tests).
  size_t NumKeys();

 private:
  struct Lease;
  struct Task {
    rpc::TaskSpec spec;
    int retries_left = 0;
    bool retry_exceptions = false;
    std::vector<ObjectId> task_uses;  // args pinned until the task ends
    // Sent in a batch of its own: it holds nested refs (it may block on a task queued
    // behind it), or its batch died with a worker and the culprit is not known yet.
    bool isolate = false;
    bool waits_for_args = false;  // it had ObjectRef arguments at submission (task events)
    // Under the submitter's mutex:
    std::string key;               // its scheduling key once queued
    std::shared_ptr<Lease> lease;  // while sent to a worker
    bool cancelled = false;        // lumen::Cancel: it ends with TaskCancelledError
  };
  using TaskPtr = std::shared_ptr<Task>;
  struct Lease {
    LeaseId id;
    std::shared_ptr<RayletClient> raylet;  // who granted it; nullptr: the local raylet
    int pid = 0;
    std::string node_id;  // binary: the node the worker runs on
    std::string worker_id;  // binary
    std::shared_ptr<WorkerClient> client;
    std::string endpoint;  // the worker's CoreWorkerService
    std::vector<int> gpu_ids;
    int in_flight = 0;
    // Pushes in flight holding a task that must run at most once (no retries left): it
    // goes alone, with nothing else in flight on the lease, so that a worker that dies
    // is known to have been running it, and nothing else is blamed with it.
    int at_most_once_in_flight = 0;
    uint64_t idle_generation = 0;
    uint64_t next_seq = 0;
    std::set<uint64_t> in_flight_seqs;
    // Set at the first failed push: the batch that was running when the worker died.
    std::optional<uint64_t> failed_at_seq;
    bool worker_blocked = false;  // it handed tasks back: no second batch until it answers
    bool killed_by_cancel = false;  // Cancel(force) killed it: no task is charged for that
    // Once it failed: why its push failed, and whether it was returned as failed (the
    // raylet then says how the process ended, for the error of tasks out of retries).
    std::string failure;
    bool returned_failed = false;
    std::optional<std::string> exit;  // the raylet's answer ("" when unknown)
    std::vector<TaskPtr> dying;       // out of retries, waiting for `exit`
  };
  using LeasePtr = std::shared_ptr<Lease>;
  struct KeyState {
    google::protobuf::Map<std::string, double> resources;
    rpc::SchedulingStrategy scheduling;
    std::string description;  // demand (and strategy) as text
    std::deque<TaskPtr> queue;
    std::map<LeaseId, LeasePtr> leases;
    int pending_lease_requests = 0;  // at the raylet, or delayed (PumpLater)
    int delayed_lease_requests = 0;
    bool cancel_in_flight = false;
    bool cancel_timer_armed = false;
    int64_t last_infeasible_warning_ms = -1;
    int64_t infeasible_since_ms = -1;  // first infeasible answer of the current wait
    // A soft node affinity's node last said it had no room (-1: never): for a while the
    // local raylet is asked by the hybrid policy instead.
    int64_t affinity_declined_ms = -1;
  };
  using Actions = std::vector<std::function<void()>>;

  void Enqueue(TaskPtr task);
  /// The node holding most of the task's argument bytes when that is not this node and
  /// they reach kLocalityMinBytes, else "".
  std::string PreferredNode(const rpc::TaskSpec& spec) const;
  void Pump(const std::string& key, KeyState& state, Actions* actions)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  /// Asks the local raylet, or (after a spillback) `remote` for a grant-or-reject.
  void RequestLease(const std::string& key, KeyState& state, Actions* actions,
                    std::shared_ptr<RayletClient> remote = nullptr)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  /// Nothing queued or running, yet lease requests parked at the raylet.
  static bool HasIdleParkedRequests(const KeyState& state);
  /// Cancels this key's lease requests parked at the raylet (the owner went idle).
  void CancelLeaseRequests(const std::string& key, KeyState& state, Actions* actions)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  /// Shutdown: cancels every lease request of ours parked at `remote` (nullptr: the
  /// local raylet), whatever its key.
  void CancelAllLeaseRequests(std::shared_ptr<RayletClient> remote, Actions* actions)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  /// Asks for a lease again after `delay` (the raylet said not now).
  void PumpLater(const std::string& key, KeyState& state, std::chrono::milliseconds delay)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  /// A lease request failed (its reply may be lost): gives back whatever it became.
  void GiveBackRequest(const LeaseId& lease_id, const std::shared_ptr<RayletClient>& remote);
  void OnLeaseReply(const std::string& key, absl::Status status,
                    rpc::RequestWorkerLeaseReply reply, std::shared_ptr<RayletClient> remote);
  RayletClient* RayletOf(const LeasePtr& lease) const {
    return lease->raylet ? lease->raylet.get() : deps_.raylet;
  }
  void PushBatch(const std::string& key, const LeasePtr& lease, std::vector<TaskPtr> batch,
                 Actions* actions) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  /// `once`: the push held a task that must run at most once.
  void OnPushReply(const std::string& key, const LeasePtr& lease, uint64_t seq, bool once,
                   std::vector<TaskPtr> batch, absl::Status status, rpc::PushTasksReply reply);
  void ReturnLease(const LeasePtr& lease, bool worker_failed, Actions* actions)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  /// WorkerCrashedError for `task`, out of retries on `lease`'s dead worker.
  ObjectPtr CrashedError(const Lease& lease, const TaskPtr& task) const;
  void MaybeScheduleIdleReturn(const std::string& key, const LeasePtr& lease,
                               Actions* actions) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  /// Stores the task's results (or `error` in every return) and unpins its arguments.
  void Finish(const TaskPtr& task, const rpc::TaskResult* result, ObjectPtr error);
  void FailQueue(KeyState& state, ObjectPtr error, Actions* actions)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  /// The tasks of `key` wait for a placement-group bundle that is not placed: if the
  /// group was removed, they end with TaskCancelledError (asks on the timer thread).
  void CheckPlacementGroup(const std::string& key, const std::string& group_id);
  /// Forgets `key` when nothing is queued, leased or asked for under it (a process that
  /// ran tasks of many shapes keeps only those in use). Call with no KeyState& held.
  void ForgetIfIdle(const std::string& key) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  /// Queues `task` again (at the front: it was sent before those queued), or, when it
  /// was cancelled meanwhile, ends it (by an action).
  void Requeue(KeyState& state, const TaskPtr& task, Actions* actions)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  ObjectPtr CancelledError(const TaskPtr& task) const;
  /// Shows a cancelled task's error to its Get now, before the task ends: it is waiting
  /// for its arguments, or its worker will skip it. Reads only its return ids (its
  /// arguments may be being resolved).
  void StoreCancelled(const TaskPtr& task);

  SubmitterDeps deps_;
  RpcTracker rpcs_;
  Mutex mutex_;
  std::map<std::string, KeyState> keys_ ABSL_GUARDED_BY(mutex_);
  // Every task submitted here and not finished, for Cancel.
  absl::flat_hash_map<TaskId, TaskPtr> pending_ ABSL_GUARDED_BY(mutex_);
  // Other nodes' raylets with lease requests of ours parked (after a spillback), with
  // how many: Shutdown cancels them there.
  std::map<std::shared_ptr<RayletClient>, int> remote_requests_ ABSL_GUARDED_BY(mutex_);
  bool shutdown_ ABSL_GUARDED_BY(mutex_) = false;
};

}  // namespace lumen::core
