// Placement groups in the GCS: where bundles go by strategy (PlaceBundles), and the
// manager's two-phase reservation against fake raylets: all prepared then committed, a
// failed prepare given back and tried again, removal, node death, names.
#include "gcs/placement_group_manager.h"

#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <map>
#include <set>
#include <vector>

#include "common/ids.h"
#include "gcs/bundle_placement.h"

namespace lumen::gcs {
namespace {

using std::chrono::milliseconds;
using Info = rpc::PlacementGroupInfo;

ResourceSet Cpus(double n) { return ResourceSet::FromMap({{"CPU", n}}); }

std::vector<NodeRoom> Rooms(const std::vector<double>& cpus) {
  std::vector<NodeRoom> rooms;
  for (size_t i = 0; i < cpus.size(); ++i) rooms.push_back({"n" + std::to_string(i), Cpus(cpus[i])});
  return rooms;
}

std::vector<std::string> Place(Info::Strategy strategy, std::vector<double> bundles,
                               std::vector<double> nodes, std::vector<std::string> fixed = {}) {
  std::vector<ResourceSet> sets;
  for (double b : bundles) sets.push_back(Cpus(b));
  std::vector<std::string> placed = fixed;
  placed.resize(bundles.size());
  std::string why;
  if (!PlaceBundles(strategy, sets, Rooms(nodes), &placed, &why)) return {"failed: " + why};
  return placed;
}

TEST(PlaceBundlesTest, StrictPackNeedsOneNodeForAll) {
  // n0 has 2 CPUs, n1 4: only n1 holds 3 bundles of 1.
  EXPECT_EQ(Place(Info::STRICT_PACK, {1, 1, 1}, {2, 4}),
            (std::vector<std::string>{"n1", "n1", "n1"}));
  auto failed = Place(Info::STRICT_PACK, {1, 1, 1}, {2, 2});
  ASSERT_EQ(failed.size(), 1u);
  EXPECT_NE(failed[0].find("no node has"), std::string::npos) << failed[0];
}

TEST(PlaceBundlesTest, StrictPackTakesTheFullestNodeThatFits) {
  EXPECT_EQ(Place(Info::STRICT_PACK, {1, 1}, {8, 2, 4}), (std::vector<std::string>{"n1", "n1"}));
}

TEST(PlaceBundlesTest, StrictSpreadPutsEachBundleOnItsOwnNode) {
  auto placed = Place(Info::STRICT_SPREAD, {1, 1, 1}, {4, 4, 4});
  EXPECT_EQ(std::set<std::string>(placed.begin(), placed.end()).size(), 3u);
  EXPECT_EQ(Place(Info::STRICT_SPREAD, {1, 1, 1}, {4, 4})[0].rfind("failed", 0), 0u);
  // A node too small for a bundle is skipped: 2 CPUs each need n0 and n2.
  auto picked = Place(Info::STRICT_SPREAD, {2, 2}, {2, 1, 3});
  EXPECT_EQ(std::set<std::string>(picked.begin(), picked.end()),
            (std::set<std::string>{"n0", "n2"}));
}

TEST(PlaceBundlesTest, PackUsesOneNodeWhenItCanElseFew) {
  EXPECT_EQ(Place(Info::PACK, {1, 1}, {4, 4}), (std::vector<std::string>{"n1", "n1"}));
  // 3 CPUs on nodes of 2: two nodes, not three.
  auto placed = Place(Info::PACK, {1, 1, 1}, {2, 2, 2});
  EXPECT_EQ(std::set<std::string>(placed.begin(), placed.end()).size(), 2u);
}

TEST(PlaceBundlesTest, SpreadUsesAsManyNodesAsItCanAndThenShares) {
  auto placed = Place(Info::SPREAD, {1, 1}, {4, 4, 4});
  EXPECT_NE(placed[0], placed[1]);
  auto shared = Place(Info::SPREAD, {1, 1, 1}, {4, 4});
  EXPECT_EQ(std::set<std::string>(shared.begin(), shared.end()).size(), 2u);
  EXPECT_EQ(shared.size(), 3u);
}

TEST(PlaceBundlesTest, BundlesAlreadyPlacedStayAndCount) {
  // Rescheduling: bundle 0 stays on n0; strict spread keeps bundle 1 off n0.
  auto placed = Place(Info::STRICT_SPREAD, {1, 1}, {4, 4}, {"n0", ""});
  EXPECT_EQ(placed, (std::vector<std::string>{"n0", "n1"}));
  // Strict pack must join the bundles already on n1, which has no room left.
  EXPECT_EQ(Place(Info::STRICT_PACK, {1, 1}, {4, 0}, {"", "n1"})[0].rfind("failed", 0), 0u);
}

class PlacementGroupManagerTest : public ::testing::Test {
 protected:
  struct Timer {
    milliseconds delay;
    std::function<void()> fn;
  };
  struct Call {
    std::string raylet;
    rpc::PrepareBundlesRequest prepare;
    rpc::CommitBundlesRequest commit;
    std::function<void(absl::Status, rpc::PrepareBundlesReply)> prepared;
    std::function<void(absl::Status, rpc::CommitBundlesReply)> committed;
  };

