// The state API's cost on the head: a GCS (in this process, on its own loop) holding
// 100,000 task attempts (each with its four state changes), queried the way `lumen list` and the
// dashboard do.
//
//   state_events_ingest            attempts/s into the GCS's task table (batches of 1,000,
//                                  each with its state changes, as core workers send them)
//   state_list_tasks_100k          ms for the first page (100 rows) of `list tasks`
//   state_list_tasks_filtered_100k ms for a filtered page (every row is tested)
//   state_list_tasks_page_10000    ms for a page of 10,000 rows
//   state_summarize_tasks_100k     ms for `summary tasks`
//
// Times are medians of several queries over gRPC (QueryState, what the CLI uses; HTTP
// serves the same bytes). Only these in this program's output. Flags as in bench_util.h.
#include <algorithm>
#include <chrono>
#include <thread>
#include <cstdio>
#include <string>
#include <vector>

#include "bench_util.h"
#include "common/ids.h"
#include "common/logging.h"
#include "gcs.grpc.pb.h"
#include "gcs/gcs_server.h"
#include "rpc/rpc.h"

namespace {

using lumen::bench::Clock;
using lumen::bench::SecondsSince;
namespace rpc = lumen::rpc;

constexpr int kTasks = 100000;
constexpr int kEventsPerBatch = 1000;


}  // namespace

int main(int argc, char** argv) {
  using namespace lumen::bench;
  Options options;
  std::string error;
  if (!ParseOptions(argc, argv, &options, &error)) {
    std::fprintf(stderr, "state_bench: %s\n", error.c_str());
    PrintUsage("state_bench");
    return 2;
  }
  if (options.help) {
    PrintUsage("state_bench");
    return 0;
  }
  lumen::SetLogLevel("warn");
  lumen::gcs::GcsOptions gcs_options;
  gcs_options.listen_address = "127.0.0.1:0";
  lumen::gcs::GcsServer gcs(gcs_options);
  auto endpoint = gcs.Start();
  if (!endpoint.ok()) {
    std::fprintf(stderr, "state_bench: the GCS did not start: %s\n",
                 std::string(endpoint.status().message()).c_str());
    return 2;
  }
  auto stub = rpc::GcsService::NewStub(rpc::MakeChannel(*endpoint));
  const Machine machine = DetectMachine();
  std::fprintf(stderr, "state_bench: %u cores, %.1f GiB, %s; load average %s\n",
               machine.cores, machine.memory_gb, machine.cpu_model.c_str(),
               LoadAverage().c_str());
  Bench bench(options, machine);

  // 100,000 attempts, as owners send them: one event per attempt with its state times
  // (submitted, sent to a worker, running, finished or failed), 1,000 per request.
  std::string node = lumen::NodeId::FromRandom().Binary();
  std::string worker = lumen::WorkerId::FromRandom().Binary();
  int64_t now = 1'700'000'000'000'000;
  rpc::AddTaskEventsRequest batch;
  int64_t events = 0;
  double send_seconds = 0;
  auto start_batch = [&] {
    batch.Clear();
    batch.set_worker_id(worker);
    batch.set_job_id(lumen::JobId::FromInt(1).Binary());
    rpc::TaskLocation* where = batch.add_locations();
    where->set_node_id(node);
    where->set_worker_id(worker);
    for (int name = 0; name < 20; ++name) batch.add_names("f" + std::to_string(name));
  };
  auto send = [&] {
    auto start = Clock::now();
    auto sent = rpc::CallBlocking<rpc::AddTaskEventsRequest, rpc::AddTaskEventsReply>(
        [&](auto* ctx, const auto& req, auto* rep) { return stub->AddTaskEvents(ctx, req, rep); },
        batch, 30000);
    send_seconds += SecondsSince(start);
    events += batch.events_size();
    start_batch();
    return sent.ok();
  };
  start_batch();
  for (int i = 0; i < kTasks; ++i) {
    rpc::TaskEvent* event = batch.add_events();
    event->set_task_id(lumen::TaskId::FromRandom().Binary());
    bool failed = i % 10 == 0;
    event->set_state(failed ? rpc::FAILED : rpc::FINISHED);
    event->mutable_state_times_us()->Resize(rpc::TaskStatus_ARRAYSIZE, 0);
    int64_t at = now + i * 10;
    event->set_state_times_us(rpc::PENDING_NODE_ASSIGNMENT, at);
    event->set_state_times_us(rpc::SUBMITTED_TO_WORKER, at + 1);
    event->set_state_times_us(rpc::RUNNING, at + 2);
    event->set_state_times_us(failed ? rpc::FAILED : rpc::FINISHED, at + 5);
    if (failed) event->set_error("TaskError: std::runtime_error: boom");
    event->set_location(1);
    event->mutable_description()->set_name(1 + i % 20);
    if (batch.events_size() >= kEventsPerBatch && !send()) {
      std::fprintf(stderr, "state_bench: AddTaskEvents failed\n");
      return 1;
    }
  }
  if (batch.events_size() > 0 && !send()) return 1;
  bench.Emit("state_events_ingest", "events/s", {double(events) / send_seconds});
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // the loop merges the last

  const int samples = options.quick ? 3 : std::max(5, options.runs * 2);
  auto query_ms = [&](const std::string& target, std::string* body) {
    rpc::QueryStateRequest request;
    request.set_target(target);
    std::vector<double> times;
    for (int i = 0; i < samples; ++i) {
      auto start = Clock::now();
      auto reply = rpc::CallBlocking<rpc::QueryStateRequest, rpc::QueryStateReply>(
          [&](auto* ctx, const auto& req, auto* rep) { return stub->QueryState(ctx, req, rep); },
          request, 60000);
      times.push_back(SecondsSince(start) * 1000);
      if (!reply.ok() || reply->http_status() != 200) return std::vector<double>{};
      *body = reply->body();
    }
    return times;
  };
  struct Query {
    const char* name;
    std::string target;
  };
  std::vector<Query> queries = {
      {"state_list_tasks_100k", "/api/v0/tasks?limit=100"},
      {"state_list_tasks_filtered_100k", "/api/v0/tasks?limit=100&filter=state%3DFAILED"},
      {"state_list_tasks_page_10000", "/api/v0/tasks?limit=10000"},
      {"state_summarize_tasks_100k", "/api/v0/tasks/summarize"},
  };
  int status = 0;
  for (const Query& query : queries) {
    if (!options.filter.empty() && std::string(query.name).find(options.filter) == std::string::npos) {
      continue;
    }
    std::string body;
    std::vector<double> times = query_ms(query.target, &body);
    if (times.empty()) {
      std::fprintf(stderr, "state_bench: %s failed\n", query.target.c_str());
      status = 1;
      continue;
    }
    bench.Emit(query.name, "ms", times);
    std::fprintf(stderr, "state_bench: %s: %zu bytes\n", query.target.c_str(), body.size());
  }
  gcs.Stop();
  return status;
}
