// Whole nodes failing, with real daemons: a node's `lumen` process SIGKILLed while work
// runs on it (its workers go with it), and a node silent for too long (SIGSTOP). The
// head checks health every 200 ms and declares a node dead after 5 missed reports.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

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
// 1 MiB (so in the node store, not inline) that depends on `seed`.
std::vector<uint8_t> MakeBlock(int seed) {
  std::vector<uint8_t> block(1 << 20);
  for (size_t i = 0; i < block.size(); ++i) block[i] = uint8_t(seed * 31 + i * 7);
  return block;
}
// Reads `in` (by reference: the worker fetches it) and makes a new block from it.
std::vector<uint8_t> Shift(std::vector<lumen::ObjectRef<std::vector<uint8_t>>> in, int by) {
  std::vector<uint8_t> out(*lumen::Get(in.at(0)));
  for (uint8_t& byte : out) byte = uint8_t(byte + by);
  return out;
}
// What reading `in`'s first value gives: "read", or the error's kind.
std::string TryRead(std::vector<lumen::ObjectRef<std::vector<uint8_t>>> in) {
  try {
    lumen::Get(in.at(0));
    return "read";
  } catch (const lumen::OwnerDiedError&) {
    return "owner died";
  } catch (const lumen::Error& e) {
    return e.what();
  }
}
// A value this worker puts and owns: it dies with the worker.
lumen::ObjectRef<std::vector<uint8_t>> PutHere(int seed) { return lumen::Put(MakeBlock(seed)); }
using lumen::test::Tally;

// An actor that naps on request, and keeps the refs it is given (its process borrows them).
class Holder {
 public:
  static Holder* Create() { return new Holder(); }
  std::string Nap(int ms) { return SleepThenWhere(ms); }
  size_t Keep(std::vector<lumen::ObjectRef<std::vector<uint8_t>>> refs) {
    kept_.insert(kept_.end(), refs.begin(), refs.end());
    return kept_.size();
  }
  // A value this process puts and owns, in a vector (so that it travels as a ref).
  std::vector<lumen::ObjectRef<std::vector<uint8_t>>> PutOwn(int seed) {
    return {lumen::Put(MakeBlock(seed))};
  }

 private:
  std::vector<lumen::ObjectRef<std::vector<uint8_t>>> kept_;
};

// An actor that starts long tasks on a node and owns them (it keeps their refs).
class Spawner {
 public:
  static Spawner* Create() { return new Spawner(); }
  int Start(std::string node, int n) {
    for (int i = 0; i < n; ++i) {
      started_.push_back(lumen::Task(SleepThenWhere)
                             .SetSchedulingStrategy(lumen::NodeAffinityStrategy{.node_id = node})
                             .SetMaxRetries(0)
                             .Remote(600000));
    }
    return getpid();
  }

 private:
  std::vector<lumen::ObjectRef<std::string>> started_;
};

}  // namespace

LUMEN_REMOTE(SleepThenWhere, MakeBlock, Shift, PutHere, TryRead, Tally::Create, &Tally::Add,
             &Tally::Where, Holder::Create, &Holder::Nap, &Holder::Keep, &Holder::PutOwn, Spawner::Create,
             &Spawner::Start);

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
    ASSERT_TRUE(WaitForFreeCpus(9));
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

// Results whose only copy was on the dead node are made again by running their tasks
// once more, an argument lost too first (the chain a -> b, both made there); a result
// whose task has no retries left, and a value owned by a worker of the dead node, are
// clear errors.
TEST_F(NodeFailureTest, ObjectsLostWithTheirNodeAreMadeAgainFromTheirLineage) {
  const std::string doomed = cluster_.node_ids().at(1);
  auto there = lumen::NodeAffinityStrategy{.node_id = doomed, .soft = true};
  auto a = lumen::Task(MakeBlock).SetSchedulingStrategy(there).Remote(7);
  auto b = lumen::Task(Shift).SetSchedulingStrategy(there).Remote(
      std::vector<lumen::ObjectRef<std::vector<uint8_t>>>{a}, 1);
  auto spent = lumen::Task(MakeBlock).SetSchedulingStrategy(there).SetMaxRetries(0).Remote(9);
  auto orphan = lumen::Task(PutHere).SetSchedulingStrategy(there).Remote(5);
  ASSERT_EQ(lumen::Wait(std::vector<lumen::ObjectRef<std::vector<uint8_t>>>{a, b, spent}, 3,
                        std::chrono::seconds(60))
                .ready.size(),
            3u);
  auto inner = *lumen::Get(orphan, std::chrono::seconds(60));

  ASSERT_EQ(kill(cluster_.pids().at(1), SIGKILL), 0);
  ASSERT_TRUE(WaitProcessGone(cluster_.pids().at(1), 30));

  std::vector<uint8_t> expected = MakeBlock(7);
  for (uint8_t& byte : expected) byte = uint8_t(byte + 1);
  auto rebuilt = lumen::Get(b, std::chrono::seconds(90));
  EXPECT_TRUE(*rebuilt == expected) << "b, made again from a made again";
  EXPECT_TRUE(*lumen::Get(a, std::chrono::seconds(60)) == MakeBlock(7));
  try {
    lumen::Get(spent, std::chrono::seconds(60));
    ADD_FAILURE() << "a lost result whose task has no retries left came back";
  } catch (const lumen::ObjectLostError& e) {
    EXPECT_NE(std::string(e.what()).find("no retries left"), std::string::npos) << e.what();
  }
  EXPECT_THROW(lumen::Get(inner, std::chrono::seconds(60)), lumen::OwnerDiedError);
}