  PlacementGroupManagerTest() {
    PlacementGroupDeps deps;
    deps.post = [this](std::function<void()> fn) { fn(); };
    deps.run_after = [this](milliseconds delay, std::function<void()> fn) {
      timers_.push_back({delay, std::move(fn)});
    };
    deps.prepare = [this](const std::string& raylet, const rpc::PrepareBundlesRequest& request,
                          auto callback) {
      Call call;
      call.raylet = raylet;
      call.prepare = request;
      call.prepared = callback;
      prepares_.push_back(call);
    };
    deps.commit = [this](const std::string& raylet, const rpc::CommitBundlesRequest& request,
                         auto callback) {
      Call call;
      call.raylet = raylet;
      call.commit = request;
      call.committed = callback;
      commits_.push_back(call);
    };
    deps.return_bundles = [this](const std::string& raylet, const rpc::ReturnBundlesRequest& r,
                                 auto done) {
      returned_.push_back({raylet, r});
      done(rpc::ReturnBundlesReply());
    };
    deps.kill_actors = [this](const std::string& group, const std::string& cause) {
      killed_.push_back(group);
    };
    deps.namespace_of = [](const std::string&) { return std::string("ns"); };
    manager_ = std::make_unique<PlacementGroupManager>(std::move(deps), &nodes_);
  }

  std::string AddNode(double cpus) {
    rpc::NodeInfo node;
    std::string id = NodeId::FromRandom().Binary();
    node.set_node_id(id);
    node.set_raylet_address("127.0.0.1:" + std::to_string(2000 + node_ids_.size()));
    (*node.mutable_total())["CPU"] = cpus;
    (*node.mutable_available())["CPU"] = cpus;
    EXPECT_TRUE(nodes_.Register(node).ok());
    node_ids_.push_back(id);
    return id;
  }
  std::string Create(Info::Strategy strategy, int bundles, const std::string& name = "") {
    Info info;
    std::string id = PlacementGroupId::FromRandom().Binary();
    info.set_placement_group_id(id);
    info.set_name(name);
    info.set_strategy(strategy);
    for (int i = 0; i < bundles; ++i) (*info.add_bundles()->mutable_resources())["CPU"] = 1;
    last_status_ = manager_->Create(info);
    return id;
  }
  Info Get(const std::string& id) {
    rpc::GetPlacementGroupRequest request;
    request.set_placement_group_id(id);
    rpc::GetPlacementGroupReply reply;
    manager_->Get(request, &reply, [](absl::Status) {});
    return reply.group();
  }
  /// Answers the prepares out (ok unless its raylet is in `refuse`), then the commits.
  void AnswerAll(const std::set<std::string>& refuse = {}) {
    while (!prepares_.empty() || !commits_.empty()) {
      std::vector<Call> prepares, commits;
      prepares.swap(prepares_);
      commits.swap(commits_);
      for (Call& call : prepares) {
        rpc::PrepareBundlesReply reply;
        reply.set_prepared(!refuse.count(call.raylet));
        call.prepared(absl::OkStatus(), reply);
      }
      for (Call& call : commits) call.committed(absl::OkStatus(), rpc::CommitBundlesReply());
    }
  }
  void FireTimers() {
    std::vector<Timer> due;
    due.swap(timers_);
    for (Timer& timer : due) timer.fn();
  }

