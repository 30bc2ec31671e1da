// Placement groups on the embedded one-node cluster: reserving, waiting, placing tasks and
// actors in bundles (and only within what the bundle holds), pending groups, names,
// removal with work running inside. Multi-node strategies, node death and injected
// failures are in placement_group_cluster_test.cc.
#include <gtest/gtest.h>

#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "lumen/lumen.h"
#include "test_util.h"

namespace {

std::string Assigned() {
  std::string out;
  for (const auto& [name, amount] : lumen::GetRuntimeContext().AssignedResources()) {
    out += name + "=" + std::to_string(amount) + ";";
  }
  return out;
}

int SleepMs(int ms) {
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));
  return getpid();
}

// A task in a bundle that runs a task in the same bundle and waits for it.
int NestedInBundle(std::string group_id, int depth) {
  if (depth == 0) return 0;
  auto group = lumen::ListPlacementGroups();
  for (const auto& g : group) {
    if (g.ID() != group_id) continue;
    return 1 + *lumen::Get(lumen::Task(NestedInBundle).SetPlacementGroup(g, 0).Remote(group_id,
                                                                                    depth - 1));
  }
  return -1000;
}

class Worker {
 public:
  static Worker* Create() { return new Worker(); }
  int Pid() const { return getpid(); }
  std::string Node() const { return lumen::GetRuntimeContext().NodeId(); }
};

}  // namespace

LUMEN_REMOTE(Assigned, SleepMs, NestedInBundle, Worker::Create, &Worker::Pid, &Worker::Node);

