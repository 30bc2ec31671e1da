#include "gcs/task_event_table.h"

namespace lumen::gcs {

std::string TaskEventTable::KeyOf(const std::string& task_id, int32_t attempt) {
  std::string key = task_id;
  auto value = uint32_t(attempt);
  for (int shift = 24; shift >= 0; shift -= 8) key.push_back(char((value >> shift) & 0xff));
  return key;
}

void TaskEventTable::Add(const rpc::AddTaskEventsRequest& request) {
  dropped_at_workers_ += request.dropped();
  for (const rpc::TaskEvent& event : request.events()) {
    if (event.state() <= rpc::TASK_STATUS_NIL || event.state() >= rpc::TaskStatus_ARRAYSIZE) {
      continue;  // from a newer worker: a state this GCS does not know
    }
    std::string key = KeyOf(event.task_id(), event.attempt());
    auto [it, inserted] = attempts_.try_emplace(key);
    Attempt& attempt = it->second;
    if (inserted) {
      attempt.task_id = event.task_id();
      attempt.attempt = event.attempt();
      arrival_.push_back(key);
    }
    if (event.has_description()) {
      attempt.description = event.description();
      attempt.described = true;
    }
    // Events of one attempt come from its owner and its worker, in any order: the state
    // is the furthest one seen (FAILED beats FINISHED: the caller saw the error).
    if (event.state() > attempt.state) attempt.state = event.state();
    int64_t& first = attempt.time_us[event.state()];
    if (first == 0 || event.time_us() < first) first = event.time_us();
    if (!event.node_id().empty()) attempt.node_id = event.node_id();
    if (!event.worker_id().empty()) attempt.worker_id = event.worker_id();
    if (!event.error().empty()) attempt.error = event.error();
  }
  while (attempts_.size() > max_tasks_ && !arrival_.empty()) {
    attempts_.erase(arrival_.front());
    arrival_.pop_front();
    ++evicted_;
  }
}

}  // namespace lumen::gcs
