#include "core_worker/task_events.h"

#include "common/clock.h"

namespace lumen::core {
namespace {

const char* KindName(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::kNone: return "";
    case ErrorKind::kTaskError: return "TaskError";
    case ErrorKind::kWorkerCrashed: return "WorkerCrashedError";
    case ErrorKind::kFunctionNotFound: return "FunctionNotFoundError";
    case ErrorKind::kObjectLost: return "ObjectLostError";
    case ErrorKind::kOwnerDied: return "OwnerDiedError";
    case ErrorKind::kActorDied: return "ActorDiedError";
    case ErrorKind::kObjectStoreFull: return "ObjectStoreFullError";
    case ErrorKind::kInternal: return "InternalError";
    case ErrorKind::kTaskCancelled: return "TaskCancelledError";
  }
  return "Error";
}

}  // namespace

std::string DescribeError(ErrorKind kind, const std::string& type, const std::string& message) {
  std::string text = KindName(kind);
  if (!type.empty()) text += ": " + type;
  if (!message.empty()) text += ": " + message;
  return text;
}

bool TaskEvents::HasRefArgs(const rpc::TaskSpec& spec) {
  for (const rpc::TaskArg& arg : spec.args()) {
    if (arg.has_ref()) return true;
  }
  return false;
}

void NextAttempt(TaskEvents* events, rpc::TaskSpec* spec, const std::string& why) {
  if (events != nullptr) events->Failed(*spec, why);
  spec->set_attempt(spec->attempt() + 1);
  if (events != nullptr) events->Submitted(*spec, rpc::PENDING_NODE_ASSIGNMENT);
}

void TaskEvents::Failed(const rpc::TaskSpec& spec, std::string error) {
  if (!enabled_) return;
  Event event;
  event.task = TaskId::FromBinary(spec.task_id());
  event.attempt = spec.attempt();
  event.state = rpc::FAILED;
  event.time_us = WallMicros();
  event.error = std::move(error);
  Push(std::move(event));
}

void TaskEvents::Submitted(const rpc::TaskSpec& spec, rpc::TaskStatus state) {
  if (!enabled_) return;
  Event event;
  event.task = TaskId::FromBinary(spec.task_id());
  event.attempt = spec.attempt();
  event.state = state;
  event.time_us = WallMicros();
  event.described = true;
  event.type = spec.has_actor_creation()   ? rpc::TaskDescription::ACTOR_CREATION_TASK
               : !spec.actor_id().empty() ? rpc::TaskDescription::ACTOR_TASK
                                          : rpc::TaskDescription::NORMAL_TASK;
  event.name = spec.name().empty() ? spec.function_name() : spec.name();
  event.function_name = spec.function_name();
  event.job_id = spec.job_id();
  event.actor_id =
      spec.has_actor_creation() ? spec.actor_creation().actor_id() : spec.actor_id();
  event.parent_task_id = spec.parent_task_id();
  Push(std::move(event));
}

void TaskEvents::Record(const rpc::TaskSpec& spec, rpc::TaskStatus state,
                        const std::string& node, const std::string& worker) {
  if (!enabled_) return;
  Event event;
  event.task = TaskId::FromBinary(spec.task_id());
  event.attempt = spec.attempt();
  event.state = state;
  event.time_us = WallMicros();
  event.node = node;
  event.worker = worker;
  Push(std::move(event));
}

void TaskEvents::Ended(const rpc::TaskSpec& spec, const rpc::TaskResult* result,
                       const ObjectPtr& error) {
  if (!enabled_) return;
  if (result != nullptr && result->start_time_us() > 0) {
    Event running;
    running.task = TaskId::FromBinary(spec.task_id());
    running.attempt = spec.attempt();
    running.state = rpc::RUNNING;
    running.time_us = result->start_time_us();
    Push(std::move(running));
  }
  Event event;
  event.task = TaskId::FromBinary(spec.task_id());
  event.attempt = spec.attempt();
  event.time_us = result != nullptr && result->end_time_us() > 0 ? result->end_time_us()
                                                                  : WallMicros();
  event.state = rpc::FINISHED;
  if (error != nullptr && error->IsError()) {
    event.state = rpc::FAILED;
    event.error = DescribeError(error->error, error->error_type, error->error_message);
  } else if (result != nullptr && result->returns_size() > 0 && result->returns(0).is_error()) {
    const rpc::ErrorInfo& info = result->returns(0).error();
    event.state = rpc::FAILED;
    event.error = DescribeError(ErrorKind(info.kind()), info.type_name(), info.message());
  }
  Push(std::move(event));
}

void TaskEvents::Push(Event event) {
  MutexLock lock(&mutex_);
  if (buffer_.size() >= kMaxBuffered) {
    ++dropped_since_flush_;
    return;
  }
  buffer_.push_back(std::move(event));
}

bool TaskEvents::TakeBatch(rpc::AddTaskEventsRequest* request) {
  std::vector<Event> events;
  uint64_t dropped;
  {
    MutexLock lock(&mutex_);
    events.swap(buffer_);
    dropped = dropped_since_flush_;
    dropped_since_flush_ = 0;
  }
  if (events.empty() && dropped == 0) return false;
  request->set_worker_id(worker_.Binary());
  request->set_dropped(dropped);
  request->mutable_events()->Reserve(int(events.size()));
  for (Event& event : events) {
    rpc::TaskEvent* out = request->add_events();
    out->set_task_id(event.task.Binary());
    out->set_attempt(event.attempt);
    out->set_state(event.state);
    out->set_time_us(event.time_us);
    if (!event.node.empty()) out->set_node_id(std::move(event.node));
    if (!event.worker.empty()) out->set_worker_id(std::move(event.worker));
    if (!event.error.empty()) out->set_error(std::move(event.error));
    if (!event.described) continue;
    rpc::TaskDescription* description = out->mutable_description();
    description->set_type(event.type);
    description->set_name(std::move(event.name));
    description->set_function_name(std::move(event.function_name));
    description->set_job_id(std::move(event.job_id));
    description->set_actor_id(std::move(event.actor_id));
    description->set_parent_task_id(std::move(event.parent_task_id));
    description->set_owner_worker_id(worker_.Binary());
  }
  return true;
}

bool TaskEvents::HasBuffered() {
  MutexLock lock(&mutex_);
  return !buffer_.empty() || dropped_since_flush_ > 0;
}

}  // namespace lumen::core