// A whole node frozen (its daemon and its workers stopped, as when a machine hangs):
// nothing breaks a connection, yet once the GCS declares the node dead, a task and an
// actor call running there run again elsewhere, and what its processes borrowed is
// freed. Then the node wakes up, hears it is dead, and stops with its workers.
TEST_F(NodeFailureTest, WorkOnAFrozenNodeGoesOnElsewhereOnceItIsDeclaredDead) {
  const std::string doomed = cluster_.node_ids().at(1);
  auto there = lumen::NodeAffinityStrategy{.node_id = doomed, .soft = true};
  auto napper = lumen::Actor(Holder::Create)
                    .SetSchedulingStrategy(there)
                    .SetMaxRestarts(1)
                    .SetMaxTaskRetries(1)
                    .Remote();
  auto keeper = lumen::Actor(Holder::Create).SetSchedulingStrategy(there).Remote();
  ASSERT_EQ(*lumen::Get(napper.Task(&Holder::Nap).Remote(0), std::chrono::seconds(60)), doomed);
  std::string kept;
  {
    auto block = lumen::Put(MakeBlock(3));
    kept = block.ID();
    std::vector<lumen::ObjectRef<std::vector<uint8_t>>> refs{block};
    ASSERT_EQ(*lumen::Get(keeper.Task(&Holder::Keep).Remote(refs), std::chrono::seconds(60)), 1u);
  }  // the driver's handle is gone: the keeper's borrow alone holds the block
  auto in_store = [&kept] {
    for (const lumen::StoredObjectInfo& object : lumen::GetMemoryInfo().objects) {
      if (object.id == kept) return true;
    }
    return false;
  };
  ASSERT_TRUE(in_store());
  // A value owned by a process there, which the driver borrows.
  auto theirs = *lumen::Get(keeper.Task(&Holder::PutOwn).Remote(5), std::chrono::seconds(60));
  auto task = lumen::Task(SleepThenWhere).SetSchedulingStrategy(there).Remote(4000);
  auto call = napper.Task(&Holder::Nap).Remote(4000);
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));  // both started there

  std::vector<int> frozen = ProcessTree(cluster_.pids().at(1));
  ASSERT_GE(frozen.size(), 3u) << "the node's daemon and its workers";
  for (int pid : frozen) kill(pid, SIGSTOP);
  auto frozen_at = std::chrono::steady_clock::now();
  bool dead = WaitUntil([&] { return !Entry(doomed).alive; }, 30);
  std::string task_node, call_node;
  bool freed = false;
  if (dead) {
    try {
      task_node = *lumen::Get(task, std::chrono::seconds(60));
      call_node = *lumen::Get(call, std::chrono::seconds(60));
    } catch (const std::exception& e) {
      ADD_FAILURE() << e.what();
    }
    freed = WaitUntil([&] { return !in_store(); }, 30);
    std::printf("work went on %.1f s after the freeze\n", SecondsSince(frozen_at));
    // A worker elsewhere given a ref owned by a process of the dead node does not try to
    // register with that owner (which would never answer: 30 s lost) and learns at once
    // that the owner died. The limit is a hang guard.
    try {
      EXPECT_EQ(*lumen::Get(lumen::Task(TryRead).Remote(theirs), std::chrono::seconds(20)),
                "owner died");
    } catch (const std::exception& e) {
      ADD_FAILURE() << "a ref whose owner is known gone: " << e.what();
    }
  }
  for (int pid : frozen) kill(pid, SIGCONT);
  ASSERT_TRUE(dead) << "the GCS never declared the frozen node dead";
  EXPECT_FALSE(task_node.empty() || task_node == doomed) << task_node;
  EXPECT_FALSE(call_node.empty() || call_node == doomed) << call_node;
  EXPECT_TRUE(freed) << "an object borrowed only by a process of the dead node was kept";
  for (int pid : frozen) {
    EXPECT_TRUE(WaitProcessGone(pid, 30)) << "pid " << pid << " of the dead node kept running";
  }
}

// A process that leased workers on another node (and has more requests parked there)
// dies: that node stops the workers and answers the requests once the GCS says the
// owner is gone, so its CPUs come back (they stayed leased until the tasks ended).
TEST_F(NodeFailureTest, WorkersLeasedByAProcessThatDiedStopOnEveryNode) {
  const std::string far = cluster_.node_ids().at(1);
  auto spawner = lumen::Actor(Spawner::Create)
                     .SetSchedulingStrategy(lumen::NodeAffinityStrategy{
                         .node_id = cluster_.node_ids().at(2)})
                     .Remote();
  int pid = *lumen::Get(spawner.Task(&Spawner::Start).Remote(far, 6), std::chrono::seconds(60));
  // That node's 4 CPUs busy with its tasks (the other 2 wait; the actor holds none).
  ASSERT_TRUE(WaitForFreeCpus(5)) << "the spawner's tasks never all started";
  ASSERT_EQ(kill(pid, SIGKILL), 0);
  EXPECT_TRUE(WaitForFreeCpus(9)) << "workers leased by a dead process kept their CPUs: "
                                  << lumen::AvailableResources().at("CPU") << " free";
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
