// The state API's parsing, paging and filtering, and the GCS's task table.
#include <gtest/gtest.h>

#include <set>

#include "gcs/state_query.h"
#include "gcs/task_event_table.h"

namespace lumen::gcs {
namespace {

using nlohmann::json;

TEST(StateQueryTest, ParsesListsLookupsAndSummaries) {
  auto list = ParseStateTarget("/api/v0/tasks?filter=state%3DRUNNING&filter=name!%3Df&limit=7");
  ASSERT_TRUE(list.ok()) << list.status();
  EXPECT_EQ(list->resource, "tasks");
  EXPECT_EQ(list->kind, StateRequest::kList);
  EXPECT_EQ(list->limit, 7u);
  ASSERT_EQ(list->filters.size(), 2u);
  EXPECT_EQ(list->filters[0].key, "state");
  EXPECT_TRUE(list->filters[0].equal);
  EXPECT_EQ(list->filters[0].value, "RUNNING");
  EXPECT_EQ(list->filters[1].key, "name");
  EXPECT_FALSE(list->filters[1].equal);
  EXPECT_EQ(list->filters[1].value, "f");

  auto get = ParseStateTarget("/api/v0/actors/abcd");
  ASSERT_TRUE(get.ok());
  EXPECT_EQ(get->kind, StateRequest::kGet);
  EXPECT_EQ(get->id, "abcd");
  auto summary = ParseStateTarget("/api/v0/tasks/summarize/");
  ASSERT_TRUE(summary.ok());
  EXPECT_EQ(summary->kind, StateRequest::kSummarize);
}

TEST(StateQueryTest, RefusesBadInputClearly) {
  EXPECT_TRUE(absl::IsNotFound(ParseStateTarget("/api/v1/tasks").status()));
  EXPECT_TRUE(absl::IsNotFound(ParseStateTarget("/api/v0/tasks/a/b").status()));
  for (const char* bad : {"/api/v0/tasks?limit=0", "/api/v0/tasks?limit=x",
                          "/api/v0/tasks?limit=10001", "/api/v0/tasks?filter=novalue",
                          "/api/v0/tasks?filter=%3Dx", "/api/v0/tasks?token=xyz",
                          "/api/v0/tasks?color=red", "/api/v0/tasks?filter=a%3", "/api/v0/tasks?limit=-1"}) {
    auto parsed = ParseStateTarget(bad);
    EXPECT_TRUE(absl::IsInvalidArgument(parsed.status())) << bad << ": " << parsed.status();
  }
  StateRequest request;
  request.resource = "tasks";
  request.filters.push_back({"colour", true, "red"});
  StatePage page(request, {"state", "name"});
  absl::Status checked = page.Check();
  EXPECT_TRUE(absl::IsInvalidArgument(checked));
  EXPECT_NE(checked.message().find("keys: state, name"), std::string::npos) << checked;
}

// Pages through `rows` keys with the filter; returns the keys seen, in order.
std::vector<int> PageThrough(int rows, size_t limit, std::vector<StateFilter> filters,
                             uint64_t* total) {
  std::vector<int> seen;
  std::string token;
  for (int round = 0; round < 10000; ++round) {
    StateRequest request;
    request.resource = "things";
    request.limit = limit;
    request.filters = filters;
    request.token = token;
    StatePage page(request, {"n", "parity"});
    for (int i = 0; i < rows; ++i) {
      char key[8];
      std::snprintf(key, sizeof(key), "%07d", i);
      page.Offer(key, [i] { return json{{"n", i}, {"parity", i % 2 ? "odd" : "EVEN"}}; });
    }
    json result = page.Result({});
    *total = result["total"];
    for (const json& row : result["rows"]) seen.push_back(row["n"]);
    token = result["next_token"];
    if (token.empty()) return seen;
  }
  ADD_FAILURE() << "paging never ended";
  return seen;
}

TEST(StateQueryTest, PagingReturnsEveryRowOnce) {
  uint64_t total = 0;
  std::vector<int> seen = PageThrough(2503, 100, {}, &total);
  EXPECT_EQ(total, 2503u);
  ASSERT_EQ(seen.size(), 2503u);
  for (int i = 0; i < 2503; ++i) EXPECT_EQ(seen[i], i);
  // Filtered (case-insensitively), the total counts the matches only.
  seen = PageThrough(2503, 64, {{"parity", true, "even"}}, &total);
  EXPECT_EQ(total, 1252u);
  EXPECT_EQ(seen.size(), 1252u);
  EXPECT_EQ(std::set<int>(seen.begin(), seen.end()).size(), 1252u);
  for (int n : seen) EXPECT_EQ(n % 2, 0);
  seen = PageThrough(10, 3, {{"parity", false, "EVEN"}, {"n", false, "3"}}, &total);
  EXPECT_EQ(seen, (std::vector<int>{1, 5, 7, 9}));
}

rpc::TaskEvent Event(const TaskId& task, int attempt, rpc::TaskStatus state, int64_t time) {
  rpc::TaskEvent event;
  event.set_task_id(task.Binary());
  event.set_attempt(attempt);
  event.set_state(state);
  event.mutable_state_times_us()->Resize(rpc::TaskStatus_ARRAYSIZE, 0);
  event.set_state_times_us(state, time);
  return event;
}

TEST(TaskEventTableTest, MergesEventsInAnyOrder) {
  TaskEventTable table;
  TaskId task = TaskId::FromRandom();
  NodeId node = NodeId::FromRandom();
  // The owner's later flush arrives first: RUNNING and FINISHED.
  rpc::AddTaskEventsRequest later;
  rpc::TaskEvent ended = Event(task, 0, rpc::FINISHED, 300);
  ended.set_state_times_us(rpc::RUNNING, 200);
  *later.add_events() = ended;
  table.Add(later);
  rpc::AddTaskEventsRequest earlier;
  earlier.set_job_id(JobId::FromInt(7).Binary());
  earlier.add_names("f");
  rpc::TaskLocation* where = earlier.add_locations();
  where->set_node_id(node.Binary());
  rpc::TaskEvent submitted = Event(task, 0, rpc::SUBMITTED_TO_WORKER, 150);
  submitted.set_state_times_us(rpc::PENDING_NODE_ASSIGNMENT, 100);
  submitted.mutable_description()->set_name(1);
  submitted.set_location(1);
  *earlier.add_events() = submitted;
  *earlier.add_events() = Event(task, 1, rpc::PENDING_NODE_ASSIGNMENT, 400);
  rpc::TaskEvent malformed = Event(task, 2, rpc::FINISHED, 500);
  malformed.set_task_id("short");
  *earlier.add_events() = malformed;
  earlier.set_dropped(3);
  table.Add(earlier);

  ASSERT_EQ(table.attempts().size(), 2u);
  const auto& first = table.attempts().at(TaskEventTable::KeyOf(task, 0));
  EXPECT_EQ(first.state, rpc::FINISHED);  // the furthest, whatever arrived last
  EXPECT_EQ(*first.name, "f");
  EXPECT_EQ(*first.function_name, "f");
  EXPECT_EQ(first.job, JobId::FromInt(7));
  EXPECT_EQ(first.node, node);
  EXPECT_EQ(first.time_us[rpc::RUNNING], 200);
  EXPECT_EQ(first.time_us[rpc::PENDING_NODE_ASSIGNMENT], 100);
  EXPECT_EQ(table.attempts().at(TaskEventTable::KeyOf(task, 1)).state,
            rpc::PENDING_NODE_ASSIGNMENT);
  EXPECT_EQ(table.dropped_at_workers(), 3u);
  // Attempts sort by task, then by attempt number, as their bytes do (the paging token
  // compares them as strings of bytes).
  EXPECT_LT(TaskEventTable::KeyOf(task, 1), TaskEventTable::KeyOf(task, 256));
  TaskId low = TaskId::FromBinary(std::string(16, '\x7f'));
  TaskId high = TaskId::FromBinary(std::string(16, '\x80'));
  EXPECT_LT(TaskEventTable::KeyOf(low, 0), TaskEventTable::KeyOf(high, 0));
}

TEST(TaskEventTableTest, EvictsTheOldestPastItsLimit) {
  TaskEventTable table(3);
  std::vector<TaskId> tasks;
  for (int i = 0; i < 5; ++i) {
    tasks.push_back(TaskId::FromRandom());
    rpc::AddTaskEventsRequest request;
    *request.add_events() = Event(tasks.back(), 0, rpc::FINISHED, i + 1);
    table.Add(request);
  }
  EXPECT_EQ(table.attempts().size(), 3u);
  EXPECT_EQ(table.evicted(), 2u);
  EXPECT_FALSE(table.attempts().contains(TaskEventTable::KeyOf(tasks[0], 0)));
  EXPECT_TRUE(table.attempts().contains(TaskEventTable::KeyOf(tasks[4], 0)));
}

}  // namespace
}  // namespace lumen::gcs
