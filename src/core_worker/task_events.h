// Task events: the state changes of the tasks a process submits (as their owner) and runs
// (as their worker), buffered here and sent to the GCS in batches, where the state API
// (`lumen list tasks`, the timeline) reads them. Recording is a lock and a push of a
// small record; everything else happens at the flush, once a period, off the task path.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/ids.h"
#include "common/mutex.h"
#include "core_worker/stored_object.h"
#include "gcs.pb.h"

namespace lumen::core {

class TaskEvents {
 public:
  /// How often a process sends its events to the GCS.
  static constexpr int kFlushPeriodMs = 1000;
  /// Events a process keeps between two flushes; more are dropped (and counted: the GCS
  /// adds the count to the state API's replies, so a user sees that lists are short).
  static constexpr size_t kMaxBuffered = 100000;

  /// `enabled` false: every call is a no-op (--lumen-task-events=false).
  TaskEvents(bool enabled, WorkerId worker) : enabled_(enabled), worker_(worker) {}
  /// Whether events wait to be sent.
  bool HasBuffered();

  bool enabled() const { return enabled_; }
  /// The owner submitted an attempt: its first event, with what describes the task
  /// (PENDING_ARGS_AVAIL when it has ObjectRef arguments, else PENDING_NODE_ASSIGNMENT).
  void Submitted(const rpc::TaskSpec& spec) {
    Submitted(spec, HasRefArgs(spec) ? rpc::PENDING_ARGS_AVAIL : rpc::PENDING_NODE_ASSIGNMENT);
  }
  void Submitted(const rpc::TaskSpec& spec, rpc::TaskStatus state);
  /// The attempt ended with `error` (a retry follows, or the worker's error is final).
  void Failed(const rpc::TaskSpec& spec, std::string error);
  /// Whether `spec` has ObjectRef arguments (it is PENDING_ARGS_AVAIL first).
  static bool HasRefArgs(const rpc::TaskSpec& spec);
  /// A state change of `spec`'s attempt; `node`/`worker` are binary ids ("" if none).
  void Record(const rpc::TaskSpec& spec, rpc::TaskStatus state, const std::string& node = "",
              const std::string& worker = "");
  /// The attempt ended: FINISHED, or FAILED with the error its caller sees (`error`, or
  /// the error in `result`'s returns). A result also says when its worker ran it
  /// (RUNNING, and the end, at the worker's times).
  void Ended(const rpc::TaskSpec& spec, const rpc::TaskResult* result, const ObjectPtr& error);
  /// Moves what is buffered into `request`; false when there is nothing to send.
  bool TakeBatch(rpc::AddTaskEventsRequest* request);

 private:
  struct Event {
    TaskId task;
    int32_t attempt = 0;
    rpc::TaskStatus state = rpc::TASK_STATUS_NIL;
    int64_t time_us = 0;
    std::string node;    // binary
    std::string worker;  // binary
    std::string error;
    bool described = false;  // the owner's first event: the fields below are set
    rpc::TaskDescription::Type type = rpc::TaskDescription::NORMAL_TASK;
    std::string name;
    std::string function_name;
    std::string job_id;
    std::string actor_id;
    std::string parent_task_id;
  };
  void Push(Event event);

  const bool enabled_;
  const WorkerId worker_;
  Mutex mutex_;
  std::vector<Event> buffer_ ABSL_GUARDED_BY(mutex_);
  uint64_t dropped_since_flush_ ABSL_GUARDED_BY(mutex_) = 0;
};

/// `spec` is tried again: its attempt ends FAILED with `why` (in `events`, when not null)
/// and the next attempt, numbered one more, is submitted.
void NextAttempt(TaskEvents* events, rpc::TaskSpec* spec, const std::string& why);

/// "TaskError: std::runtime_error: boom": how an error object reads in the state API.
std::string DescribeError(ErrorKind kind, const std::string& type, const std::string& message);

}  // namespace lumen::core
