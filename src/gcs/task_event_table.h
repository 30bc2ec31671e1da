// The GCS's table of task attempts, merged from the task events every core worker sends
// (core_worker/task_events.h): what the state API lists as tasks. Bounded: past
// `max_tasks` attempts the oldest are evicted, and counted.
//
// A request is decoded off the GCS loop (Decode, on the RPC's thread: the costly part) and
// applied on it (Apply); names are interned, ids and keys kept in fixed-size form, so
// that an attempt costs the table no allocation of its own.
#pragma once

#include <array>
#include <cstdint>
#include <deque>
#include <string>
#include <unordered_set>
#include <vector>

#include "absl/container/btree_map.h"
#include "common/ids.h"
#include "gcs.pb.h"

namespace lumen::gcs {

class TaskEventTable {
 public:
  static constexpr size_t kDefaultMaxTasks = 100000;
  using Times = std::array<int64_t, rpc::TaskStatus_ARRAYSIZE>;

  struct Attempt {
    TaskId task;
    int32_t attempt = 0;
    bool described = false;  // the owner's description arrived
    rpc::TaskDescription::Type type = rpc::TaskDescription::NORMAL_TASK;
    const std::string* name = &kEmpty;           // interned
    const std::string* function_name = &kEmpty;  // interned
    JobId job;
    ActorId actor;
    TaskId parent;
    WorkerId owner;
    rpc::TaskStatus state = rpc::TASK_STATUS_NIL;  // the furthest state seen
    NodeId node;      // where it was sent / ran
    WorkerId worker;
    std::string error;  // FAILED: the caller's error
    Times time_us{};    // when each state was first seen (microseconds; 0: not seen)
  };

  /// A request, decoded: plain values, the strings of its tables once.
  struct Batch {
    struct Event {
      TaskId task;
      int32_t attempt = 0;
      rpc::TaskStatus state = rpc::TASK_STATUS_NIL;
      Times times{};
      int location = -1;  // into locations
      std::string error;
      bool described = false;
      rpc::TaskDescription::Type type = rpc::TaskDescription::NORMAL_TASK;
      int name = -1, function_name = -1;  // into names
      ActorId actor;
      TaskId parent;
    };
    std::vector<Event> events;
    std::vector<std::pair<NodeId, WorkerId>> locations;
    std::vector<std::string> names;
    JobId job;
    WorkerId owner;
    uint64_t dropped = 0;
  };

  explicit TaskEventTable(size_t max_tasks = kDefaultMaxTasks) : max_tasks_(max_tasks) {}

  /// Anywhere: a request as a batch (malformed entries are skipped).
  static Batch Decode(const rpc::AddTaskEventsRequest& request);
  /// On the owner's thread.
  void Apply(Batch batch);
  void Add(const rpc::AddTaskEventsRequest& request) { Apply(Decode(request)); }

  /// Task id bytes, then the attempt number big-endian: a stable order for paging.
  using Key = std::array<uint8_t, TaskId::Size() + 4>;  // unsigned: sorts as bytes do
  const absl::btree_map<Key, Attempt>& attempts() const { return attempts_; }
  static Key KeyOf(const TaskId& task, int32_t attempt);
  /// Events workers dropped (their buffers were full) and attempts evicted here.
  uint64_t dropped_at_workers() const { return dropped_at_workers_; }
  uint64_t evicted() const { return evicted_; }
  size_t max_tasks() const { return max_tasks_; }

 private:
  static const std::string kEmpty;
  const std::string* Intern(const std::string& name);

  const size_t max_tasks_;
  absl::btree_map<Key, Attempt> attempts_;
  std::deque<Key> arrival_;  // oldest first (eviction)
  std::unordered_set<std::string> names_;  // interned task names (few per job)
  uint64_t dropped_at_workers_ = 0;
  uint64_t evicted_ = 0;
};

}  // namespace lumen::gcs
