// `lumen list`, `lumen get`, `lumen summary`: the head's state API (QueryState, the rows
// of GET /api/v0/...) as tables for people or JSON for scripts.
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "cli/cli.h"
#include "gcs.grpc.pb.h"
#include "common/url.h"
#include "rpc/rpc.h"

namespace lumen::cli {
namespace {

using nlohmann::json;

constexpr size_t kPage = 10000;  // the state API's largest page
constexpr int64_t kTimeoutMs = 30000;

struct Column {
  const char* header;
  const char* key;
  size_t width;  // 0: as wide as it is
};

// What a table shows of each resource (--detail and --format=json show every field).
std::vector<Column> ColumnsOf(const std::string& resource) {
  if (resource == "tasks") {
    return {{"TASK_ID", "task_id", 0}, {"ATTEMPT", "attempt_number", 0},
            {"NAME", "name", 32},      {"STATE", "state", 0},
            {"TYPE", "type", 0},       {"NODE_ID", "node_id", 12},
            {"ERROR", "error_message", 60}};
  }
  if (resource == "actors") {
    return {{"ACTOR_ID", "actor_id", 0}, {"CLASS", "class_name", 32}, {"NAME", "name", 24},
            {"STATE", "state", 0},       {"PID", "pid", 0},           {"NODE_ID", "node_id", 12},
            {"RESTARTS", "num_restarts", 0}, {"DEATH_CAUSE", "death_cause", 60}};
  }
  if (resource == "nodes") {
    return {{"NODE_ID", "node_id", 0}, {"IP", "node_ip", 0}, {"STATE", "state", 0},
            {"HEAD", "is_head", 0},    {"TOTAL", "resources_total", 48},
            {"DEATH_CAUSE", "death_cause", 60}};
  }
  if (resource == "jobs") {
    return {{"JOB_ID", "job_id", 0}, {"STATE", "state", 0}, {"NAMESPACE", "namespace", 24},
            {"DRIVER_PID", "driver_pid", 0}, {"ENTRYPOINT", "entrypoint", 60}};
  }
  return {{"PLACEMENT_GROUP_ID", "placement_group_id", 0}, {"NAME", "name", 24},
          {"STATE", "state", 0}, {"STRATEGY", "strategy", 0},
          {"WAITING_REASON", "waiting_reason", 60}};
}

std::string Cell(const json& row, const Column& column) {
  auto it = row.find(column.key);
  std::string text;
  if (it != row.end()) {
    if (it->is_string()) {
      text = it->get<std::string>();
    } else if (it->is_object()) {
      for (const auto& [name, value] : it->items()) {
        text += (text.empty() ? "" : " ") + name + ":" + value.dump();
      }
    } else {
      text = it->dump();
    }
  }
  for (char& c : text) {
    if (c == '\n' || c == '\t') c = ' ';
  }
  if (column.width > 0 && text.size() > column.width) text = text.substr(0, column.width - 3) + "...";
  return text.empty() ? "-" : text;
}

void PrintTable(const std::vector<Column>& columns, const std::vector<json>& rows) {
  std::vector<size_t> widths;
  for (const Column& column : columns) widths.push_back(std::string(column.header).size());
  std::vector<std::vector<std::string>> cells;
  for (const json& row : rows) {
    std::vector<std::string> line;
    for (size_t i = 0; i < columns.size(); ++i) {
      line.push_back(Cell(row, columns[i]));
      widths[i] = std::max(widths[i], line.back().size());
    }
    cells.push_back(std::move(line));
  }
  auto print = [&](const std::vector<std::string>& line) {
    std::string out;
    for (size_t i = 0; i < line.size(); ++i) {
      std::string cell = line[i];
      if (i + 1 < line.size()) cell.resize(widths[i] + 2, ' ');
      out += cell;
    }
    std::printf("%s\n", out.c_str());
  };
  std::vector<std::string> headers;
  for (const Column& column : columns) headers.push_back(column.header);
  print(headers);
  for (const auto& line : cells) print(line);
}

// The API's name of a resource the user typed ("actor", "placement-groups", ...).
std::string ResourceName(std::string typed) {
  std::replace(typed.begin(), typed.end(), '-', '_');
  if (!typed.empty() && typed.back() != 's') typed += 's';
  for (const char* known : {"tasks", "actors", "nodes", "jobs", "placement_groups"}) {
    if (typed == known) return typed;
  }
  return "";
}

class Client {
 public:
  explicit Client(std::string command) : command_(std::move(command)) {}

  bool Connect(const std::string& given) {
    address_ = ResolveAddress(given);
    if (address_.empty()) {
      std::fprintf(stderr, "lumen %s: no cluster was started on this machine; give "
                           "--address=HOST:PORT of a head node\n", command_.c_str());
      return false;
    }
    stub_ = rpc::GcsService::NewStub(rpc::MakeChannel(address_));
    return true;
  }

