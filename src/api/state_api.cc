// lumen::state: the head's state API through the GCS's QueryState call (the same rows as
// HTTP's /api/v0/...), parsed into the structs of lumen/state.h.
#include <nlohmann/json.hpp>

#include "api/runtime.h"
#include "lumen/errors.h"
#include "lumen/state.h"
#include "common/url.h"
#include "rpc/rpc.h"

namespace lumen::state {
namespace {

using nlohmann::json;

constexpr int64_t kQueryTimeoutMs = 30000;

// The reply's JSON; a 404 gives null when `missing_ok` (a lookup that found nothing).
json Query(const char* call, const std::string& target, bool missing_ok = false) {
  auto runtime = api::Require(call);
  rpc::QueryStateRequest request;
  request.set_target(target);
  auto reply = rpc::CallBlocking<rpc::QueryStateRequest, rpc::QueryStateReply>(
      [&](auto* ctx, const auto& req, auto* rep) {
        return runtime->gcs->QueryState(ctx, req, rep);
      },
      request, kQueryTimeoutMs);
  if (!reply.ok()) {
    throw Error(std::string("lumen::state::") + call + ": the head did not answer: " +
                std::string(reply.status().message()));
  }
  json body = json::parse(reply->body(), nullptr, /*allow_exceptions=*/false);
  if (body.is_discarded()) {
    throw Error(std::string("lumen::state::") + call + ": the head's reply is not JSON");
  }
  if (reply->http_status() == 404 && missing_ok) return nullptr;
  if (reply->http_status() != 200) {
    std::string message = body.value("error", "status " + std::to_string(reply->http_status()));
    std::string text = "lumen::state::" + std::string(call) + ": " + message;
    if (reply->http_status() == 400) throw ConfigError(text);
    throw Error(text);
  }
  return body;
}

std::string ListTarget(const std::string& resource, const ListOptions& options) {
  std::string target = "/api/v0/" + resource + "?limit=" + std::to_string(options.limit);
  for (const std::string& filter : options.filters) target += "&filter=" + UrlEncode(filter);
  if (!options.continuation_token.empty()) {
    target += "&token=" + UrlEncode(options.continuation_token);
  }
  return target;
}

template <typename Row, typename Parse>
ListResult<Row> List(const char* call, const std::string& resource, const ListOptions& options,
                     Parse parse) {
  json body = Query(call, ListTarget(resource, options));
  ListResult<Row> result;
  for (const json& row : body["rows"]) result.rows.push_back(parse(row));
  result.total = body.value("total", int64_t(0));
  result.next_token = body.value("next_token", "");
  for (const json& warning : body["warnings"]) result.warnings.push_back(warning);
  return result;
}

std::map<std::string, double> Amounts(const json& object) {
  std::map<std::string, double> out;
  for (const auto& [name, amount] : object.items()) out[name] = amount.get<double>();
  return out;
}

TaskState ParseTask(const json& row) {
  TaskState task;
  task.task_id = row.value("task_id", "");
  task.attempt_number = row.value("attempt_number", 0);
  task.name = row.value("name", "");
  task.func_name = row.value("func_name", "");
  task.type = row.value("type", "");
  task.state = row.value("state", "");
  task.job_id = row.value("job_id", "");
  task.actor_id = row.value("actor_id", "");
  task.parent_task_id = row.value("parent_task_id", "");
  task.node_id = row.value("node_id", "");
  task.worker_id = row.value("worker_id", "");
  task.error_message = row.value("error_message", "");
  task.creation_time_us = row.value("creation_time_us", int64_t(0));
  task.start_time_us = row.value("start_time_us", int64_t(0));
  task.end_time_us = row.value("end_time_us", int64_t(0));
  return task;
}

ActorState ParseActor(const json& row) {
  ActorState actor;
  actor.actor_id = row.value("actor_id", "");
  actor.class_name = row.value("class_name", "");
  actor.name = row.value("name", "");
  actor.namespace_ = row.value("namespace", "");
  actor.state = row.value("state", "");
  actor.job_id = row.value("job_id", "");
  actor.node_id = row.value("node_id", "");
  actor.worker_id = row.value("worker_id", "");
  actor.pid = row.value("pid", 0);
  actor.num_restarts = row.value("num_restarts", 0);
  actor.death_cause = row.value("death_cause", "");
  actor.detached = row.value("detached", false);
  actor.placement_group_id = row.value("placement_group_id", "");
  return actor;
}

NodeState ParseNode(const json& row) {
  NodeState node;
  node.node_id = row.value("node_id", "");
  node.node_ip = row.value("node_ip", "");
  node.hostname = row.value("hostname", "");
  node.state = row.value("state", "");
  node.is_head = row.value("is_head", false);
  node.resources_total = Amounts(row.value("resources_total", json::object()));
  node.resources_available = Amounts(row.value("resources_available", json::object()));
  node.death_cause = row.value("death_cause", "");
  return node;
}

JobState ParseJob(const json& row) {
  JobState job;
  job.job_id = row.value("job_id", "");
  job.state = row.value("state", "");
  job.namespace_ = row.value("namespace", "");
  job.entrypoint = row.value("entrypoint", "");
  job.driver_pid = row.value("driver_pid", 0);
  job.start_time_ms = row.value("start_time_ms", int64_t(0));
  job.end_time_ms = row.value("end_time_ms", int64_t(0));
  return job;
}

std::vector<Summary> Summarize(const char* call, const std::string& resource) {
  json body = Query(call, "/api/v0/" + resource + "/summarize");
  std::vector<Summary> out;
  for (const auto& [name, entry] : body["summary"].items()) {
    Summary summary;
    summary.name = name;
    summary.type = entry.value("type", "");
    for (const auto& [state, count] : entry["state_counts"].items()) {
      summary.state_counts[state] = count.get<int64_t>();
    }
    out.push_back(std::move(summary));
  }
  return out;
}

}  // namespace

ListResult<TaskState> ListTasks(const ListOptions& options) {
  return List<TaskState>("ListTasks", "tasks", options, ParseTask);
}
ListResult<ActorState> ListActors(const ListOptions& options) {
  return List<ActorState>("ListActors", "actors", options, ParseActor);
}
ListResult<NodeState> ListNodes(const ListOptions& options) {
  return List<NodeState>("ListNodes", "nodes", options, ParseNode);
}
ListResult<JobState> ListJobs(const ListOptions& options) {
  return List<JobState>("ListJobs", "jobs", options, ParseJob);
}

std::vector<TaskState> GetTask(const std::string& task_id) {
  json body = Query("GetTask", "/api/v0/tasks/" + UrlEncode(task_id), /*missing_ok=*/true);
  std::vector<TaskState> out;
  if (body.is_null()) return out;
  for (const json& row : body["rows"]) out.push_back(ParseTask(row));
  return out;
}

std::vector<Summary> SummarizeTasks() { return Summarize("SummarizeTasks", "tasks"); }
std::vector<Summary> SummarizeActors() { return Summarize("SummarizeActors", "actors"); }

}  // namespace lumen::state
