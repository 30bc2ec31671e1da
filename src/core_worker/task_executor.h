// The worker's side of the task path: run pushed tasks one at a time, in order.
#pragma once

#include <deque>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/mutex.h"
#include "core_worker.pb.h"
#include "core_worker/stored_object.h"
#include "rpc/rpc.h"

namespace lumen::core {

/// What the task running now holds (for GetRuntimeContext).
struct TaskContext {
  std::string task_id;  // binary; empty when idle
  std::map<std::string, double> resources;
  std::vector<int> gpu_ids;
};

/// Runs tasks on the thread that calls Run (the worker's main thread). Thread-safe
/// Enqueue/Stop; Run is single-threaded.
class TaskExecutor {
 public:
  /// Resolves a by-reference argument (a borrowed object) to its value or error.
  using Fetch = std::function<ObjectPtr(const rpc::ObjectRefProto&)>;
  explicit TaskExecutor(Fetch fetch) : fetch_(std::move(fetch)) {}

  void Enqueue(const rpc::PushTasksRequest* request, rpc::PushTasksReply* reply,
               rpc::Done done);
  /// Runs until Stop. Unanswered requests are answered with an error at Stop.
  void Run();
  void Stop();
  /// The running task blocked (in Get): answer every queued, unstarted request as
  /// rejected, so that its owner runs those tasks elsewhere instead of behind it.
  void RejectQueued();
  TaskContext CurrentContext();

 private:
  struct Item {
    const rpc::PushTasksRequest* request;
    rpc::PushTasksReply* reply;
    rpc::Done done;
  };
  void Execute(const rpc::TaskSpec& spec, rpc::TaskResult* result);

  Fetch fetch_;
  Mutex mutex_;
  CondVar work_;
  std::deque<Item> queue_ ABSL_GUARDED_BY(mutex_);
  bool stopped_ ABSL_GUARDED_BY(mutex_) = false;
  TaskContext context_ ABSL_GUARDED_BY(mutex_);
};

}  // namespace lumen::core
