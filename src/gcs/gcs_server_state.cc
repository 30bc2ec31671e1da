// The state API on the GCS: task events in, and lists, lookups and summaries of its
// tables out, as JSON (state_query.h pages and filters them).
#include <algorithm>

#include "common/clock.h"
#include "common/demangle.h"
#include "common/ids.h"
#include "gcs/gcs_server.h"

namespace lumen::gcs {
namespace {

using nlohmann::json;

std::string Hex(const std::string& binary) { return binary.empty() ? "" : HexEncode(binary); }

template <typename Map>
json Resources(const Map& resources) {
  json out = json::object();
  for (const auto& [name, amount] : resources) out[name] = amount;
  return out;
}

// The id column of each resource (what /api/v0/RESOURCE/ID looks up).
const char* IdColumn(const std::string& resource) {
  if (resource == "tasks") return "task_id";
  if (resource == "actors") return "actor_id";
  if (resource == "nodes") return "node_id";
  if (resource == "jobs") return "job_id";
  if (resource == "placement_groups") return "placement_group_id";
  return "";
}

template <typename Id>
std::string IdHex(const Id& id) {
  return id.IsNil() ? "" : id.Hex();
}

json TaskRow(const TaskEventTable::Attempt& attempt) {
  json row;
  row["task_id"] = attempt.task.Hex();
  row["attempt_number"] = attempt.attempt;
  row["name"] = *attempt.name;
  row["func_name"] = *attempt.function_name;
  row["type"] = rpc::TaskDescription::Type_Name(attempt.type);
  row["state"] = rpc::TaskStatus_Name(attempt.state);
  row["job_id"] = IdHex(attempt.job);
  row["actor_id"] = IdHex(attempt.actor);
  row["parent_task_id"] = IdHex(attempt.parent);
  row["owner_worker_id"] = IdHex(attempt.owner);
  row["node_id"] = IdHex(attempt.node);
  row["worker_id"] = IdHex(attempt.worker);
  row["error_message"] = attempt.error;
  const auto& times = attempt.time_us;
  int64_t created = 0;
  for (int state : {rpc::PENDING_ARGS_AVAIL, rpc::PENDING_NODE_ASSIGNMENT}) {
    if (times[state] != 0 && (created == 0 || times[state] < created)) created = times[state];
  }
  int64_t ended = std::max(times[rpc::FINISHED], times[rpc::FAILED]);
  row["creation_time_us"] = created;
  row["start_time_us"] = times[rpc::RUNNING];
  row["end_time_us"] = ended;
  json events = json::array();
  for (int state = 1; state < rpc::TaskStatus_ARRAYSIZE; ++state) {
    if (times[state] == 0) continue;
    events.push_back({{"state", rpc::TaskStatus_Name(rpc::TaskStatus(state))},
                      {"time_us", times[state]}});
  }
  row["events"] = std::move(events);
  return row;
}

// A task column's text for filters, without building the row.
std::string TaskColumn(const TaskEventTable::Attempt& attempt, const std::string& column) {
  if (column == "state") return rpc::TaskStatus_Name(attempt.state);
  if (column == "name") return *attempt.name;
  if (column == "type") return rpc::TaskDescription::Type_Name(attempt.type);
  if (column == "task_id") return attempt.task.Hex();
  if (column == "attempt_number") return std::to_string(attempt.attempt);
  if (column == "func_name") return *attempt.function_name;
  if (column == "job_id") return IdHex(attempt.job);
  if (column == "actor_id") return IdHex(attempt.actor);
  if (column == "parent_task_id") return IdHex(attempt.parent);
  if (column == "owner_worker_id") return IdHex(attempt.owner);
  if (column == "node_id") return IdHex(attempt.node);
  if (column == "worker_id") return IdHex(attempt.worker);
  if (column == "error_message") return attempt.error;
  return "";
}

const std::vector<std::string> kTaskColumns = {
    "task_id", "attempt_number", "name", "func_name", "type", "state", "job_id",
    "actor_id", "parent_task_id", "owner_worker_id", "node_id", "worker_id",
    "error_message"};
const std::vector<std::string> kActorColumns = {
    "actor_id", "class_name", "name", "namespace", "state", "job_id", "node_id",
    "worker_id", "pid", "num_restarts", "death_cause", "detached", "placement_group_id"};
const std::vector<std::string> kNodeColumns = {"node_id", "node_ip", "hostname", "state",
                                               "is_head", "death_cause"};
const std::vector<std::string> kJobColumns = {"job_id", "state", "namespace", "driver_pid",
                                              "driver_node_id", "entrypoint"};
const std::vector<std::string> kGroupColumns = {"placement_group_id", "name", "namespace",
                                                "state", "strategy", "job_id", "detached"};

// Replies with the page, or the filter error; a lookup (kGet) with its rows or 404.
StateReply Reply(const StateRequest& request, StatePage& page,
                 const std::vector<std::string>& warnings) {
  json result = page.Result(warnings);
  if (request.kind == StateRequest::kGet && result["rows"].empty()) {
    return ErrorReply(404, "no " + request.resource + " row has " +
                               IdColumn(request.resource) + " " + request.id);
  }
  return JsonReply(result);
}

}  // namespace

void GcsServer::HandleAddTaskEvents(const rpc::AddTaskEventsRequest& request,
                                    rpc::AddTaskEventsReply*, rpc::Done done) {
  // Decoded here, on the RPC's thread; the loop only merges.
  auto batch = std::make_shared<TaskEventTable::Batch>(TaskEventTable::Decode(request));
  done(absl::OkStatus());
  loop_.Post([this, batch] { task_events_.Apply(std::move(*batch)); });
}

void GcsServer::RecordCreation(const rpc::TaskSpec& creation, rpc::TaskStatus state,
                               const std::string& node_id, const std::string& worker_id,
                               const rpc::TaskResult* result) {
  TaskEventTable::Batch batch;
  batch.job = JobId::FromBinary(creation.job_id());
  TaskEventTable::Batch::Event& event = batch.events.emplace_back();
  event.task = TaskId::FromBinary(creation.task_id());
  event.attempt = creation.attempt();
  if (!node_id.empty() || !worker_id.empty()) {
    batch.locations.emplace_back(NodeId::FromBinary(node_id), WorkerId::FromBinary(worker_id));
    event.location = 0;
  }
  if (result == nullptr) {
    event.state = state;
    event.times[state] = WallMicros();
    if (state == rpc::PENDING_NODE_ASSIGNMENT) {
      event.described = true;
      event.type = rpc::TaskDescription::ACTOR_CREATION_TASK;
      batch.names.push_back(creation.name().empty() ? creation.function_name()
                                                    : creation.name());
      batch.names.push_back(creation.function_name());
      event.name = 0;
      event.function_name = 1;
      event.actor = ActorId::FromBinary(creation.actor_creation().actor_id());
      event.parent = TaskId::FromBinary(creation.parent_task_id());
    }
  } else {
    bool failed = result->returns_size() > 0 && result->returns(0).is_error();
    event.state = failed ? rpc::FAILED : rpc::FINISHED;
    if (result->start_time_us() > 0) event.times[rpc::RUNNING] = result->start_time_us();
    event.times[event.state] = result->end_time_us() > 0 ? result->end_time_us() : WallMicros();
    if (failed) {
      const rpc::ErrorInfo& error = result->returns(0).error();
      event.error = error.type_name().empty() ? error.message()
                                              : error.type_name() + ": " + error.message();
    }
  }
  task_events_.Apply(std::move(batch));
}

void GcsServer::HandleQueryState(const rpc::QueryStateRequest& request,
                                 rpc::QueryStateReply* reply, rpc::Done done) {
  loop_.Post([this, request, reply, done] {
    StateReply answer = ServeState(request.target());
    reply->set_http_status(answer.status);
    reply->set_body(std::move(answer.body));
    done(absl::OkStatus());
  });
}

StateReply GcsServer::ServeState(const std::string& target) {
  auto parsed = ParseStateTarget(target);
  if (!parsed.ok()) {
    return ErrorReply(absl::IsNotFound(parsed.status()) ? 404 : 400,
                      std::string(parsed.status().message()));
  }
  StateRequest& request = *parsed;
  if (request.kind == StateRequest::kGet) {
    // A lookup is a list filtered by the id column.
    if (IdColumn(request.resource)[0] != '\0') {
      request.filters.push_back({IdColumn(request.resource), true, request.id});
      request.limit = kMaxStateLimit;
    }
  }
  const std::string& resource = request.resource;
  if (request.kind == StateRequest::kSummarize) {
    if (resource == "tasks") return SummarizeTasks(request);
    if (resource == "actors") return SummarizeActors(request);
    return ErrorReply(404, "no summary of '" + resource + "' (summaries: tasks, actors)");
  }
  if (resource == "tasks") return ListTasks(request);
  if (resource == "actors") return ListActors(request);
  if (resource == "nodes") return ListNodes(request);
  if (resource == "jobs") return ListJobs(request);
  if (resource == "placement_groups") return ListPlacementGroups(request);
  return ErrorReply(404, "unknown resource '" + resource +
                             "' (known: tasks, actors, nodes, jobs, placement_groups)");
}

http::Response GcsServer::ServeHttp(const http::Request& request) {
  http::Response response;
  if (request.target.starts_with("/api/v0/") || request.target == "/api/v0") {
    StateReply reply = request.method == "GET"
                           ? ServeState(request.target)
                           : ErrorReply(405, "the state API takes GET, not " + request.method);
    response.status = reply.status;
    response.body = std::move(reply.body);
    return response;
  }
  StateReply missing = ErrorReply(404, "no such route: " + request.target +
                                           " (the state API is under /api/v0/)");
  response.status = missing.status;
  response.body = std::move(missing.body);
  return response;
}

std::vector<std::string> GcsServer::TaskWarnings() const {
  std::vector<std::string> warnings;
  if (task_events_.dropped_at_workers() > 0) {
    warnings.push_back(std::to_string(task_events_.dropped_at_workers()) +
                       " task event(s) were dropped by processes whose event buffers were "
                       "full: some tasks are missing or show an earlier state");
  }
  if (task_events_.evicted() > 0) {
    warnings.push_back(std::to_string(task_events_.evicted()) +
                       " older task attempt(s) were evicted: the head keeps the last " +
                       std::to_string(task_events_.max_tasks()) +
                       " (lumen start --head --max-task-events)");
  }
  return warnings;
}

StateReply GcsServer::ListTasks(const StateRequest& request) {
  StatePage page(request, kTaskColumns);
  if (absl::Status ok = page.Check(); !ok.ok()) return ErrorReply(400, std::string(ok.message()));
  for (const auto& [key, attempt] : task_events_.attempts()) {
    page.Offer(std::string(reinterpret_cast<const char*>(key.data()), key.size()),
               [&attempt = attempt] { return TaskRow(attempt); },
               [&attempt = attempt](const std::string& column) {
                 return TaskColumn(attempt, column);
               });
  }
  return Reply(request, page, TaskWarnings());
}

StateReply GcsServer::SummarizeTasks(const StateRequest& request) {
  StatePage check(request, kTaskColumns);
  if (absl::Status ok = check.Check(); !ok.ok()) return ErrorReply(400, std::string(ok.message()));
  std::map<std::string, json> by_name;
  uint64_t total = 0;
  for (const auto& [key, attempt] : task_events_.attempts()) {
    ++total;
    json& entry = by_name[*attempt.name];
    if (entry.is_null()) {
      entry["type"] = rpc::TaskDescription::Type_Name(attempt.type);
      entry["state_counts"] = json::object();
    }
    json& count = entry["state_counts"][rpc::TaskStatus_Name(attempt.state)];
    count = count.is_null() ? 1 : count.get<int64_t>() + 1;
  }
  json summary = json::object();
  for (auto& [name, entry] : by_name) summary[name] = std::move(entry);
  return JsonReply({{"summary", summary}, {"total", total}, {"warnings", TaskWarnings()}});
}

StateReply GcsServer::ListActors(const StateRequest& request) {
  StatePage page(request, kActorColumns);
  if (absl::Status ok = page.Check(); !ok.ok()) return ErrorReply(400, std::string(ok.message()));
  actors_.ForEach([&](const rpc::ActorSpec& spec, const rpc::ActorInfo& info) {
    page.Offer(spec.actor_id(), [&] {
      json row;
      row["actor_id"] = Hex(spec.actor_id());
      row["class_name"] = Demangle(spec.class_name().c_str());
      row["name"] = spec.name();
      row["namespace"] = info.namespace_();
      row["state"] = rpc::ActorInfo::State_Name(info.state());
      row["job_id"] = Hex(spec.job_id());
      row["node_id"] = Hex(info.node_id());
      row["worker_id"] = Hex(info.worker_id());
      row["pid"] = info.pid();
      row["num_restarts"] = info.incarnation();
      row["max_restarts"] = spec.max_restarts();
      row["death_cause"] = info.death_cause();
      row["detached"] = spec.detached();
      row["resources"] = Resources(spec.resources());
      row["placement_group_id"] = Hex(spec.scheduling().placement_group_id());
      return row;
    });
  });
  return Reply(request, page, {});
}

StateReply GcsServer::SummarizeActors(const StateRequest&) {
  std::map<std::string, json> by_class;
  uint64_t total = 0;
  actors_.ForEach([&](const rpc::ActorSpec& spec, const rpc::ActorInfo& info) {
    ++total;
    json& count = by_class[Demangle(spec.class_name().c_str())]["state_counts"]
                          [rpc::ActorInfo::State_Name(info.state())];
    count = count.is_null() ? 1 : count.get<int64_t>() + 1;
  });
  json summary = json::object();
  for (auto& [name, entry] : by_class) summary[name] = std::move(entry);
  return JsonReply({{"summary", summary}, {"total", total}, {"warnings", json::array()}});
}

StateReply GcsServer::ListNodes(const StateRequest& request) {
  StatePage page(request, kNodeColumns);
  if (absl::Status ok = page.Check(); !ok.ok()) return ErrorReply(400, std::string(ok.message()));
  nodes_.ForEach([&](const rpc::NodeInfo& node) {
    page.Offer(node.node_id(), [&] {
      json row;
      row["node_id"] = Hex(node.node_id());
      row["node_ip"] = node.node_ip();
      row["hostname"] = node.hostname();
      row["state"] = node.alive() ? "ALIVE" : "DEAD";
      row["is_head"] = node.is_head();
      row["resources_total"] = Resources(node.total());
      row["resources_available"] = Resources(node.available());
      row["raylet_address"] = node.raylet_address();
      row["object_address"] = node.object_address();
      row["session_dir"] = node.session_dir();
      row["death_cause"] = node.death_cause();
      return row;
    });
  });
  return Reply(request, page, {});
}

StateReply GcsServer::ListJobs(const StateRequest& request) {
  StatePage page(request, kJobColumns);
  if (absl::Status ok = page.Check(); !ok.ok()) return ErrorReply(400, std::string(ok.message()));
  for (const auto& [number, job] : jobs_) {
    std::string key(4, '\0');
    for (int i = 0; i < 4; ++i) key[i] = char((number >> (24 - 8 * i)) & 0xff);
    page.Offer(key, [&, number = number, &job = job] {
      json row;
      row["job_id"] = JobId::FromInt(number).Hex();
      row["state"] = !job.finished ? "RUNNING" : job.driver_died.empty() ? "FINISHED" : "FAILED";
      row["namespace"] = NamespaceOf(JobId::FromInt(number).Binary());
      row["driver_pid"] = job.info.driver_pid();
      row["driver_node_id"] = Hex(job.info.driver_node_id());
      row["driver_address"] = job.info.driver_endpoint();
      std::string entrypoint = job.info.launch().executable();
      for (int i = 1; i < job.info.launch().argv_size(); ++i) {
        entrypoint += " " + job.info.launch().argv(i);
      }
      row["entrypoint"] = entrypoint;
      row["start_time_ms"] = job.start_ms;
      row["end_time_ms"] = job.end_ms;
      row["driver_died"] = job.driver_died;
      return row;
    });
  }
  return Reply(request, page, {});
}

StateReply GcsServer::ListPlacementGroups(const StateRequest& request) {
  StatePage page(request, kGroupColumns);
  if (absl::Status ok = page.Check(); !ok.ok()) return ErrorReply(400, std::string(ok.message()));
  rpc::ListPlacementGroupsReply all;
  placement_groups_.List(&all);
  std::vector<const rpc::PlacementGroupInfo*> groups;
  for (const rpc::PlacementGroupInfo& group : all.groups()) groups.push_back(&group);
  std::sort(groups.begin(), groups.end(), [](const auto* a, const auto* b) {
    return a->placement_group_id() < b->placement_group_id();
  });
  for (const rpc::PlacementGroupInfo* group : groups) {
    page.Offer(group->placement_group_id(), [group] {
      json row;
      row["placement_group_id"] = Hex(group->placement_group_id());
      row["name"] = group->name();
      row["namespace"] = group->namespace_();
      row["state"] = rpc::PlacementGroupInfo::State_Name(group->state());
      row["strategy"] = rpc::PlacementGroupInfo::Strategy_Name(group->strategy());
      row["job_id"] = Hex(group->job_id());
      row["detached"] = group->detached();
      json bundles = json::array();
      for (int i = 0; i < group->bundles_size(); ++i) {
        bundles.push_back({{"bundle_index", i},
                           {"resources", Resources(group->bundles(i).resources())},
                           {"node_id", Hex(group->bundles(i).node_id())}});
      }
      row["bundles"] = std::move(bundles);
      row["waiting_reason"] = group->waiting_reason();
      row["infeasible"] = group->infeasible();
      row["removal_cause"] = group->removal_cause();
      row["created_ms"] = group->created_ms();
      return row;
    });
  }
  return Reply(request, page, {});
}

}  // namespace lumen::gcs
