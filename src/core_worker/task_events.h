// Task events: the state changes of the tasks a process submits (as their owner), kept
// here per attempt and sent to the GCS in batches, where the state API (`lumen list
// tasks`, the timeline) reads them. Recording is a lock and an append of a fixed-size
// record; the flush (once a period, off the task path) merges them, so that an attempt
// that starts and ends between two flushes (most do) travels as one event.
#pragma once

#include <array>
#include <cstdint>
#include <string>

#include <vector>

#include "absl/container/node_hash_set.h"
#include "common/ids.h"
#include "common/mutex.h"
#include "core_worker/stored_object.h"
#include "gcs.pb.h"

namespace lumen::core {

class TaskEvents {
 public:
  /// How often a process sends its events to the GCS.
  static constexpr int kFlushPeriodMs = 1000;
  /// State changes a process keeps between two flushes; more are dropped (and counted:
  /// the GCS adds the count to the state API's replies, so a user sees that lists are
  /// short).
  static constexpr size_t kMaxBuffered = 400000;

  /// `enabled` false: every call is a no-op (--lumen-task-events=false).
  /// Events of this process (`worker`), which submits tasks of `job`.
  TaskEvents(bool enabled, WorkerId worker, JobId job)
      : enabled_(enabled), worker_(worker), job_(job) {}

  bool enabled() const { return enabled_; }
  /// The owner submitted an attempt: its first event, with what describes the task
  /// (PENDING_ARGS_AVAIL when it has ObjectRef arguments, else PENDING_NODE_ASSIGNMENT).
  void Submitted(const rpc::TaskSpec& spec) {
    Submitted(spec, HasRefArgs(spec) ? rpc::PENDING_ARGS_AVAIL : rpc::PENDING_NODE_ASSIGNMENT);
  }
  void Submitted(const rpc::TaskSpec& spec, rpc::TaskStatus state);
  /// Whether `spec` has ObjectRef arguments (it is PENDING_ARGS_AVAIL first).
  static bool HasRefArgs(const rpc::TaskSpec& spec);
  /// A state change of `spec`'s attempt; `node`/`worker` are binary ids ("" if none).
  void Record(const rpc::TaskSpec& spec, rpc::TaskStatus state, const std::string& node = "",
              const std::string& worker = "");
  /// The attempt ended with `error` (a retry follows, or the worker's error is final).
  void Failed(const rpc::TaskSpec& spec, std::string error);
  /// The attempt ended: FINISHED, or FAILED with the error its caller sees (`error`, or
  /// the error in `result`'s returns). A result also says when its worker ran it
  /// (RUNNING, and the end, at the worker's times).
  void Ended(const rpc::TaskSpec& spec, const rpc::TaskResult* result, const ObjectPtr& error);
  /// Moves what is buffered into `request`; false when there is nothing to send.
  bool TakeBatch(rpc::AddTaskEventsRequest* request);
  /// Whether events wait to be sent.
  bool HasBuffered();

 private:
  // One state change, recorded as it happens: a fixed-size record (names point into the
  // period's interned strings), so that recording allocates nothing. The flush merges a
  // period's records into one event per attempt.
  struct Change {
    TaskId task;
    int32_t attempt = 0;
    rpc::TaskStatus state = rpc::TASK_STATUS_NIL;
    bool described = false;  // Submitted: the fields below are set
    bool located = false;    // node and worker are set
    rpc::TaskDescription::Type type = rpc::TaskDescription::NORMAL_TASK;
    int64_t time_us = 0;
    int64_t start_us = 0;    // an end that says when its worker started it (RUNNING)
    int32_t error = -1;      // into errors_
    NodeId node;
    WorkerId worker;
    const std::string* name = nullptr;           // interned
    const std::string* function_name = nullptr;  // interned; null: the same as name
    ActorId actor;
    TaskId parent;
  };
  /// A change of `spec`'s attempt to `state`, now.
  static Change ChangeOf(const rpc::TaskSpec& spec, rpc::TaskStatus state);
  void Push(Change change) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  const std::string* Intern(const std::string& text) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);

  const bool enabled_;
  const WorkerId worker_;
  const JobId job_;
  Mutex mutex_;
  std::vector<Change> changes_ ABSL_GUARDED_BY(mutex_);
  std::vector<std::string> errors_ ABSL_GUARDED_BY(mutex_);
  // This period's names (node-based: the pointers in changes_ stay valid).
  absl::node_hash_set<std::string> names_ ABSL_GUARDED_BY(mutex_);
  std::vector<Change> spare_ ABSL_GUARDED_BY(mutex_);  // the last period's, for its capacity
  uint64_t dropped_since_flush_ ABSL_GUARDED_BY(mutex_) = 0;
};

/// `spec` is tried again: its attempt ends FAILED with `why` (in `events`, when not null)
/// and the next attempt, numbered one more, is submitted.
void NextAttempt(TaskEvents* events, rpc::TaskSpec* spec, const std::string& why);

/// "TaskError: std::runtime_error: boom": how an error object reads in the state API.
std::string DescribeError(ErrorKind kind, const std::string& type, const std::string& message);

}  // namespace lumen::core