  NodeManager nodes_{[this](milliseconds delay, std::function<void()> fn) {
                       timers_.push_back({delay, std::move(fn)});
                     },
                     10000};
  std::unique_ptr<PlacementGroupManager> manager_;
  std::vector<Timer> timers_;
  std::vector<Call> prepares_;
  std::vector<Call> commits_;
  std::vector<std::pair<std::string, rpc::ReturnBundlesRequest>> returned_;
  std::vector<std::string> killed_;
  std::vector<std::string> node_ids_;
  absl::Status last_status_;
};

TEST_F(PlacementGroupManagerTest, PreparesEveryNodeThenCommitsThenIsCreated) {
  AddNode(2);
  AddNode(2);
  std::string id = Create(Info::STRICT_SPREAD, 2);
  ASSERT_TRUE(last_status_.ok());
  EXPECT_EQ(Get(id).state(), Info::PENDING);
  ASSERT_EQ(prepares_.size(), 2u);  // both nodes at once
  EXPECT_TRUE(commits_.empty());
  // Nothing is committed before every prepare succeeded.
  rpc::PrepareBundlesReply ok;
  ok.set_prepared(true);
  prepares_[0].prepared(absl::OkStatus(), ok);
  EXPECT_TRUE(commits_.empty());
  prepares_[1].prepared(absl::OkStatus(), ok);
  prepares_.clear();
  ASSERT_EQ(commits_.size(), 2u);
  bool ready = false;
  manager_->WhenPlaced(id, 1, [&](const std::string& failure) { ready = failure.empty(); });
  EXPECT_FALSE(ready);
  AnswerAll();
  Info info = Get(id);
  EXPECT_EQ(info.state(), Info::CREATED);
  EXPECT_TRUE(ready);
  EXPECT_NE(info.bundles(0).node_id(), info.bundles(1).node_id());
  EXPECT_TRUE(returned_.empty());
}

TEST_F(PlacementGroupManagerTest, AFailedPrepareGivesBackWhatWasPreparedAndTriesAgain) {
  AddNode(2);
  AddNode(2);
  std::string id = Create(Info::STRICT_SPREAD, 2);
  ASSERT_EQ(prepares_.size(), 2u);
  std::string refused = prepares_[1].raylet;
  AnswerAll({refused});
  Info info = Get(id);
  EXPECT_EQ(info.state(), Info::PENDING);
  EXPECT_NE(info.waiting_reason().find("failed"), std::string::npos) << info.waiting_reason();
  // Both nodes are told to give back (the refusing one took nothing; it is idempotent).
  ASSERT_EQ(returned_.size(), 2u);
  EXPECT_EQ(returned_[0].second.indices_size() + returned_[1].second.indices_size(), 2);
  EXPECT_TRUE(commits_.empty());
  // After the backoff it tries again, and succeeds.
  std::this_thread::sleep_for(milliseconds(120));
  FireTimers();
  ASSERT_EQ(prepares_.size(), 2u);
  AnswerAll();
  EXPECT_EQ(Get(id).state(), Info::CREATED);
}

TEST_F(PlacementGroupManagerTest, WaitsPendingUntilANodeJoins) {
  AddNode(2);
  std::string id = Create(Info::STRICT_SPREAD, 2);
  EXPECT_TRUE(prepares_.empty());
  Info info = Get(id);
  EXPECT_EQ(info.state(), Info::PENDING);
  EXPECT_TRUE(info.infeasible());  // one node can never hold a strict spread of 2
  EXPECT_NE(info.waiting_reason().find("holds no other bundle"), std::string::npos)
      << info.waiting_reason();
  AddNode(2);
  manager_->OnNodesChanged();
  AnswerAll();
  info = Get(id);
  EXPECT_EQ(info.state(), Info::CREATED);
  EXPECT_FALSE(info.infeasible());
}

TEST_F(PlacementGroupManagerTest, RemoveKillsActorsAndReturnsBundles) {
  AddNode(4);
  std::string id = Create(Info::PACK, 2, "group");
  AnswerAll();
  ASSERT_EQ(Get(id).state(), Info::CREATED);
  std::string failure;
  ASSERT_TRUE(manager_->Remove(id, "test").ok());
  EXPECT_EQ(killed_, std::vector<std::string>{id});
  ASSERT_EQ(returned_.size(), 1u);
  EXPECT_EQ(returned_[0].second.indices_size(), 2);
  Info info = Get(id);
  EXPECT_EQ(info.state(), Info::REMOVED);
  EXPECT_EQ(info.removal_cause(), "test");
  manager_->WhenPlaced(id, 0, [&](const std::string& why) { failure = why; });
  EXPECT_NE(failure.find("was removed"), std::string::npos) << failure;
  EXPECT_TRUE(manager_->Remove(id, "again").ok());  // idempotent
  EXPECT_EQ(manager_->Remove(PlacementGroupId::FromRandom().Binary(), "x").code(),
            absl::StatusCode::kNotFound);
  // The name is free again.
  Create(Info::PACK, 1, "group");
  EXPECT_TRUE(last_status_.ok()) << last_status_;
}

TEST_F(PlacementGroupManagerTest, NamesAreUniquePerNamespace) {
  AddNode(4);
  Create(Info::PACK, 1, "same");
  ASSERT_TRUE(last_status_.ok());
  Create(Info::PACK, 1, "same");
  EXPECT_EQ(last_status_.code(), absl::StatusCode::kAlreadyExists);
}

TEST_F(PlacementGroupManagerTest, BadBundlesAreRefused) {
  Info info;
  info.set_placement_group_id(PlacementGroupId::FromRandom().Binary());
  EXPECT_EQ(manager_->Create(info).code(), absl::StatusCode::kInvalidArgument);  // none
  info.add_bundles();
  EXPECT_EQ(manager_->Create(info).code(), absl::StatusCode::kInvalidArgument);  // empty
  (*info.mutable_bundles(0)->mutable_resources())["CPU"] = 1.5;
  EXPECT_EQ(manager_->Create(info).code(), absl::StatusCode::kInvalidArgument);  // not whole
}

TEST_F(PlacementGroupManagerTest, ANodeDeathReschedulesOnlyItsBundles) {
  std::string a = AddNode(2);
  std::string b = AddNode(2);
  std::string id = Create(Info::STRICT_SPREAD, 2);
  AnswerAll();
  Info before = Get(id);
  ASSERT_EQ(before.state(), Info::CREATED);
  std::string lost = before.bundles(0).node_id();
  std::string kept = before.bundles(1).node_id();
  manager_->OnNodeDeath(lost);
  Info info = Get(id);
  EXPECT_EQ(info.state(), Info::RESCHEDULING);
  EXPECT_EQ(info.bundles(0).node_id(), "");
  EXPECT_EQ(info.bundles(1).node_id(), kept);
  // The node is still alive in this fake (the node table did not declare it dead): a new
  // node takes the lost bundle; strict spread keeps it off the kept one.
  std::string c = AddNode(2);
  manager_->OnNodesChanged();
  AnswerAll();
  info = Get(id);
  EXPECT_EQ(info.state(), Info::CREATED);
  EXPECT_NE(info.bundles(0).node_id(), kept);
  EXPECT_EQ(info.bundles(1).node_id(), kept);
}

}  // namespace
}  // namespace lumen::gcs
