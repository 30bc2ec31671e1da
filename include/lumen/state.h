// lumen::state — what the cluster is doing: its tasks (every attempt, with its state
// changes), actors, nodes and jobs, as the head's state API serves them (the same rows as
// `lumen list` and GET /api/v0/...). Lists are paged: a result with a non-empty
// next_token has more rows; pass it back as ListOptions::continuation_token.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace lumen::state {

struct ListOptions {
  /// "key=value" or "key!=value" (case-insensitive), all of which a row must match; the
  /// keys are the row's fields below (ConfigError names the known ones).
  std::vector<std::string> filters{};
  /// Rows per call, 1..10000.
  size_t limit = 100;
  std::string continuation_token{};
};

template <typename Row>
struct ListResult {
  std::vector<Row> rows;
  int64_t total = 0;       // rows matching the filters, over every page
  std::string next_token;  // empty: the last page
  /// Why the list may be incomplete (task events dropped by busy processes, or evicted
  /// past the head's --max-task-events).
  std::vector<std::string> warnings;
};

/// One attempt of a task or actor call. Times: microseconds since the epoch, 0 when not
/// reached. States: PENDING_ARGS_AVAIL, PENDING_NODE_ASSIGNMENT, SUBMITTED_TO_WORKER,
/// RUNNING, FINISHED, FAILED.
struct TaskState {
  std::string task_id;  // hex, as in lumen::GetRuntimeContext().TaskId()
  int attempt_number = 0;
  std::string name;       // the name it was given, else its function
  std::string func_name;
  std::string type;       // NORMAL_TASK, ACTOR_CREATION_TASK, ACTOR_TASK
  std::string state;
  std::string job_id, actor_id, parent_task_id, node_id, worker_id;
  std::string error_message;  // FAILED: the error its caller sees
  int64_t creation_time_us = 0, start_time_us = 0, end_time_us = 0;
};

/// States: PENDING, ALIVE, RESTARTING, DEAD.
struct ActorState {
  std::string actor_id, class_name, name, namespace_, state, job_id, node_id, worker_id;
  int pid = 0;
  int num_restarts = 0;
  std::string death_cause;
  bool detached = false;
  std::string placement_group_id;
};

/// States: ALIVE, DEAD.
struct NodeState {
  std::string node_id, node_ip, hostname, state;
  bool is_head = false;
  std::map<std::string, double> resources_total, resources_available;
  std::string death_cause;
};

/// States: RUNNING, FINISHED, FAILED (its driver died without finishing it).
struct JobState {
  std::string job_id, state, namespace_, entrypoint;
  int driver_pid = 0;
  int64_t start_time_ms = 0, end_time_ms = 0;
};

/// Tasks (or actors) with the same name (class), by state.
struct Summary {
  std::string name;
  std::string type;  // tasks: NORMAL_TASK, ACTOR_CREATION_TASK, ACTOR_TASK
  std::map<std::string, int64_t> state_counts;
};

/// Throw ConfigError on a bad filter or limit (or before Init), Error when the head does
/// not answer.
ListResult<TaskState> ListTasks(const ListOptions& options = {});
ListResult<ActorState> ListActors(const ListOptions& options = {});
ListResult<NodeState> ListNodes(const ListOptions& options = {});
ListResult<JobState> ListJobs(const ListOptions& options = {});
/// Every attempt of task `task_id` (hex); empty when the head has no record of it.
std::vector<TaskState> GetTask(const std::string& task_id);
std::vector<Summary> SummarizeTasks();
std::vector<Summary> SummarizeActors();

}  // namespace lumen::state
