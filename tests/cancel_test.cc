// lumen::Cancel as a user meets it: a task queued (here or at its worker) or waiting for
// its arguments is dropped and its Get throws TaskCancelledError; a running task runs on
// unless forced, which kills its worker without a retry; a finished task keeps its
// value; refs that no task of this process makes are a ConfigError. One CPU, so that
// tasks queue behind each other.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <thread>

#include "lumen/lumen.h"
#include "test_util.h"

namespace {

using lumen::test::AttemptsIn;
using lumen::test::CountAttempt;
using lumen::test::TempPath;

}  // namespace

int Sleep(int ms) {
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));
  return ms;
}
// Counts its runs in `path`, then sleeps.
int MarkThenSleep(std::string path, int ms) {
  CountAttempt(path);
  return Sleep(ms);
}
int Identity(int x) { return x; }
LUMEN_REMOTE(Sleep, MarkThenSleep, Identity);

namespace {

class CancelTest : public lumen::test::ClusterTest {
 protected:
  lumen::Config MakeConfig() override {
    lumen::Config config;
    config.num_cpus = 1;
    return config;
  }
  /// Get of a cancelled task's ref: TaskCancelledError, not a wait for it to run.
  static void ExpectCancelled(const lumen::ObjectRef<int>& ref) {
    try {
      lumen::Get(ref, std::chrono::seconds(20));
      ADD_FAILURE() << "a cancelled task returned a value";
    } catch (const lumen::TaskCancelledError& e) {
      EXPECT_NE(std::string(e.what()).find("was cancelled"), std::string::npos) << e.what();
    }
  }
};

// Enough tasks that some are sent to the worker behind the blocker (lumen sends a second
// batch to a busy worker when many wait) and the others wait here: both kinds are dropped.
TEST_F(CancelTest, TasksQueuedBehindAnotherAreDroppedAtOnce) {
  std::string path = TempPath("queued");
  auto blocker = lumen::Task(Sleep).Remote(3000);
  std::vector<lumen::ObjectRef<int>> queued;
  for (int i = 0; i < 60; ++i) queued.push_back(lumen::Task(MarkThenSleep).Remote(path, 0));
  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // the blocker runs
  for (const auto& ref : queued) lumen::Cancel(ref);
  auto start = std::chrono::steady_clock::now();
  for (const auto& ref : queued) ExpectCancelled(ref);
  // Long before the blocker is done: the cancelled tasks did not wait for their turn.
  EXPECT_FALSE(lumen::Wait(std::vector<lumen::ObjectRef<int>>{blocker}, 1,
                           std::chrono::milliseconds(0))
                   .ready.size())
      << "Get of a cancelled task waited " << lumen::test::SecondsSince(start) << " s";
  EXPECT_EQ(*lumen::Get(blocker), 3000);
  EXPECT_EQ(*lumen::Get(lumen::Task(Identity).Remote(1)), 1);  // after them, on one CPU
  EXPECT_EQ(AttemptsIn(path), 0) << "a cancelled task ran";
  std::remove(path.c_str());
}

TEST_F(CancelTest, ATaskWaitingForItsArgumentIsDropped) {
  auto slow = lumen::Task(Sleep).Remote(3000);
  auto waiting = lumen::Task(Identity).Remote(slow);
  lumen::Cancel(waiting);
  ExpectCancelled(waiting);
  EXPECT_EQ(*lumen::Get(slow), 3000);
  ExpectCancelled(waiting);  // still, once the argument is there
}

TEST_F(CancelTest, ARunningTaskRunsOnUnlessForcedThenItsWorkerIsKilledWithoutARetry) {
  std::string path = TempPath("running");
  auto running = lumen::Task(MarkThenSleep).Remote(path, 1000);
  ASSERT_TRUE(lumen::test::WaitUntil([&] { return AttemptsIn(path) == 1; }));
  lumen::Cancel(running);
  EXPECT_EQ(*lumen::Get(running), 1000) << "a running task is left alone";

  std::string forced_path = TempPath("forced");
  auto forced = lumen::Task(MarkThenSleep).Remote(forced_path, 60000);
  auto behind = lumen::Task(Identity).Remote(9);  // on the same worker, or queued for it
  ASSERT_TRUE(lumen::test::WaitUntil([&] { return AttemptsIn(forced_path) == 1; }));
  lumen::Cancel(forced, /*force=*/true);
  ExpectCancelled(forced);
  EXPECT_EQ(*lumen::Get(behind, std::chrono::seconds(60)), 9) << "the others run on";
  EXPECT_EQ(AttemptsIn(forced_path), 1) << "a force-cancelled task is not retried";
  std::remove(path.c_str());
  std::remove(forced_path.c_str());
}

TEST_F(CancelTest, CancellingAFinishedTaskChangesNothing) {
  auto done = lumen::Task(Identity).Remote(3);
  ASSERT_EQ(*lumen::Get(done), 3);
  lumen::Cancel(done);
  lumen::Cancel(done, /*force=*/true);
  EXPECT_EQ(*lumen::Get(done), 3);
}

TEST_F(CancelTest, ARefThatNoTaskOfThisProcessMakesIsAConfigError) {
  EXPECT_THROW(lumen::Cancel(lumen::Put(1)), lumen::ConfigError);
  EXPECT_THROW(lumen::Cancel(lumen::ObjectRef<int>()), lumen::ConfigError);
}

}  // namespace
