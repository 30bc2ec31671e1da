// Placement groups on a real cluster of `lumen start` daemons on 127.0.0.x: each strategy
// with a node too small for some bundles, pending until a node joins (and shown by
// `lumen status`), reservation under lost prepare and commit replies (no bundle left
// half-reserved), and bundles placed again after their node is SIGKILLed, with the actor
// in them restarted there.
#include <gtest/gtest.h>

#include <signal.h>
#include <stdlib.h>

#include <cstdlib>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <string>
#include <vector>

#include "cluster_util.h"
#include "lumen/lumen.h"

namespace {

std::string WhereAmI() { return lumen::GetRuntimeContext().NodeId(); }

class Member {
 public:
  static Member* Create() { return new Member(); }
  std::string Node() const { return lumen::GetRuntimeContext().NodeId(); }
};

}  // namespace

LUMEN_REMOTE(WhereAmI, Member::Create, &Member::Node);

namespace lumen::test {
namespace {

constexpr const char* kFastHealth =
    "--health-check-period-ms=200 --health-check-failure-threshold=5";

/// The head (1 CPU) and two nodes of 2 CPUs (ThreeNodeTest), with fast health checks:
/// a killed node is declared dead about a second later.
class PlacementGroupClusterTest : public ThreeNodeTest {
 protected:
  std::string HeadFlags() const override {
    return ThreeNodeTest::HeadFlags() + " " + kFastHealth;
  }
  static bool NoBundleResources() {
    for (const auto& [name, amount] : lumen::ClusterResources()) {
      if (name.find("_group_") != std::string::npos) return false;
    }
    return true;
  }
  static std::set<std::string> Distinct(const std::vector<std::string>& ids) {
    return {ids.begin(), ids.end()};
  }
  static PlacementGroup Make(PlacementStrategy strategy, int bundles, double cpus) {
    std::vector<std::map<std::string, double>> shape(bundles, {{"CPU", cpus}});
    return lumen::CreatePlacementGroup({.bundles = shape, .strategy = strategy});
  }
};

TEST_F(PlacementGroupClusterTest, EachStrategyPlacesBundlesWhereTheyFit) {
  const std::string head = cluster_.node_ids().at(0);
  // Strict pack of 2 CPUs: not the head (1 CPU); one of the others, both bundles there.
  auto packed = Make(PlacementStrategy::kStrictPack, 2, 1);
  ASSERT_TRUE(packed.Wait(std::chrono::seconds(60)));
  auto packed_on = packed.BundleNodeIds();
  ASSERT_EQ(Distinct(packed_on).size(), 1u);
  EXPECT_NE(packed_on[0], head);
  // Work placed in a bundle runs on the bundle's node.
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(*lumen::Get(lumen::Task(WhereAmI).SetPlacementGroup(packed, i).Remote(),
                          std::chrono::seconds(60)),
              packed_on[size_t(i)]);
  }
  lumen::RemovePlacementGroup(packed.ID());
  ASSERT_TRUE(WaitForFreeCpus(5));

  // Strict spread of 3: one bundle on each node, an actor in each.
  auto spread = Make(PlacementStrategy::kStrictSpread, 3, 1);
  ASSERT_TRUE(spread.Wait(std::chrono::seconds(60)));
  auto spread_on = spread.BundleNodeIds();
  EXPECT_EQ(Distinct(spread_on).size(), 3u);
  std::vector<ActorHandle<Member>> members;
  for (int i = 0; i < 3; ++i) {
    members.push_back(lumen::Actor(Member::Create).SetPlacementGroup(spread, i).Remote());
  }
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(*lumen::Get(members[size_t(i)].Task(&Member::Node).Remote(),
                          std::chrono::seconds(60)),
              spread_on[size_t(i)]);
  }
  // A fourth bundle would need a fourth node: a second strict spread of 4 stays pending.
  auto too_wide = Make(PlacementStrategy::kStrictSpread, 4, 0.5);
  EXPECT_FALSE(too_wide.Wait(std::chrono::milliseconds(800)));
  lumen::RemovePlacementGroup(too_wide.ID());
  lumen::RemovePlacementGroup(spread.ID());
  for (auto& member : members) {
    EXPECT_THROW(lumen::Get(member.Task(&Member::Node).Remote(), std::chrono::seconds(30)),
                 lumen::ActorDiedError);
  }
  ASSERT_TRUE(WaitForFreeCpus(5));

