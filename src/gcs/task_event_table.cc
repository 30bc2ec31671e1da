#include "gcs/task_event_table.h"

#include <algorithm>

namespace lumen::gcs {

const std::string TaskEventTable::kEmpty;

TaskEventTable::Key TaskEventTable::KeyOf(const TaskId& task, int32_t attempt) {
  Key key;
  std::string id = task.Binary();
  std::copy(id.begin(), id.end(), key.begin());
  auto value = uint32_t(attempt);
  for (size_t i = 0; i < 4; ++i) key[id.size() + i] = uint8_t((value >> (24 - 8 * i)) & 0xff);
  return key;
}

TaskEventTable::Batch TaskEventTable::Decode(const rpc::AddTaskEventsRequest& request) {
  Batch batch;
  batch.job = JobId::FromBinary(request.job_id());
  batch.owner = WorkerId::FromBinary(request.worker_id());
  batch.dropped = request.dropped();
  for (const rpc::TaskLocation& where : request.locations()) {
    batch.locations.emplace_back(NodeId::FromBinary(where.node_id()),
                                 WorkerId::FromBinary(where.worker_id()));
  }
  batch.names.assign(request.names().begin(), request.names().end());
  auto id = [&request](int index) -> const std::string* {
    return index >= 1 && index <= request.ids_size() ? &request.ids(index - 1) : nullptr;
  };
  auto in = [](int index, size_t size) { return index >= 1 && size_t(index) <= size; };
  batch.events.reserve(size_t(request.events_size()));
  for (const rpc::TaskEvent& event : request.events()) {
    if (event.task_id().size() != TaskId::Size() || event.state() <= rpc::TASK_STATUS_NIL ||
        event.state() >= rpc::TaskStatus_ARRAYSIZE) {
      continue;  // malformed, or a state this GCS does not know (a newer worker)
    }
    Batch::Event& out = batch.events.emplace_back();
    out.task = TaskId::FromBinary(event.task_id());
    out.attempt = event.attempt();
    out.state = event.state();
    int states = std::min(event.state_times_us_size(), int(rpc::TaskStatus_ARRAYSIZE));
    for (int state = 1; state < states; ++state) out.times[state] = event.state_times_us(state);
    if (in(event.location(), batch.locations.size())) out.location = event.location() - 1;
    out.error = event.error();
    if (!event.has_description()) continue;
    const rpc::TaskDescription& description = event.description();
    out.described = true;
    out.type = description.type();
    if (in(description.name(), batch.names.size())) out.name = description.name() - 1;
    if (in(description.function_name(), batch.names.size())) {
      out.function_name = description.function_name() - 1;
    }
    if (const std::string* actor = id(description.actor_id())) {
      out.actor = ActorId::FromBinary(*actor);
    }
    if (const std::string* parent = id(description.parent_task_id())) {
      out.parent = TaskId::FromBinary(*parent);
    }
  }
  return batch;
}

const std::string* TaskEventTable::Intern(const std::string& name) {
  return &*names_.insert(name).first;
}

void TaskEventTable::Apply(Batch batch) {
  dropped_at_workers_ += batch.dropped;
  std::vector<const std::string*> names;
  names.reserve(batch.names.size());
  for (const std::string& name : batch.names) names.push_back(Intern(name));
  for (Batch::Event& event : batch.events) {
    Key key = KeyOf(event.task, event.attempt);
    auto [it, inserted] = attempts_.try_emplace(key);
    Attempt& attempt = it->second;
    if (inserted) {
      attempt.task = event.task;
      attempt.attempt = event.attempt;
      arrival_.push_back(key);
    }
    if (event.described) {
      attempt.described = true;
      attempt.type = event.type;
      if (event.name >= 0) attempt.name = names[size_t(event.name)];
      attempt.function_name =
          event.function_name >= 0 ? names[size_t(event.function_name)] : attempt.name;
      attempt.job = batch.job;
      attempt.actor = event.actor;
      attempt.parent = event.parent;
      attempt.owner = batch.owner;
    }
    // An attempt's changes come from its owner (and, for actor creations, the GCS) in
    // any order: the state is the furthest seen (FAILED beats FINISHED: the caller saw
    // the error), each state's time the first.
    if (event.state > attempt.state) attempt.state = event.state;
    for (size_t state = 1; state < event.times.size(); ++state) {
      int64_t time_us = event.times[state];
      int64_t& first = attempt.time_us[state];
      if (time_us > 0 && (first == 0 || time_us < first)) first = time_us;
    }
    if (event.location >= 0) {
      attempt.node = batch.locations[size_t(event.location)].first;
      attempt.worker = batch.locations[size_t(event.location)].second;
    }
    if (!event.error.empty()) attempt.error = std::move(event.error);
  }
  while (attempts_.size() > max_tasks_ && !arrival_.empty()) {
    attempts_.erase(arrival_.front());  // the oldest arrival
    arrival_.pop_front();
    ++evicted_;
  }
}

}  // namespace lumen::gcs
