// The worker's side of the task path: run pushed tasks, and host an actor.
#pragma once

#include <atomic>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "common/ids.h"
#include "common/mutex.h"
#include "common/waker.h"
#include "core_worker.pb.h"
#include "core_worker/stored_object.h"
#include "lumen/detail/registry.h"
#include "rpc/rpc.h"

namespace lumen::core {

/// What the task running now holds (for GetRuntimeContext).
struct TaskContext {
  std::string task_id;   // binary; empty when idle
  std::string actor_id;  // binary; empty unless this worker hosts an actor
  std::map<std::string, double> resources;
  std::vector<int> gpu_ids;
};

/// Runs pushed tasks on the thread that calls Run (the worker's main thread), one push
/// after another, in arrival order.
///
/// A creation task (TaskSpec.actor_creation) makes this worker an actor: the factory's
/// instance lives here until the process ends, and method calls run on it. Method pushes
/// carry (caller_id, push_seq): pushes of one caller are released to the run queue in
/// push_seq order, whatever order they arrive in, and each runs once: a push that comes
/// again (its caller lost the reply) gets the first one's reply. With max_concurrency n > 1,
/// n threads (the main one and n - 1 more) take pushes from the queue at once.
/// Thread-safe Enqueue/Stop; Run is called once.
class TaskExecutor {
 public:
  /// Resolves a by-reference argument (a borrowed object) to its value or error.
  using Fetch = std::function<ObjectPtr(const rpc::ObjectRefProto&)>;
  /// A method called ExitActor: tell the GCS, before the worker stops (blocking).
  using OnActorExit = std::function<void(const std::string& actor_id)>;
  /// Puts a large result in the node store for the owner of `spec`'s results and gives
  /// this node's id (binary); empty: small, keep it inline.
  using StoreResult = std::function<absl::StatusOr<std::string>(
      const ObjectId& id, const rpc::TaskSpec& spec, const std::string& bytes)>;
  /// A task ended, before its reply: `returned` are the refs nested in its result, each
  /// held once (released by the callee) — `delivered` when the result goes to `caller`,
  /// which must become their borrower first. Also where the refs this process borrowed
  /// during the task are registered with their owners.
  using OnTaskDone = std::function<void(const std::string& caller,
                                        const std::vector<detail::RefData>& returned,
                                        bool delivered)>;
  TaskExecutor(Fetch fetch, OnActorExit on_actor_exit, StoreResult store_result = nullptr,
               OnTaskDone on_task_done = nullptr)
      : fetch_(std::move(fetch)),
        on_actor_exit_(std::move(on_actor_exit)),
        store_result_(std::move(store_result)),
        on_task_done_(std::move(on_task_done)) {}
  ~TaskExecutor();

  /// How the main thread waits for work while it is the only thread (blocks until the
  /// waker is woken or it has enqueued work itself; false: cannot, sleep as usual).
  using IdleWait = std::function<bool(const Waker& waker)>;

  /// Before Run.
  void SetIdleWait(IdleWait idle_wait) { idle_wait_ = std::move(idle_wait); }

  void Enqueue(const rpc::PushTasksRequest* request, rpc::PushTasksReply* reply,
               rpc::Done done);
  /// Runs until Stop. Unanswered requests are answered with an error at Stop.
  void Run();
  void Stop();
  /// lumen::Cancel: task `task_id` (binary) is answered as cancelled when its turn comes
  /// here; one that has started is not touched. kWillSkip: it is queued here, and will
  /// not run; kStarted: it runs, or ran, in the push being run; kUnknown: not here (its
  /// push may not have arrived yet, or it ran before): it is remembered, and skipped if
  /// it comes. The last kMaxCancelled ids are remembered.
  enum class CancelOutcome { kWillSkip, kStarted, kUnknown };
  CancelOutcome Cancel(const std::string& task_id);
  static constexpr size_t kMaxCancelled = 10000;
  /// The running task blocked (in Get): answer every queued, unstarted request as
  /// rejected, so that its owner runs those tasks elsewhere instead of behind it. An
  /// actor keeps its calls.
  void RejectQueued();
  TaskContext CurrentContext();
  /// The hosted actor's incarnation (0: first creation); -1 when no actor is hosted.
  int ActorIncarnation();