  // Pack (best effort) keeps 2 bundles on one node; spread puts them on two.
  auto pack = Make(PlacementStrategy::kPack, 2, 1);
  auto best_spread = Make(PlacementStrategy::kSpread, 2, 1);
  ASSERT_TRUE(pack.Wait(std::chrono::seconds(60)));
  ASSERT_TRUE(best_spread.Wait(std::chrono::seconds(60)));
  EXPECT_EQ(Distinct(pack.BundleNodeIds()).size(), 1u);
  EXPECT_EQ(Distinct(best_spread.BundleNodeIds()).size(), 2u);
  lumen::RemovePlacementGroup(pack.ID());
  lumen::RemovePlacementGroup(best_spread.ID());
  EXPECT_TRUE(WaitForFreeCpus(5));
  EXPECT_TRUE(WaitUntil(NoBundleResources));
}

// An actor waiting at a raylet for room in a full bundle is answered when the group is
// removed: no demand is left behind for a bundle that is gone.
TEST_F(PlacementGroupClusterTest, WorkWaitingForAFullBundleEndsWithItsGroup) {
  auto group = Make(PlacementStrategy::kStrictPack, 1, 1);
  ASSERT_TRUE(group.Wait(std::chrono::seconds(60)));
  auto placed = [&] {
    return lumen::Actor(Member::Create).SetResource("CPU", 1).SetPlacementGroup(group, 0).Remote();
  };
  auto holder = placed();
  ASSERT_EQ(*lumen::Get(holder.Task(&Member::Node).Remote(), std::chrono::seconds(60)),
            group.BundleNodeIds()[0]);
  auto waiting = placed();
  auto status = [&] {
    std::string out;
    EXPECT_EQ(RunCommand(LumenCli() + " status --address=" + cluster_.address(), &out), 0);
    return out;
  };
  std::string bundle_cpu = "CPU_group_0_" + group.ID();
  EXPECT_TRUE(WaitUntil([&] { return status().find(bundle_cpu) != std::string::npos; }))
      << "the waiting actor's demand is not shown: " << status();
  lumen::RemovePlacementGroup(group.ID());
  EXPECT_THROW(lumen::Get(waiting.Task(&Member::Node).Remote(), std::chrono::seconds(30)),
               lumen::ActorDiedError);
  EXPECT_TRUE(WaitUntil([&] { return status().find("(no resource demands)") != std::string::npos; }))
      << status();
}

TEST_F(PlacementGroupClusterTest, APendingGroupIsPlacedWhenANodeJoins) {
  auto group = lumen::CreatePlacementGroup(
      {.name = "wide", .bundles = {{{"CPU", 1}}, {{"CPU", 1}}, {{"CPU", 1}}, {{"CPU", 1}}},
       .strategy = PlacementStrategy::kStrictSpread});
  EXPECT_FALSE(group.Wait(std::chrono::milliseconds(1000)));
  std::string status;
  ASSERT_EQ(RunCommand(LumenCli() + " status --address=" + cluster_.address(), &status), 0);
  EXPECT_NE(status.find("wide"), std::string::npos) << status;
  EXPECT_NE(status.find("PENDING"), std::string::npos) << status;
  ASSERT_TRUE(cluster_.AddNode("127.0.0.5", "--num-cpus=1", false)) << cluster_.last_output();
  ASSERT_TRUE(group.Wait(std::chrono::seconds(60)));
  EXPECT_EQ(Distinct(group.BundleNodeIds()).size(), 4u);
  ASSERT_EQ(RunCommand(LumenCli() + " status --address=" + cluster_.address(), &status), 0);
  EXPECT_NE(status.find("CREATED"), std::string::npos) << status;
  lumen::RemovePlacementGroup(group.ID());
  EXPECT_TRUE(WaitForFreeCpus(6));
}

// A group dies with its creator's job (here: a driver that exits without Shutdown),
// unless it is detached.
TEST_F(PlacementGroupClusterTest, AGroupIsRemovedWithItsJobUnlessDetached) {
  const char* driver = std::getenv("LUMEN_CLUSTER_DRIVER");
  ASSERT_NE(driver, nullptr) << "set by tests/CMakeLists.txt";
  std::string out;
  ASSERT_EQ(RunCommand(std::string(driver) + " --lumen-address=" + cluster_.address() +
                           " --placement-groups",
                       &out, 120),
            0)
      << out;
  ASSERT_NE(out.find("ready"), std::string::npos) << out;
  auto state_of = [](const std::string& name) {
    for (const auto& group : lumen::ListPlacementGroups()) {
      if (group.Name() == name) return group.State();
    }
    return PlacementGroupState::kPending;
  };
  EXPECT_TRUE(WaitUntil([&] { return state_of("dropped") == PlacementGroupState::kRemoved; }))
      << "the group of a job that ended is still there";
  EXPECT_EQ(state_of("kept"), PlacementGroupState::kCreated);
  EXPECT_TRUE(WaitForFreeCpus(4.5)) << "only the detached group's half CPU stays reserved";
  for (const auto& group : lumen::ListPlacementGroups()) lumen::RemovePlacementGroup(group.ID());
  EXPECT_TRUE(WaitForFreeCpus(5));
}