namespace lumen::test {
namespace {

class PlacementGroupTest : public ClusterTest {
 protected:
  Config MakeConfig() override {
    Config config;
    config.num_cpus = 4;
    return config;
  }
  static double FreeCpus() {
    auto free = lumen::AvailableResources();
    return free.count("CPU") ? free.at("CPU") : 0;
  }
  static bool AnyBundleResource() {
    for (const auto& [name, amount] : lumen::ClusterResources()) {
      if (name.find("_group_") != std::string::npos) return true;
    }
    return false;
  }
};

TEST_F(PlacementGroupTest, ReservesBundlesAndRunsTasksInsideThem) {
  auto pg = lumen::CreatePlacementGroup(
      {.name = "", .bundles = {{{"CPU", 1}}, {{"CPU", 2}}}, .strategy = PlacementStrategy::kPack});
  EXPECT_EQ(pg.ID().size(), 32u);
  EXPECT_EQ(pg.Strategy(), PlacementStrategy::kPack);
  ASSERT_EQ(pg.Bundles().size(), 2u);
  EXPECT_EQ(pg.Bundles()[1].at("CPU"), 2);
  ASSERT_TRUE(pg.Wait(std::chrono::seconds(30)));
  EXPECT_EQ(pg.State(), PlacementGroupState::kCreated);
  std::string node = lumen::GetRuntimeContext().NodeId();
  EXPECT_EQ(pg.BundleNodeIds(), (std::vector<std::string>{node, node}));
  // The bundles are out of the node's free CPUs: 4 - 3.
  EXPECT_TRUE(WaitUntil([] { return FreeCpus() == 1; })) << FreeCpus();
  // A task in bundle 1 holds the bundle's CPU, not the node's.
  std::string held = *lumen::Get(lumen::Task(Assigned).SetPlacementGroup(pg, 1).Remote());
  EXPECT_NE(held.find("CPU_group_1_" + pg.ID() + "="), std::string::npos) << held;
  EXPECT_EQ(held.find("CPU="), std::string::npos) << held;
  // Two tasks of 1 CPU fit bundle 1 together, and any bundle (-1) takes more.
  std::vector<lumen::ObjectRef<int>> refs;
  for (int i = 0; i < 6; ++i) refs.push_back(lumen::Task(SleepMs).SetPlacementGroup(pg, -1).Remote(10));
  for (auto& ref : refs) EXPECT_GT(*lumen::Get(ref, std::chrono::seconds(60)), 0);
  // An actor in bundle 0 with no demand of its own runs there too.
  auto actor = lumen::Actor(Worker::Create).SetPlacementGroup(pg, 0).Remote();
  EXPECT_EQ(*lumen::Get(actor.Task(&Worker::Node).Remote(), std::chrono::seconds(60)), node);

  lumen::RemovePlacementGroup(pg.ID());
  EXPECT_EQ(pg.State(), PlacementGroupState::kRemoved);
  EXPECT_TRUE(WaitUntil([] { return FreeCpus() == 4 && !AnyBundleResource(); }))
      << "the bundles' CPUs came back and their resources are gone: " << FreeCpus();
  lumen::RemovePlacementGroup(pg.ID());  // again: nothing happens
  EXPECT_THROW(pg.Wait(std::chrono::seconds(1)), lumen::Error);
}

// A bundle of one CPU runs a chain of tasks each waiting for the next: a task blocked in
// Get lends its bundle's CPU back, as it lends a node's.
TEST_F(PlacementGroupTest, NestedTasksInAOneCpuBundleDoNotDeadlock) {
  auto pg = lumen::CreatePlacementGroup({.bundles = {{{"CPU", 1}}}});
  ASSERT_TRUE(pg.Wait(std::chrono::seconds(30)));
  auto chain = lumen::Task(NestedInBundle).SetPlacementGroup(pg, 0).Remote(pg.ID(), 3);
  EXPECT_EQ(*lumen::Get(chain, std::chrono::seconds(60)), 3);
  lumen::RemovePlacementGroup(pg.ID());
}

TEST_F(PlacementGroupTest, ADemandLargerThanItsBundleIsRefusedAtSubmission) {
  auto pg = lumen::CreatePlacementGroup({.bundles = {{{"CPU", 1}}}});
  ASSERT_TRUE(pg.Wait(std::chrono::seconds(30)));
  try {
    lumen::Task(Assigned).SetResource("CPU", 2).SetPlacementGroup(pg, 0).Remote();
    ADD_FAILURE() << "a task demanding more than its bundle was submitted";
  } catch (const lumen::ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("does not fit in bundle 0"), std::string::npos)
        << e.what();
  }
  EXPECT_THROW(lumen::Task(Assigned).SetResource("GPU", 1).SetPlacementGroup(pg).Remote(),
               lumen::ConfigError);
  EXPECT_THROW(lumen::Actor(Worker::Create).SetResource("CPU", 2).SetPlacementGroup(pg, 0).Remote(),
               lumen::ConfigError);
  EXPECT_THROW(lumen::Task(Assigned).SetPlacementGroup(pg, 1), lumen::ConfigError);  // no bundle 1
  EXPECT_THROW(lumen::Task(Assigned).SetPlacementGroup(lumen::PlacementGroup(), 0),
               lumen::ConfigError);
  EXPECT_THROW(lumen::CreatePlacementGroup({.bundles = {}}), lumen::ConfigError);
  EXPECT_THROW(lumen::CreatePlacementGroup({.bundles = {{{"CPU", 1.5}}}}), lumen::ConfigError);
  EXPECT_THROW(lumen::RemovePlacementGroup("not-an-id"), lumen::ConfigError);
  EXPECT_THROW(lumen::RemovePlacementGroup(std::string(32, 'a')), lumen::ConfigError);
  lumen::RemovePlacementGroup(pg.ID());
}

TEST_F(PlacementGroupTest, AGroupNoNodeCanHoldStaysPendingAndSaysWhy) {
  // Strict spread of two bundles needs two nodes; this cluster has one.
  auto pg = lumen::CreatePlacementGroup(
      {.bundles = {{{"CPU", 1}}, {{"CPU", 1}}}, .strategy = PlacementStrategy::kStrictSpread});
  testing::internal::CaptureStderr();
  auto start = std::chrono::steady_clock::now();
  EXPECT_FALSE(pg.Wait(std::chrono::milliseconds(1500)));
  EXPECT_GE(SecondsSince(start), 1.4);
  std::string warning = testing::internal::GetCapturedStderr();
  EXPECT_NE(warning.find("cannot be placed"), std::string::npos) << warning;
  EXPECT_NE(warning.find("infeasible"), std::string::npos) << warning;
  EXPECT_EQ(pg.State(), PlacementGroupState::kPending);
  EXPECT_EQ(pg.BundleNodeIds(), (std::vector<std::string>{"", ""}));
  EXPECT_EQ(FreeCpus(), 4) << "nothing is half-reserved";
  // A task placed in it waits, and ends cancelled when the group is removed.
  auto waiting = lumen::Task(SleepMs).SetPlacementGroup(pg, 0).Remote(1);
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  lumen::RemovePlacementGroup(pg.ID());
  EXPECT_THROW(lumen::Get(waiting, std::chrono::seconds(30)), lumen::TaskCancelledError);
}

TEST_F(PlacementGroupTest, APendingGroupIsCreatedOnceResourcesFree) {
  auto busy = lumen::Task(SleepMs).SetResource("CPU", 2).Remote(1500);
  ASSERT_TRUE(WaitUntil([] { return FreeCpus() == 2; }));
  auto pg = lumen::CreatePlacementGroup(
      {.bundles = {{{"CPU", 3}}}, .strategy = PlacementStrategy::kStrictPack});
  EXPECT_FALSE(pg.Wait(std::chrono::milliseconds(300)));
  EXPECT_EQ(pg.State(), PlacementGroupState::kPending);
  lumen::Get(busy, std::chrono::seconds(30));
  EXPECT_TRUE(pg.Wait(std::chrono::seconds(30)));
  lumen::RemovePlacementGroup(pg.ID());
}

TEST_F(PlacementGroupTest, GroupsAreNamedListedAndFoundByName) {
  auto pg = lumen::CreatePlacementGroup({.name = "gang", .bundles = {{{"CPU", 1}}}});
  try {
    lumen::CreatePlacementGroup({.name = "gang", .bundles = {{{"CPU", 1}}}});
    ADD_FAILURE() << "two groups named alike";
  } catch (const lumen::ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("'gang' exists already"), std::string::npos) << e.what();
  }
  auto found = lumen::GetPlacementGroup("gang");
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(found->ID(), pg.ID());
  EXPECT_EQ(found->Name(), "gang");
  EXPECT_EQ(found->Bundles(), pg.Bundles());
  EXPECT_FALSE(lumen::GetPlacementGroup("nobody").has_value());
  bool listed = false;
  for (const auto& group : lumen::ListPlacementGroups()) listed |= group.ID() == pg.ID();
  EXPECT_TRUE(listed);
  lumen::RemovePlacementGroup(pg.ID());
  EXPECT_FALSE(lumen::GetPlacementGroup("gang").has_value());
  // The name can be used again.
  auto again = lumen::CreatePlacementGroup({.name = "gang", .bundles = {{{"CPU", 1}}}});
  EXPECT_NE(again.ID(), pg.ID());
  lumen::RemovePlacementGroup(again.ID());
}