  // The reply's body, or null after printing why (`status` gets the HTTP status).
  json Get(const std::string& target, int* status) {
    rpc::QueryStateRequest request;
    request.set_target(target);
    auto reply = rpc::CallBlocking<rpc::QueryStateRequest, rpc::QueryStateReply>(
        [&](auto* ctx, const auto& req, auto* rep) { return stub_->QueryState(ctx, req, rep); },
        request, kTimeoutMs);
    if (!reply.ok()) {
      std::fprintf(stderr, "lumen %s: no lumen cluster answers at %s (%s)\n", command_.c_str(),
                   address_.c_str(), std::string(reply.status().message()).c_str());
      return nullptr;
    }
    *status = reply->http_status();
    json body = json::parse(reply->body(), nullptr, false);
    if (body.is_discarded()) {
      std::fprintf(stderr, "lumen %s: the head's reply is not JSON\n", command_.c_str());
      return nullptr;
    }
    if (*status != 200) {
      std::fprintf(stderr, "lumen %s: %s\n", command_.c_str(),
                   body.value("error", "HTTP status " + std::to_string(*status)).c_str());
      return nullptr;
    }
    return body;
  }

 private:
  std::string command_;
  std::string address_;
  std::unique_ptr<rpc::GcsService::Stub> stub_;
};

void PrintWarnings(const json& warnings) {
  for (const json& warning : warnings) {
    std::fprintf(stderr, "warning: %s\n", warning.get<std::string>().c_str());
  }
}

}  // namespace

int List(const StateOptions& options) {
  std::string resource = ResourceName(options.resource);
  if (resource.empty()) {
    std::fprintf(stderr, "lumen list: unknown resource '%s' (tasks, actors, nodes, jobs, "
                         "placement-groups)\n", options.resource.c_str());
    return 2;
  }
  if (options.format != "table" && options.format != "json") {
    std::fprintf(stderr, "lumen list: --format takes table or json\n");
    return 2;
  }
  Client client("list");
  if (!client.Connect(options.address)) return 1;
  std::vector<json> rows;
  json first;
  std::string token;
  // Pages of up to kPage rows until --limit rows or the end: every row once.
  while (rows.size() < options.limit) {
    size_t want = std::min(kPage, options.limit - rows.size());
    std::string target = "/api/v0/" + resource + "?limit=" + std::to_string(want);
    for (const std::string& filter : options.filters) target += "&filter=" + UrlEncode(filter);
    if (!token.empty()) target += "&token=" + token;
    int status = 0;
    json page = client.Get(target, &status);
    if (page.is_null()) return status == 400 ? 2 : 1;
    if (first.is_null()) first = page;
    for (json& row : page["rows"]) rows.push_back(std::move(row));
    token = page.value("next_token", "");
    if (token.empty()) break;
  }
  int64_t total = first.value("total", int64_t(0));
  if (options.format == "json") {
    json out = {{"rows", rows}, {"total", total}, {"warnings", first["warnings"]}};
    std::printf("%s\n", out.dump(2).c_str());
    return 0;
  }
  PrintWarnings(first["warnings"]);
  if (options.detail) {
    for (const json& row : rows) std::printf("%s\n", row.dump(2).c_str());
  } else {
    PrintTable(ColumnsOf(resource), rows);
  }
  if (int64_t(rows.size()) < total) {
    std::printf("(%zu of %lld shown; --limit N shows more)\n", rows.size(),
                static_cast<long long>(total));
  } else {
    std::printf("(%zu %s)\n", rows.size(), resource.c_str());
  }
  return 0;
}

int GetOne(const StateOptions& options) {
  std::string resource = ResourceName(options.resource);
  if (resource.empty()) {
    std::fprintf(stderr, "lumen get: unknown resource '%s' (task, actor, node, job, "
                         "placement-group)\n", options.resource.c_str());
    return 2;
  }
  Client client("get");
  if (!client.Connect(options.address)) return 1;
  int status = 0;
  json body = client.Get("/api/v0/" + resource + "/" + UrlEncode(options.id), &status);
  if (body.is_null()) return status == 404 ? 1 : status == 400 ? 2 : 1;
  const json& rows = body["rows"];
  std::printf("%s\n", (rows.size() == 1 ? rows[0] : rows).dump(2).c_str());
  return 0;
}

int Summary(const StateOptions& options) {
  std::string resource = ResourceName(options.resource);
  if (resource != "tasks" && resource != "actors") {
    std::fprintf(stderr, "lumen summary: summaries are of tasks or actors, not '%s'\n",
                 options.resource.c_str());
    return 2;
  }
  Client client("summary");
  if (!client.Connect(options.address)) return 1;
  int status = 0;
  json body = client.Get("/api/v0/" + resource + "/summarize", &status);
  if (body.is_null()) return 1;
  if (options.format == "json") {
    std::printf("%s\n", body.dump(2).c_str());
    return 0;
  }
  PrintWarnings(body["warnings"]);
  std::vector<Column> columns = {{resource == "tasks" ? "NAME" : "CLASS", "name", 40}};
  if (resource == "tasks") columns.push_back({"TYPE", "type", 0});
  columns.push_back({"STATES", "states", 0});
  std::vector<json> rows;
  for (const auto& [name, entry] : body["summary"].items()) {
    std::string states;
    for (const auto& [state, count] : entry["state_counts"].items()) {
      states += (states.empty() ? "" : " ") + state + ":" + count.dump();
    }
    rows.push_back({{"name", name}, {"type", entry.value("type", "")}, {"states", states}});
  }
  PrintTable(columns, rows);
  std::printf("(%lld %s)\n", static_cast<long long>(body.value("total", int64_t(0))),
              resource.c_str());
  return 0;
}

}  // namespace lumen::cli