TEST_F(PlacementGroupClusterTest, BundlesOfAKilledNodeArePlacedAgainAndTheirActorRestarts) {
  if (!CanIsolateShm()) GTEST_SKIP() << "no mount namespaces here: a killed node's store "
                                        "would be left in /dev/shm";
  // 2 CPUs a bundle: only nodes 1 and 2 hold them, one each. Node 1 (in a mount
  // namespace of its own: what it leaves in /dev/shm goes with it) is the one killed.
  auto group = Make(PlacementStrategy::kStrictSpread, 2, 2);
  ASSERT_TRUE(group.Wait(std::chrono::seconds(60)));
  auto before = group.BundleNodeIds();
  const int lost = before[0] == cluster_.node_ids().at(1) ? 0 : 1;  // the bundle on node 1
  const int kept = 1 - lost;
  ASSERT_EQ(before[lost], cluster_.node_ids().at(1));
  auto member =
      lumen::Actor(Member::Create).SetPlacementGroup(group, lost).SetMaxRestarts(1).Remote();
  ASSERT_EQ(*lumen::Get(member.Task(&Member::Node).Remote(), std::chrono::seconds(60)),
            before[lost]);

  // The node is SIGKILLed and started again in its place (a new node, same size).
  ASSERT_TRUE(cluster_.ReplaceNode(1)) << cluster_.last_output();
  const std::string fresh = cluster_.node_ids().at(1);
  ASSERT_TRUE(WaitUntil([&] { return group.BundleNodeIds()[lost] == fresh; }, 90))
      << "the lost bundle was not placed again on the new node";
  EXPECT_TRUE(group.Wait(std::chrono::seconds(60)));
  EXPECT_EQ(group.BundleNodeIds()[kept], before[kept]) << "the bundle on the live node stayed";
  EXPECT_EQ(*lumen::Get(member.Task(&Member::Node).Remote(), std::chrono::seconds(90)), fresh);
  lumen::RemovePlacementGroup(group.ID());
  EXPECT_TRUE(WaitForFreeCpus(5));
}

/// The GCS loses the replies of its first prepares and of a commit (the raylets did the
/// work): what they reserved must be given back, and the group still created once.
class PlacementGroupFaultTest : public PlacementGroupClusterTest {
 protected:
  void BeforeStart() override {
    setenv("LUMEN_TESTING_RPC_FAILURE", "PrepareBundles=3:0:100,CommitBundles=1:0:100", 1);
  }
  void SetUp() override {
    PlacementGroupClusterTest::SetUp();
    unsetenv("LUMEN_TESTING_RPC_FAILURE");
  }
};

TEST_F(PlacementGroupFaultTest, LostPrepareAndCommitRepliesLeaveNoReservationBehind) {
  auto group = Make(PlacementStrategy::kStrictSpread, 3, 1);
  ASSERT_TRUE(group.Wait(std::chrono::seconds(60)));
  EXPECT_EQ(Distinct(group.BundleNodeIds()).size(), 3u);
  // Exactly the 3 bundles are out of the free CPUs: nothing from the failed rounds.
  EXPECT_TRUE(WaitForFreeCpus(2));
  auto second = Make(PlacementStrategy::kPack, 1, 1);
  ASSERT_TRUE(second.Wait(std::chrono::seconds(60)));
  EXPECT_TRUE(WaitForFreeCpus(1));
  // The faults did happen: the GCS gave back and tried again (its log is in the head's
  // session; every node of the cluster has one in the same folder).
  std::string text;
  for (const auto& entry : std::filesystem::directory_iterator(cluster_.temp_dir())) {
    std::ifstream log(entry.path() / "logs" / "gcs.log");
    text.append(std::istreambuf_iterator<char>(log), std::istreambuf_iterator<char>());
  }
  EXPECT_NE(text.find("the reply of PrepareBundles was lost"), std::string::npos) << text;
  EXPECT_NE(text.find("the reply of CommitBundles was lost"), std::string::npos) << text;
  lumen::RemovePlacementGroup(group.ID());
  lumen::RemovePlacementGroup(second.ID());
  EXPECT_TRUE(WaitForFreeCpus(5));
  EXPECT_TRUE(WaitUntil(NoBundleResources));
}

}  // namespace
}  // namespace lumen::test
