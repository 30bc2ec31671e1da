// The GCS's table of task attempts, merged from the task events every core worker sends
// (core_worker/task_events.h): what the state API lists as tasks. Bounded: past
// `max_tasks` attempts the oldest are evicted, and counted.
#pragma once

#include <array>
#include <cstdint>
#include <deque>
#include <map>
#include <string>

#include "gcs.pb.h"

namespace lumen::gcs {

class TaskEventTable {
 public:
  static constexpr size_t kDefaultMaxTasks = 100000;

  struct Attempt {
    std::string task_id;  // binary
    int32_t attempt = 0;
    bool described = false;  // the owner's description arrived
    rpc::TaskDescription description;
    rpc::TaskStatus state = rpc::TASK_STATUS_NIL;  // the furthest state seen
    std::string node_id;    // binary; where it was sent / ran
    std::string worker_id;  // binary
    std::string error;      // FAILED: the caller's error
    // When each state was first seen (microseconds since the epoch; 0: not seen), by
    // TaskStatus.
    std::array<int64_t, rpc::TaskStatus_ARRAYSIZE> time_us{};
  };

  explicit TaskEventTable(size_t max_tasks = kDefaultMaxTasks) : max_tasks_(max_tasks) {}

  void Add(const rpc::AddTaskEventsRequest& request);
  /// By key (task id bytes then attempt, big-endian): a stable order for paging.
  const std::map<std::string, Attempt>& attempts() const { return attempts_; }
  static std::string KeyOf(const std::string& task_id, int32_t attempt);
  /// Events workers dropped (their buffers were full) and attempts evicted here.
  uint64_t dropped_at_workers() const { return dropped_at_workers_; }
  uint64_t evicted() const { return evicted_; }
  size_t max_tasks() const { return max_tasks_; }

 private:
  const size_t max_tasks_;
  std::map<std::string, Attempt> attempts_;
  std::deque<std::string> arrival_;  // keys, oldest first (eviction order)
  uint64_t dropped_at_workers_ = 0;
  uint64_t evicted_ = 0;
};

}  // namespace lumen::gcs
