// The state API on the embedded one-node cluster through lumen::state: tasks with their
// states, errors, retries and workers; paging through 25,000 tasks; actors, jobs, nodes;
// summaries; bad filters. The CLI and HTTP against real daemons are in
// state_cluster_test.cc.
#include <gtest/gtest.h>

#include <unistd.h>

#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "lumen/lumen.h"
#include "test_util.h"

namespace {

int Square(int x) { return x * x; }
int Noop() { return 0; }
std::string WhoAmI() { return lumen::GetRuntimeContext().TaskId(); }
int Fail() { throw std::runtime_error("boom from Fail"); }
int CrashWorker() { _exit(3); }
int SlowSeven(int ms) {
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));
  return 7;
}
int PlusOne(int x) { return x + 1; }

class Tally {
 public:
  static Tally* Create() { return new Tally(); }
  int Add(int x) { return total_ += x; }

 private:
  int total_ = 0;
};

}  // namespace

LUMEN_REMOTE(Square, Noop, WhoAmI, Fail, CrashWorker, SlowSeven, PlusOne, Tally::Create,
             &Tally::Add);

namespace lumen::test {
namespace {

class StateTest : public ClusterTest {
 protected:
  // Events reach the head within a flush period (1 s): poll, with a generous guard.
  static state::ListResult<state::TaskState> TasksWhen(
      std::vector<std::string> filters, const std::function<bool(int64_t)>& done,
      size_t limit = 100) {
    state::ListResult<state::TaskState> result;
    WaitUntil([&] {
      result = state::ListTasks({.filters = filters, .limit = limit});
      return done(result.total);
    });
    return result;
  }
};

TEST_F(StateTest, TasksShowTheirStatesWorkersAndErrors) {
  std::vector<ObjectRef<int>> refs;
  for (int i = 0; i < 20; ++i) refs.push_back(Task(Square).Remote(i));
  for (auto& ref : refs) Get(ref);
  EXPECT_THROW(Get(Task(Fail).Remote()), TaskError);

  auto squares = TasksWhen({"name=Square", "state=FINISHED"}, [](int64_t n) { return n == 20; });
  ASSERT_EQ(squares.total, 20) << "the finished Square tasks never all showed";
  ASSERT_EQ(squares.rows.size(), 20u);
  std::string node = GetRuntimeContext().NodeId();
  for (const auto& task : squares.rows) {
    EXPECT_EQ(task.type, "NORMAL_TASK");
    EXPECT_EQ(task.func_name, "Square");
    EXPECT_EQ(task.node_id, node);
    EXPECT_EQ(task.worker_id.size(), 32u);
    EXPECT_EQ(task.job_id, GetRuntimeContext().JobId());
    EXPECT_GT(task.start_time_us, 0);
    EXPECT_GE(task.end_time_us, task.start_time_us);
    EXPECT_GE(task.start_time_us, task.creation_time_us);
    EXPECT_TRUE(task.error_message.empty());
  }
  auto failed = TasksWhen({"name=Fail"}, [](int64_t n) { return n == 1; });
  ASSERT_EQ(failed.rows.size(), 1u);
  EXPECT_EQ(failed.rows[0].state, "FAILED");
  EXPECT_NE(failed.rows[0].error_message.find("boom from Fail"), std::string::npos)
      << failed.rows[0].error_message;
  // Case-insensitive, and != filters.
  auto others = state::ListTasks({.filters = {"state!=finished"}});
  for (const auto& task : others.rows) EXPECT_NE(task.state, "FINISHED");
}

TEST_F(StateTest, ATaskWaitingForItsArgumentsSaysSo) {
  auto seven = Task(SlowSeven).Remote(4000);
  auto eight = Task(PlusOne).Remote(seven);
  // While SlowSeven runs, PlusOne waits for its argument, and SlowSeven shows RUNNING.
  ASSERT_TRUE(WaitUntil([] {
    auto waiting = state::ListTasks({.filters = {"name=PlusOne"}});
    return waiting.rows.size() == 1 && waiting.rows[0].state == "PENDING_ARGS_AVAIL";
  })) << "PlusOne never showed as waiting for its argument";
  EXPECT_EQ(*Get(eight), 8);
  auto done = TasksWhen({"state=FINISHED"}, [](int64_t n) { return n == 2; });
  ASSERT_EQ(done.rows.size(), 2u);
  const state::TaskState& slow = done.rows[0].name == "SlowSeven" ? done.rows[0] : done.rows[1];
  const state::TaskState& plus = done.rows[0].name == "PlusOne" ? done.rows[0] : done.rows[1];
  EXPECT_EQ(slow.name, "SlowSeven");
  EXPECT_EQ(plus.name, "PlusOne");
  // It ran only once its argument was made.
  EXPECT_GE(plus.start_time_us, slow.end_time_us);
  EXPECT_GE(slow.end_time_us - slow.start_time_us, 3'900'000);
}

TEST_F(StateTest, GetTaskFindsATaskByTheIdItSeesItself) {
  std::string id = *Get(Task(WhoAmI).Remote());
  ASSERT_EQ(id.size(), 32u);
  std::vector<state::TaskState> attempts;
  ASSERT_TRUE(WaitUntil([&] {
    attempts = state::GetTask(id);
    return attempts.size() == 1 && attempts[0].state == "FINISHED";
  }));
  EXPECT_EQ(attempts[0].name, "WhoAmI");
  EXPECT_EQ(attempts[0].attempt_number, 0);
  EXPECT_TRUE(state::GetTask(std::string(32, '0')).empty());
}

TEST_F(StateTest, RetriedTasksShowEveryAttempt) {
  EXPECT_THROW(Get(Task(CrashWorker).SetMaxRetries(1).Remote()), WorkerCrashedError);
  auto attempts = TasksWhen({"name=CrashWorker", "state=FAILED"},
                            [](int64_t n) { return n == 2; });
  ASSERT_EQ(attempts.rows.size(), 2u);
  EXPECT_EQ(attempts.rows[0].task_id, attempts.rows[1].task_id);
  std::set<int> numbers = {attempts.rows[0].attempt_number, attempts.rows[1].attempt_number};
  EXPECT_EQ(numbers, (std::set<int>{0, 1}));
  for (const auto& attempt : attempts.rows) {
    EXPECT_NE(attempt.error_message.find("WorkerCrashedError"), std::string::npos)
        << attempt.error_message;
  }
}

TEST_F(StateTest, PagingThrough25000TasksReturnsEachOnce) {
  constexpr int kTasks = 25000;
  std::vector<ObjectRef<int>> refs;
  refs.reserve(kTasks);
  for (int i = 0; i < kTasks; ++i) refs.push_back(Task(Noop).Remote());
  for (auto& ref : refs) Get(ref);
  auto first = TasksWhen({"name=Noop", "state=FINISHED"},
                         [](int64_t n) { return n == kTasks; }, 10000);
  ASSERT_EQ(first.total, kTasks);
  std::set<std::string> seen;
  size_t rows = 0, pages = 0;
  std::string token;
  do {
    auto page = state::ListTasks(
        {.filters = {"name=Noop"}, .limit = 10000, .continuation_token = token});
    for (const auto& task : page.rows) seen.insert(task.task_id);
    rows += page.rows.size();
    token = page.next_token;
    ++pages;
  } while (!token.empty() && pages < 100);
  EXPECT_EQ(rows, size_t(kTasks));
  EXPECT_EQ(seen.size(), size_t(kTasks));
  EXPECT_EQ(pages, 3u);
  EXPECT_TRUE(first.warnings.empty());
}

TEST_F(StateTest, ActorsTheirCallsJobsAndNodes) {
  auto tally = Actor(Tally::Create).Remote();
  for (int i = 1; i <= 5; ++i) EXPECT_EQ(*Get(tally.Task(&Tally::Add).Remote(1)), i);
  auto calls = TasksWhen({"type=ACTOR_TASK", "state=FINISHED"}, [](int64_t n) { return n == 5; });
  ASSERT_EQ(calls.total, 5);
  EXPECT_EQ(calls.rows[0].name, "Tally::Add");
  EXPECT_EQ(calls.rows[0].actor_id.size(), 32u);
  auto creation = TasksWhen({"type=ACTOR_CREATION_TASK"}, [](int64_t n) { return n == 1; });
  ASSERT_EQ(creation.rows.size(), 1u);
  EXPECT_EQ(creation.rows[0].actor_id, calls.rows[0].actor_id);
  EXPECT_EQ(creation.rows[0].state, "FINISHED");

  auto actors = state::ListActors();
  ASSERT_EQ(actors.rows.size(), 1u);
  EXPECT_EQ(actors.rows[0].actor_id, calls.rows[0].actor_id);
  EXPECT_EQ(actors.rows[0].state, "ALIVE");
  EXPECT_NE(actors.rows[0].class_name.find("Tally"), std::string::npos);
  EXPECT_GT(actors.rows[0].pid, 0);
  tally.Kill();
  ASSERT_TRUE(WaitUntil([] { return state::ListActors({.filters = {"state=DEAD"}}).total == 1; }));
  auto actor_summary = state::SummarizeActors();
  ASSERT_EQ(actor_summary.size(), 1u);
  EXPECT_EQ(actor_summary[0].state_counts.at("DEAD"), 1);

  auto jobs = state::ListJobs();
  ASSERT_EQ(jobs.rows.size(), 1u);
  EXPECT_EQ(jobs.rows[0].job_id, GetRuntimeContext().JobId());
  EXPECT_EQ(jobs.rows[0].state, "RUNNING");
  EXPECT_EQ(jobs.rows[0].driver_pid, getpid());
  auto nodes = state::ListNodes();
  ASSERT_EQ(nodes.rows.size(), 1u);
  EXPECT_EQ(nodes.rows[0].node_id, GetRuntimeContext().NodeId());
  EXPECT_EQ(nodes.rows[0].state, "ALIVE");
  EXPECT_TRUE(nodes.rows[0].is_head);
  EXPECT_EQ(nodes.rows[0].resources_total.at("CPU"), 2);

  auto summary = state::SummarizeTasks();
  bool found = false;
  for (const auto& entry : summary) {
    if (entry.name != "Tally::Add") continue;
    found = true;
    EXPECT_EQ(entry.type, "ACTOR_TASK");
    EXPECT_EQ(entry.state_counts.at("FINISHED"), 5);
  }
  EXPECT_TRUE(found);
}

TEST_F(StateTest, BadFiltersAndLimitsAreConfigErrors) {
  EXPECT_THROW(state::ListTasks({.filters = {"nokey"}}), ConfigError);
  try {
    state::ListActors({.filters = {"colour=red"}});
    ADD_FAILURE() << "an unknown filter key was accepted";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("cannot filter actors by 'colour'"), std::string::npos)
        << e.what();
  }
  EXPECT_THROW(state::ListNodes({.limit = 0}), ConfigError);
  EXPECT_THROW(state::ListNodes({.limit = 10001}), ConfigError);
  EXPECT_THROW(state::ListJobs({.continuation_token = "not hex"}), ConfigError);
}

class StateOffTest : public ClusterTest {
 protected:
  Config MakeConfig() override {
    Config config = ClusterTest::MakeConfig();
    config.task_events = false;
    return config;
  }
};

TEST_F(StateOffTest, NoEventsAreRecordedWhenTurnedOff) {
  for (int i = 0; i < 10; ++i) Get(Task(Square).Remote(i));
  std::this_thread::sleep_for(std::chrono::milliseconds(2500));  // two flush periods
  EXPECT_EQ(state::ListTasks().total, 0);
  EXPECT_EQ(state::ListJobs().total, 1);  // the rest of the state API still answers
}

}  // namespace
}  // namespace lumen::test