 private:
  struct Item {
    const rpc::PushTasksRequest* request;
    rpc::PushTasksReply* reply;
    rpc::Done done;
  };
  // A caller's push taken here: its reply is kept until the caller says it has it
  // (PushTasksRequest.acked_push_seq), so that the same push sent again (its reply was
  // lost) is answered with it instead of being run twice.
  struct Answer {
    bool done = false;  // then status and reply are final
    absl::Status status;
    rpc::PushTasksReply reply;
    std::vector<Item> waiting;  // the same push again, before it was answered
  };
  struct CallerStream {
    int64_t next = 0;
    std::map<int64_t, Item> parked;  // arrived ahead of their turn
    std::map<int64_t, std::shared_ptr<Answer>> answers;  // by push_seq
  };
  /// The most answers kept per caller, whatever it acknowledged (the oldest finished
  /// ones go first).
  static constexpr size_t kMaxAnswersPerCaller = 1024;
  /// Takes a caller's push (sequenced, deduplicated); false when it cannot be.
  bool TakeCallerPush(Item item, int* runnable,
                      std::vector<std::pair<Item, absl::Status>>* answered_now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  struct Actor {
    std::string id;  // binary
    int incarnation = 0;
    std::shared_ptr<void> instance;
    std::map<std::string, double> resources;
    std::vector<int> gpu_ids;
  };

  /// Takes pushes off the queue until Stop; `main` marks the thread whose context is
  /// shared with the process's other threads.
  void RunLoop(bool main);
  void RunItem(Item& item, TaskContext* context);
  /// The task at `index` of the push being run starts: false when it was cancelled (and
  /// forgets that).
  bool StartTask(const rpc::PushTasksRequest* push, int index);
  /// Runs one task; sets *exit_actor when a method called ExitActor. `returned`: the
  /// refs nested in the result (held once each).
  void Execute(const rpc::TaskSpec& spec, rpc::TaskResult* result, bool* exit_actor,
               std::vector<detail::RefData>* returned);
  void CreateActor(const rpc::TaskSpec& spec, const std::vector<int>& gpu_ids,
                   rpc::TaskResult* result);
  /// Fetches by-reference arguments; false (with the error set in `result`) on failure.
  bool ResolveArgs(const rpc::TaskSpec& spec, rpc::TaskResult* result,
                   std::vector<ObjectPtr>* fetched, std::vector<detail::ArgView>* args);
  void SetContext(TaskContext* context, const TaskContext& value);

  Fetch fetch_;
  OnActorExit on_actor_exit_;
  StoreResult store_result_;
  OnTaskDone on_task_done_;
  /// Main thread, queue empty: waits (IdleWait, or on work_) until something may be there.
  void WaitForWork() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);

  IdleWait idle_wait_;
  Mutex mutex_;
  CondVar work_;
  std::shared_ptr<Waker> idle_waker_ ABSL_GUARDED_BY(mutex_);  // set while in IdleWait
  std::deque<Item> queue_ ABSL_GUARDED_BY(mutex_);
  absl::flat_hash_set<std::string> cancelled_ ABSL_GUARDED_BY(mutex_);
  std::deque<std::string> cancelled_order_ ABSL_GUARDED_BY(mutex_);
  std::atomic<bool> any_cancelled_{false};
  // The push the main thread runs, and the index of the task it started last.
  const rpc::PushTasksRequest* current_ ABSL_GUARDED_BY(mutex_) = nullptr;
  std::atomic<int> current_index_{-1};
  std::map<std::string, CallerStream> streams_ ABSL_GUARDED_BY(mutex_);
  bool stopped_ ABSL_GUARDED_BY(mutex_) = false;
  TaskContext context_ ABSL_GUARDED_BY(mutex_);  // the main thread's
  std::shared_ptr<const Actor> actor_ ABSL_GUARDED_BY(mutex_);
  std::vector<std::thread> extra_threads_;  // main thread only
};

}  // namespace lumen::core
