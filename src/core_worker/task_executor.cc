#include "core_worker/task_executor.h"

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <optional>
#include <typeinfo>

#include "common/clock.h"
#include "common/demangle.h"
#include "common/ids.h"
#include "core_worker/task_deps.h"
#include "lumen/detail/runtime.h"

namespace lumen::core {
namespace {

// The context of the extra threads of a concurrent actor (the main thread uses the
// executor's shared one).
thread_local TaskContext* t_context = nullptr;

void SetError(rpc::TaskResult* result, const rpc::TaskSpec& spec, ErrorKind kind,
              const std::string& type, const std::string& message) {
  result->clear_returns();
  result->set_is_application_error(kind == ErrorKind::kTaskError);
  for (int i = 0; i < spec.num_returns(); ++i) {
    rpc::ReturnObject* ret = result->add_returns();
    ret->set_id(
        ObjectId::ForTaskReturn(TaskId::FromBinary(spec.task_id()), uint32_t(i + 1)).Binary());
    ret->set_is_error(true);
    ret->mutable_error()->set_kind(int(kind));
    ret->mutable_error()->set_type_name(type);
    ret->mutable_error()->set_message(message);
  }
}

// Inside a catch block: the user exception being handled becomes the task's error (a
// TaskError with the exception's type and message).
void SetUserException(rpc::TaskResult* result, const rpc::TaskSpec& spec) {
  try {
    throw;
  } catch (const std::exception& e) {
    SetError(result, spec, ErrorKind::kTaskError, Demangle(typeid(e).name()), e.what());
  } catch (...) {
    SetError(result, spec, ErrorKind::kTaskError, "unknown", "a non-std::exception was thrown");
  }
}

}  // namespace

TaskExecutor::~TaskExecutor() {
  Stop();
  for (std::thread& thread : extra_threads_) {
    if (thread.joinable()) thread.detach();  // may be inside a user method for good
  }
}

void TaskExecutor::Enqueue(const rpc::PushTasksRequest* request, rpc::PushTasksReply* reply,
                           rpc::Done done) {
  // Threads are woken after the lock is released: a thread woken under it would only
  // block again on the mutex (on two cores, an extra sleep and wake-up per call).
  int runnable = 0;
  bool taken = false;
  std::vector<std::pair<Item, absl::Status>> answered_now;  // sent again: the same reply
  std::shared_ptr<Waker> idle;
  {
    MutexLock lock(&mutex_);
    idle = idle_waker_;
    if (!stopped_ && request->caller_id().empty()) {
      queue_.push_back(Item{request, reply, std::move(done)});
      runnable = 1;
      taken = true;
    } else if (!stopped_) {
      taken = TakeCallerPush(Item{request, reply, done}, &runnable, &answered_now);
    }
  }
  for (auto& [again, status] : answered_now) again.done(status);
  if (!taken) {
    done(absl::UnavailableError("worker is exiting, or the push was sent twice"));
    return;
  }
  if (runnable > 0 && idle) idle->Wake();
  for (int i = 0; i < runnable; ++i) work_.Signal();
}

bool TaskExecutor::TakeCallerPush(Item item, int* runnable,
                                  std::vector<std::pair<Item, absl::Status>>* answered_now) {
  const rpc::PushTasksRequest* request = item.request;
  CallerStream& stream = streams_[request->caller_id()];
  // Replies the caller has: forgotten. Beyond the bound, the oldest finished ones too.
  stream.answers.erase(stream.answers.begin(),
                       stream.answers.lower_bound(request->acked_push_seq()));
  while (stream.answers.size() >= kMaxAnswersPerCaller && stream.answers.begin()->second->done) {
    stream.answers.erase(stream.answers.begin());
  }
  int64_t seq = request->push_seq();
  if (auto known = stream.answers.find(seq); known != stream.answers.end()) {
    Answer& answer = *known->second;
    if (!answer.done) {
      answer.waiting.push_back(std::move(item));
    } else {
      *item.reply = answer.reply;
      answered_now->emplace_back(std::move(item), answer.status);
    }
    return true;
  }
  if (seq < stream.next) return false;  // acknowledged already: a stray copy
  auto answer = std::make_shared<Answer>();
  stream.answers.emplace(seq, answer);
  rpc::PushTasksReply* reply = item.reply;
  item.done = [this, answer, reply, done = std::move(item.done)](absl::Status status) {
    rpc::PushTasksReply kept = *reply;  // copied unlocked: other threads run calls
    std::vector<Item> waiting;
    {
      MutexLock lock(&mutex_);
      answer->done = true;
      answer->status = status;
      answer->reply = std::move(kept);
      waiting.swap(answer->waiting);
    }
    for (Item& again : waiting) *again.reply = answer->reply;  // final: read unlocked
    done(status);
    for (Item& again : waiting) again.done(status);
  };
  stream.parked.emplace(seq, std::move(item));
  // One wake-up per push that became runnable, not all threads: a concurrent actor's
  // threads would otherwise all wake for every call (on few cores that herd costs more
  // than the call).
  while (!stream.parked.empty() && stream.parked.begin()->first == stream.next) {
    queue_.push_back(std::move(stream.parked.begin()->second));
    stream.parked.erase(stream.parked.begin());
    ++stream.next;
    ++*runnable;
  }
  return true;
}

void TaskExecutor::Stop() {
  std::vector<Item> left;
  std::shared_ptr<Waker> idle;
  {
    MutexLock lock(&mutex_);
    stopped_ = true;
    idle = idle_waker_;
    for (Item& item : queue_) left.push_back(std::move(item));
    queue_.clear();
    for (auto& [caller, stream] : streams_) {
      for (auto& [seq, item] : stream.parked) left.push_back(std::move(item));
    }
    streams_.clear();
    work_.SignalAll();
  }
  if (idle) idle->Wake();
  for (Item& item : left) item.done(absl::UnavailableError("worker is exiting"));
}

void TaskExecutor::RejectQueued() {
  std::deque<Item> rejected;
  {
    MutexLock lock(&mutex_);
    if (actor_) return;
    rejected.swap(queue_);
  }
  for (Item& item : rejected) {
    item.reply->set_rejected(true);
    item.done(absl::OkStatus());
  }
}

TaskContext TaskExecutor::CurrentContext() {
  if (t_context != nullptr) return *t_context;
  MutexLock lock(&mutex_);
  return context_;
}

int TaskExecutor::ActorIncarnation() {
  MutexLock lock(&mutex_);
  return actor_ ? actor_->incarnation : -1;
}

void TaskExecutor::SetContext(TaskContext* context, const TaskContext& value) {
  if (context != nullptr) {
    *context = value;
    return;
  }
  MutexLock lock(&mutex_);
  context_ = value;
}

void TaskExecutor::Run() { RunLoop(/*main=*/true); }

void TaskExecutor::RunLoop(bool main) {
  TaskContext own;
  TaskContext* context = main ? nullptr : &own;
  t_context = context;
  while (true) {
    Item item;
    {
      MutexLock lock(&mutex_);
      while (!stopped_ && queue_.empty()) {
        if (main) {
          WaitForWork();
        } else {
          work_.Wait(&mutex_);
        }
      }
      if (stopped_) return;
      item = std::move(queue_.front());
      queue_.pop_front();
      if (main) {
        current_ = item.request;
        current_index_ = -1;
      }
    }
    RunItem(item, context);
    if (main) {
      MutexLock lock(&mutex_);
      current_ = nullptr;
    }
  }
}

void TaskExecutor::WaitForWork() {
  // Only while it is the only thread: the others sleep on work_, and one wake-up per
  // runnable push must reach a thread that will take it.
  std::shared_ptr<Waker> waker = idle_wait_ && extra_threads_.empty() ? Waker::ForThisThread()
                                                                      : nullptr;
  if (waker == nullptr) return work_.Wait(&mutex_);
  idle_waker_ = waker;
  mutex_.Unlock();
  bool waited = idle_wait_(*waker);
  mutex_.Lock();
  idle_waker_ = nullptr;
  if (!waited && !stopped_ && queue_.empty()) work_.Wait(&mutex_);
}

TaskExecutor::CancelOutcome TaskExecutor::Cancel(const std::string& task_id) {
  MutexLock lock(&mutex_);
  auto index_in = [&task_id](const rpc::PushTasksRequest& push) {
    for (int i = 0; i < push.tasks_size(); ++i) {
      if (push.tasks(i).task_id() == task_id) return i;
    }
    return -1;
  };
  CancelOutcome outcome = CancelOutcome::kUnknown;
  int index = current_ != nullptr ? index_in(*current_) : -1;
  if (index >= 0 && index <= current_index_) return CancelOutcome::kStarted;
  if (index >= 0) outcome = CancelOutcome::kWillSkip;
  for (const Item& item : queue_) {
    if (outcome == CancelOutcome::kUnknown && index_in(*item.request) >= 0) {
      outcome = CancelOutcome::kWillSkip;
    }
  }
  if (cancelled_.insert(task_id).second) {
    cancelled_order_.push_back(task_id);
    if (cancelled_order_.size() > kMaxCancelled) {
      cancelled_.erase(cancelled_order_.front());
      cancelled_order_.pop_front();
    }
  }
  // After the insert; StartTask stores its index before it reads this (both seq_cst):
  // either this saw the task started, or StartTask sees it cancelled.
  any_cancelled_ = true;
  return outcome;
}

bool TaskExecutor::StartTask(const rpc::PushTasksRequest* push, int index) {
  current_index_ = index;  // only the main thread's push is current_
  if (!any_cancelled_) return true;
  MutexLock lock(&mutex_);
  return cancelled_.erase(push->tasks(index).task_id()) == 0;
}

void TaskExecutor::RunItem(Item& item, TaskContext* context) {
  std::vector<int> gpu_ids(item.request->gpu_ids().begin(), item.request->gpu_ids().end());
  std::shared_ptr<const Actor> actor;
  {
    MutexLock lock(&mutex_);
    actor = actor_;
  }
  // The devices of the lease (CUDA_VISIBLE_DEVICES was set to them when this process
  // started); an actor keeps its creation's, its method pushes carry none.
  bool exit_actor = false;
  for (int index = 0; index < item.request->tasks_size(); ++index) {
    const rpc::TaskSpec& spec = item.request->tasks(index);
    rpc::TaskResult* result = item.reply->add_results();
    if (!actor && !StartTask(item.request, index)) {
      result->set_task_id(spec.task_id());
      SetError(result, spec, ErrorKind::kTaskCancelled, "",
               "task '" + TaskLabel(spec) + "' was cancelled");
      continue;
    }
    if (exit_actor) {
      result->set_task_id(spec.task_id());
      SetError(result, spec, ErrorKind::kActorDied, "",
               "the actor exited (ExitActor) before running this call");
      continue;
    }
    TaskContext running;
    running.task_id = spec.task_id();
    if (actor) {
      running.actor_id = actor->id;
      running.resources = actor->resources;
      running.gpu_ids = actor->gpu_ids;
    } else {
      running.resources = {spec.resources().begin(), spec.resources().end()};
      running.gpu_ids = gpu_ids;
    }
    SetContext(context, running);
    // When it ran, for its owner's task events (the timeline's slices).
    result->set_start_time_us(WallMicros());
    std::vector<detail::RefData> returned;
    if (spec.has_actor_creation()) {
      CreateActor(spec, gpu_ids, result);
      MutexLock lock(&mutex_);
      actor = actor_;
    } else {
      Execute(spec, result, &exit_actor, &returned);
    }
    result->set_end_time_us(WallMicros());
    if (on_task_done_) {
      bool delivered = result->returns_size() > 0 && !result->returns(0).is_error();
      on_task_done_(spec.owner(), returned, delivered);
    }
  }
  TaskContext idle;
  if (actor) idle.actor_id = actor->id;
  SetContext(context, idle);
  std::cout.flush();
  std::cerr.flush();
  std::fflush(nullptr);
  if (exit_actor) {
    // Dead in the GCS first, so that callers whose pushes are refused below learn why.
    on_actor_exit_(actor->id);
    item.done(absl::OkStatus());
    Stop();
    return;
  }
  item.done(absl::OkStatus());
}

bool TaskExecutor::ResolveArgs(const rpc::TaskSpec& spec, rpc::TaskResult* result,
                               std::vector<ObjectPtr>* fetched,
                               std::vector<detail::ArgView>* args) {
  args->reserve(spec.args_size());
  for (const rpc::TaskArg& arg : spec.args()) {
    if (arg.has_ref()) {
      ObjectPtr object = fetch_(arg.ref());
      if (object->IsError()) {
        SetError(result, spec, object->error, object->error_type, object->error_message);
        return false;
      }
      fetched->push_back(object);
      std::string_view bytes = object->Bytes();
      args->push_back({bytes.data(), bytes.size()});
    } else {
      args->push_back({arg.value().data(), arg.value().size()});
    }
  }
  return true;
}

void TaskExecutor::CreateActor(const rpc::TaskSpec& spec, const std::vector<int>& gpu_ids,
                               rpc::TaskResult* result) {
  result->set_task_id(spec.task_id());
  {
    MutexLock lock(&mutex_);
    if (actor_) {
      return SetError(result, spec, ErrorKind::kInternal, "",
                      "this worker already hosts an actor");
    }
  }
  const detail::FactoryInvoker* factory = detail::FindFactory(spec.function_name());
  if (factory == nullptr) {
    return SetError(result, spec, ErrorKind::kFunctionNotFound, "",
                    "actor factory '" + spec.function_name() +
                        "' is not registered in the worker's executable (LUMEN_REMOTE)");
  }
  std::vector<ObjectPtr> fetched;
  std::vector<detail::ArgView> args;
  if (!ResolveArgs(spec, result, &fetched, &args)) return;
  auto actor = std::make_shared<Actor>();
  actor->id = spec.actor_creation().actor_id();
  actor->incarnation = spec.actor_creation().incarnation();
  actor->resources = {spec.resources().begin(), spec.resources().end()};
  actor->gpu_ids = gpu_ids;
  // While the factory runs, the actor's context is visible without an instance (so that
  // WasCurrentActorRestarted works in it); the instance is published when it exists.
  {
    MutexLock lock(&mutex_);
    actor_ = actor;
  }
  std::shared_ptr<void> instance;  // the factory returns non-null or throws
  try {
    instance = (*factory)(args);
  } catch (const detail::ActorExitSignal&) {
    SetError(result, spec, ErrorKind::kActorDied, "", "the factory called ExitActor()");
  } catch (...) {
    SetUserException(result, spec);
  }
  if (!instance) {
    MutexLock lock(&mutex_);
    actor_.reset();
    return;
  }
  auto alive = std::make_shared<Actor>(*actor);
  alive->instance = std::move(instance);
  {
    MutexLock lock(&mutex_);
    actor_ = std::move(alive);
  }
  rpc::ReturnObject* ret = result->add_returns();
  ret->set_id(ObjectId::ForTaskReturn(TaskId::FromBinary(spec.task_id()), 1).Binary());
  ret->set_data(detail::SerializeNil());
  for (int i = 1; i < spec.actor_creation().max_concurrency(); ++i) {
    extra_threads_.emplace_back([this] { RunLoop(/*main=*/false); });
  }
}

void TaskExecutor::Execute(const rpc::TaskSpec& spec, rpc::TaskResult* result,
                           bool* exit_actor, std::vector<detail::RefData>* returned) {
  result->set_task_id(spec.task_id());
  std::shared_ptr<const Actor> actor;
  const detail::Invoker* invoker = nullptr;
  const detail::MethodInvoker* method = nullptr;
  if (spec.actor_id().empty()) {
    invoker = detail::FindInvoker(spec.function_name());
    if (invoker == nullptr) {
      return SetError(result, spec, ErrorKind::kFunctionNotFound, "",
                      "function '" + spec.function_name() +
                          "' is not registered in the worker's executable (LUMEN_REMOTE)");
    }
  } else {
    {
      MutexLock lock(&mutex_);
      actor = actor_;
    }
    if (!actor || actor->id != spec.actor_id()) {
      return SetError(result, spec, ErrorKind::kActorDied, "",
                      "the worker that received this call does not host the actor");
    }
    method = detail::FindMethod(spec.function_name());
    if (method == nullptr) {
      return SetError(result, spec, ErrorKind::kFunctionNotFound, "",
                      "actor method '" + spec.function_name() +
                          "' is not registered in the worker's executable (LUMEN_REMOTE)");
    }
  }
  std::vector<ObjectPtr> fetched;
  std::vector<detail::ArgView> args;
  if (!ResolveArgs(spec, result, &fetched, &args)) return;
  std::string out;
  std::vector<detail::RefData>& nested = *returned;
  try {
    if (method != nullptr) {
      (*method)(actor->instance.get(), args, &out, &nested);
    } else {
      (*invoker)(args, &out, &nested);
    }
  } catch (const detail::ActorExitSignal&) {
    nested.clear();  // holds are taken only when the whole result was serialized
    *exit_actor = true;
    return SetError(result, spec, ErrorKind::kActorDied, "",
                    "the actor exited: method '" + TaskLabel(spec) + "' called ExitActor()");
  } catch (...) {
    nested.clear();
    return SetUserException(result, spec);
  }
  ObjectId return_id = ObjectId::ForTaskReturn(TaskId::FromBinary(spec.task_id()), 1);
  absl::StatusOr<std::string> in_store = store_result_ ? store_result_(return_id, spec, out)
                                                       : absl::StatusOr<std::string>("");
  if (!in_store.ok()) {
    return SetError(result, spec,
                    absl::IsResourceExhausted(in_store.status()) ? ErrorKind::kObjectStoreFull
                                                                 : ErrorKind::kInternal,
                    "", "cannot store the result of '" + TaskLabel(spec) +
                            "': " + std::string(in_store.status().message()));
  }
  rpc::ReturnObject* ret = result->add_returns();
  ret->set_id(return_id.Binary());
  if (!in_store->empty()) {
    ret->set_in_store(true);
    ret->set_store_node_id(std::move(*in_store));
    ret->set_size(out.size());
  } else {
    ret->set_data(std::move(out));
  }
  for (const auto& ref : nested) {
    rpc::ObjectRefProto* proto = ret->add_nested();
    proto->set_id(ref.id);
    proto->set_owner(ref.owner);
  }
}

}  // namespace lumen::core
