#include "core_worker/task_events.h"

#include "absl/container/flat_hash_map.h"
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

void NextAttempt(TaskEvents* events, rpc::TaskSpec* spec, const std::string& why) {
  if (events != nullptr) events->Failed(*spec, why);
  spec->set_attempt(spec->attempt() + 1);
  if (events != nullptr) events->Submitted(*spec, rpc::PENDING_NODE_ASSIGNMENT);
}

bool TaskEvents::HasRefArgs(const rpc::TaskSpec& spec) {
  for (const rpc::TaskArg& arg : spec.args()) {
    if (arg.has_ref()) return true;
  }
  return false;
}

const std::string* TaskEvents::Intern(const std::string& text) {
  return &*names_.insert(text).first;
}

TaskEvents::Change TaskEvents::ChangeOf(const rpc::TaskSpec& spec, rpc::TaskStatus state) {
  Change change;
  change.task = TaskId::FromBinary(spec.task_id());
  change.attempt = spec.attempt();
  change.state = state;
  change.time_us = WallMicros();
  return change;
}

void TaskEvents::Push(Change change) {
  if (changes_.size() >= kMaxBuffered) {
    ++dropped_since_flush_;
    return;
  }
  changes_.push_back(std::move(change));
}

void TaskEvents::Submitted(const rpc::TaskSpec& spec, rpc::TaskStatus state) {
  if (!enabled_) return;
  Change change = ChangeOf(spec, state);
  change.described = true;
  change.type = spec.has_actor_creation()   ? rpc::TaskDescription::ACTOR_CREATION_TASK
                : !spec.actor_id().empty() ? rpc::TaskDescription::ACTOR_TASK
                                           : rpc::TaskDescription::NORMAL_TASK;
  change.actor = ActorId::FromBinary(spec.has_actor_creation() ? spec.actor_creation().actor_id()
                                                               : spec.actor_id());
  change.parent = TaskId::FromBinary(spec.parent_task_id());
  MutexLock lock(&mutex_);
  bool named = !spec.name().empty() && spec.name() != spec.function_name();
  change.name = Intern(named ? spec.name() : spec.function_name());
  if (named) change.function_name = Intern(spec.function_name());
  Push(std::move(change));
}

void TaskEvents::Record(const rpc::TaskSpec& spec, rpc::TaskStatus state,
                        const std::string& node, const std::string& worker) {
  if (!enabled_) return;
  Change change = ChangeOf(spec, state);
  if (!node.empty() || !worker.empty()) {
    change.located = true;
    change.node = NodeId::FromBinary(node);
    change.worker = WorkerId::FromBinary(worker);
  }
  MutexLock lock(&mutex_);
  Push(std::move(change));
}

void TaskEvents::Failed(const rpc::TaskSpec& spec, std::string error) {
  if (!enabled_) return;
  Change change = ChangeOf(spec, rpc::FAILED);
  MutexLock lock(&mutex_);
  change.error = int32_t(errors_.size());
  errors_.push_back(std::move(error));
  Push(std::move(change));
}

void TaskEvents::Ended(const rpc::TaskSpec& spec, const rpc::TaskResult* result,
                       const ObjectPtr& error) {
  if (!enabled_) return;
  std::string text;
  if (error != nullptr && error->IsError()) {
    text = DescribeError(error->error, error->error_type, error->error_message);
  } else if (result != nullptr && result->returns_size() > 0 && result->returns(0).is_error()) {
    const rpc::ErrorInfo& info = result->returns(0).error();
    text = DescribeError(ErrorKind(info.kind()), info.type_name(), info.message());
  }
  Change change = ChangeOf(spec, text.empty() ? rpc::FINISHED : rpc::FAILED);
  if (result != nullptr && result->end_time_us() > 0) change.time_us = result->end_time_us();
  if (result != nullptr) change.start_us = result->start_time_us();
  MutexLock lock(&mutex_);
  if (!text.empty()) {
    change.error = int32_t(errors_.size());
    errors_.push_back(std::move(text));
  }
  Push(std::move(change));
}

bool TaskEvents::HasBuffered() {
  MutexLock lock(&mutex_);
  return !changes_.empty() || dropped_since_flush_ > 0;
}

bool TaskEvents::TakeBatch(rpc::AddTaskEventsRequest* request) {
  std::vector<Change> changes;
  std::vector<std::string> errors;
  absl::node_hash_set<std::string> names;  // keeps the changes' name pointers valid
  uint64_t dropped;
  {
    MutexLock lock(&mutex_);
    changes.swap(spare_);  // empty, with the capacity of an earlier period
    changes.swap(changes_);
    errors.swap(errors_);
    names.swap(names_);
    dropped = dropped_since_flush_;
    dropped_since_flush_ = 0;
  }
  if (changes.empty() && dropped == 0) return false;
  request->set_worker_id(worker_.Binary());
  request->set_job_id(job_.Binary());
  request->set_dropped(dropped);
  // One event per attempt; the request's tables hold each location, name and id once
  // (1-based indexes).
  absl::flat_hash_map<std::pair<TaskId, int32_t>, rpc::TaskEvent*> events;
  absl::flat_hash_map<std::pair<NodeId, WorkerId>, int> locations;
  absl::flat_hash_map<const std::string*, int> name_index;
  absl::flat_hash_map<std::string, int> ids;
  auto name = [&](const std::string* text) {
    auto [it, added] = name_index.try_emplace(text, int(name_index.size()) + 1);
    if (added) request->add_names(*text);
    return it->second;
  };
  auto id = [&](const std::string& binary) {
    auto [it, added] = ids.try_emplace(binary, int(ids.size()) + 1);
    if (added) request->add_ids(binary);
    return it->second;
  };
  auto mark = [](rpc::TaskEvent* event, rpc::TaskStatus state, int64_t time_us) {
    int64_t* times = event->mutable_state_times_us()->mutable_data();
    if (times[state] == 0 || time_us < times[state]) times[state] = time_us;
    if (state > event->state()) event->set_state(state);
  };
  for (Change& change : changes) {
    rpc::TaskEvent*& event = events[{change.task, change.attempt}];
    if (event == nullptr) {
      event = request->add_events();
      event->set_task_id(change.task.Binary());
      event->set_attempt(change.attempt);
      event->mutable_state_times_us()->Resize(rpc::TaskStatus_ARRAYSIZE, 0);
    }
    mark(event, change.state, change.time_us);
    if (change.start_us > 0) mark(event, rpc::RUNNING, change.start_us);
    if (change.located) {
      auto [it, added] =
          locations.try_emplace({change.node, change.worker}, int(locations.size()) + 1);
      if (added) {
        rpc::TaskLocation* where = request->add_locations();
        where->set_node_id(change.node.Binary());
        where->set_worker_id(change.worker.Binary());
      }
      event->set_location(it->second);
    }
    if (change.error >= 0) event->set_error(std::move(errors[size_t(change.error)]));
    if (!change.described) continue;
    rpc::TaskDescription* description = event->mutable_description();
    description->set_type(change.type);
    description->set_name(name(change.name));
    if (change.function_name != nullptr) {
      description->set_function_name(name(change.function_name));
    }
    if (!change.actor.IsNil()) description->set_actor_id(id(change.actor.Binary()));
    if (!change.parent.IsNil()) description->set_parent_task_id(id(change.parent.Binary()));
  }
  changes.clear();
  MutexLock lock(&mutex_);
  if (spare_.capacity() < changes.capacity()) spare_.swap(changes);
  return true;
}

}  // namespace lumen::core
