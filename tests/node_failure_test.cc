// Whole nodes failing, with real daemons: a node's `lumen` process SIGKILLed while work
// runs on it (its workers go with it), and a node silent for too long (SIGSTOP). The
// head checks health every 200 ms and declares a node dead after 5 missed reports.
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <string>
#include <thread>

#include "cluster_util.h"
#include "lumen/lumen.h"
#include "tally.h"
#include "test_util.h"

namespace {

std::string SleepThenWhere(int ms) {
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));
  return lumen::GetRuntimeContext().NodeId();
}
using lumen::test::Tally;

}  // namespace

LUMEN_REMOTE(SleepThenWhere, Tally::Create, &Tally::Add, &Tally::Where);

namespace lumen::test {
namespace {

constexpr const char* kFastHealth =
    "--health-check-period-ms=200 --health-check-failure-threshold=5";

/// A head (1 CPU) and two nodes of 4 CPUs: node 1, the one to fail, in its own mount
/// namespace (so that nothing it leaves in /dev/shm outlives it), and node 2.
class NodeFailureTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!CanIsolateShm()) GTEST_SKIP() << "no mount namespaces here: a killed node's store "
                                          "would be left in /dev/shm";
    ASSERT_TRUE(cluster_.StartHead("127.0.0.2", std::string("--num-cpus=1 ") + kFastHealth))
        << cluster_.last_output();
    ASSERT_TRUE(cluster_.AddNode("127.0.0.3", "--num-cpus=4", /*isolated=*/true))
        << cluster_.last_output();
    ASSERT_TRUE(cluster_.AddNode("127.0.0.4", "--num-cpus=4", /*isolated=*/false))
        << cluster_.last_output();
    cluster_.Join();
    ASSERT_TRUE(WaitUntil([] {
      auto available = lumen::AvailableResources();
      return available.count("CPU") && available.at("CPU") == 9;
    }));
  }
  void TearDown() override {
    lumen::Shutdown();
    cluster_.Stop();
  }
  /// Node `i`'s entry as lumen::Nodes() has it.
  static lumen::NodeInfo Entry(const std::string& id) {
    for (const lumen::NodeInfo& node : lumen::Nodes()) {
      if (node.node_id == id) return node;
    }
    return {};
  }
  LocalCluster cluster_;
};

TEST_F(NodeFailureTest, AKilledNodeIsDeclaredDeadAndItsWorkGoesOnElsewhere) {
  const std::string doomed = cluster_.node_ids().at(1);
  auto there = lumen::NodeAffinityStrategy{.node_id = doomed, .soft = true};
  auto tally = lumen::Actor(Tally::Create).SetSchedulingStrategy(there).SetMaxRestarts(1).Remote(10);
  auto fragile = lumen::Actor(Tally::Create).SetSchedulingStrategy(there).Remote(0);
  ASSERT_EQ(*lumen::Get(tally.Task(&Tally::Add).Remote(1), std::chrono::seconds(60)), 11);
  ASSERT_EQ(*lumen::Get(tally.Task(&Tally::Where).Remote()), doomed);
  ASSERT_EQ(*lumen::Get(fragile.Task(&Tally::Where).Remote()), doomed);
  // Two tasks running there when it dies: one may be retried, one may not.
  auto retried = lumen::Task(SleepThenWhere).SetSchedulingStrategy(there).Remote(4000);
  auto once = lumen::Task(SleepThenWhere).SetSchedulingStrategy(there).SetMaxRetries(0).Remote(4000);
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));  // both started

  auto killed_at = std::chrono::steady_clock::now();
  ASSERT_EQ(kill(cluster_.pids().at(1), SIGKILL), 0);
  ASSERT_TRUE(WaitProcessGone(cluster_.pids().at(1), 30));
  ASSERT_TRUE(WaitUntil([&] { return !Entry(doomed).alive; }, 30))
      << "the GCS never declared the killed node dead";
  std::printf("declared dead %.1f s after the kill\n", SecondsSince(killed_at));
  EXPECT_EQ(lumen::ClusterResources().at("CPU"), 5) << "a dead node's resources leave the view";

  // The task with retries ran again on a live node; the other names the node it died on.
  EXPECT_NE(*lumen::Get(retried, std::chrono::seconds(60)), doomed);
  try {
    lumen::Get(once, std::chrono::seconds(60));
    ADD_FAILURE() << "a task without retries on a dead node returned";
  } catch (const lumen::WorkerCrashedError& e) {
    EXPECT_NE(std::string(e.what()).find("node " + doomed), std::string::npos) << e.what();
  }
  // The actor with a restart left lives again elsewhere, from its initial state.
  EXPECT_EQ(*lumen::Get(tally.Task(&Tally::Add).Remote(1), std::chrono::seconds(60)), 11);
  EXPECT_NE(*lumen::Get(tally.Task(&Tally::Where).Remote()), doomed);
  // The one without is dead, and says its node died.
  try {
    lumen::Get(fragile.Task(&Tally::Add).Remote(1), std::chrono::seconds(60));
    ADD_FAILURE() << "an actor without restarts on a dead node answered";
  } catch (const lumen::ActorDiedError& e) {
    EXPECT_NE(std::string(e.what()).find("node " + doomed), std::string::npos) << e.what();
  }
  // `lumen status` shows it dead.
  std::string status;
  ASSERT_EQ(RunCommand(LumenCli() + " status --address=" + cluster_.address(), &status), 0);
  EXPECT_NE(status.find("1 dead"), std::string::npos) << status;
}

TEST_F(NodeFailureTest, ANodeSilentTooLongIsDeclaredDeadAndStops) {
  const std::string silent = cluster_.node_ids().at(2);
  int pid = cluster_.pids().at(2);
  ASSERT_EQ(kill(pid, SIGSTOP), 0);  // every thread of it, heartbeats included
  bool dead = WaitUntil([&] { return !Entry(silent).alive; }, 30);
  ASSERT_EQ(kill(pid, SIGCONT), 0);
  ASSERT_TRUE(dead) << "the GCS never declared the silent node dead";
  // Told so at its next report, it stops (a restart would join as a new node).
  EXPECT_TRUE(WaitProcessGone(pid, 30)) << "the node declared dead kept running";
  EXPECT_FALSE(Entry(silent).alive);
  // The cluster goes on without it.
  EXPECT_NE(*lumen::Get(lumen::Task(SleepThenWhere).Remote(1), std::chrono::seconds(60)), silent);
}

}  // namespace
}  // namespace lumen::test