TEST_F(PlacementGroupTest, RemovalKillsTheActorsAndStopsTheTasksInside) {
  auto pg = lumen::CreatePlacementGroup({.bundles = {{{"CPU", 1}}, {{"CPU", 1}}}});
  ASSERT_TRUE(pg.Wait(std::chrono::seconds(30)));
  auto actor = lumen::Actor(Worker::Create)
                   .SetResource("CPU", 1)
                   .SetPlacementGroup(pg, 0)
                   .SetMaxRestarts(5)
                   .Remote();
  int actor_pid = *lumen::Get(actor.Task(&Worker::Pid).Remote(), std::chrono::seconds(60));
  auto task = lumen::Task(SleepMs).SetPlacementGroup(pg, 1).Remote(60000);
  // Each bundle is full: these two wait for it at the raylet.
  auto parked_actor =
      lumen::Actor(Worker::Create).SetResource("CPU", 1).SetPlacementGroup(pg, 0).Remote();
  auto parked_task = lumen::Task(SleepMs).SetPlacementGroup(pg, 1).Remote(1);
  ASSERT_TRUE(WaitUntil([] { return FreeCpus() == 2; }));  // the bundles, not more
  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // the task is running
  lumen::RemovePlacementGroup(pg.ID());
  EXPECT_THROW(lumen::Get(parked_task, std::chrono::seconds(30)), lumen::TaskCancelledError);
  EXPECT_THROW(lumen::Get(parked_actor.Task(&Worker::Pid).Remote(), std::chrono::seconds(30)),
               lumen::ActorDiedError);
  // The actor is dead for good (its restarts notwithstanding), and its process is gone.
  EXPECT_TRUE(WaitProcessGone(actor_pid, 30));
  try {
    lumen::Get(actor.Task(&Worker::Pid).Remote(), std::chrono::seconds(30));
    ADD_FAILURE() << "an actor of a removed group answered";
  } catch (const lumen::ActorDiedError& e) {
    EXPECT_NE(std::string(e.what()).find("was removed"), std::string::npos) << e.what();
  }
  // The task's worker was stopped; the task does not run again.
  EXPECT_THROW(lumen::Get(task, std::chrono::seconds(30)), lumen::TaskCancelledError);
  EXPECT_TRUE(WaitUntil([] { return FreeCpus() == 4; })) << FreeCpus();
}

}  // namespace
}  // namespace lumen::test
