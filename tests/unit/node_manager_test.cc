// The GCS's node table and the versioned cluster view it publishes: whole entries for
// what a poller has not seen, resource updates for the rest, long polls answered together
// at the next publish, owners gone published with the view.
#include "gcs/node_manager.h"

#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <vector>

#include "common/ids.h"

namespace lumen::gcs {
namespace {

using std::chrono::milliseconds;

class NodeManagerTest : public ::testing::Test {
 protected:
  struct Timer {
    milliseconds delay;
    std::function<void()> fn;
  };
  struct Poll {
    rpc::GetAllNodesReply reply;
    bool answered = false;
  };

  NodeManager nodes_{[this](milliseconds delay,
                            std::function<void()> fn) { timers_.push_back({delay, fn}); },
                     /*node_timeout_ms=*/10000, milliseconds(50)};
  std::vector<Timer> timers_;

  /// Runs the timers of this delay that are due (the publish: 50 ms; a poll's wait).
  void Fire(milliseconds delay) {
    std::vector<Timer> due;
    for (auto it = timers_.begin(); it != timers_.end();) {
      if (it->delay == delay) {
        due.push_back(std::move(*it));
        it = timers_.erase(it);
      } else {
        ++it;
      }
    }
    for (auto& timer : due) timer.fn();
  }
  std::string Add(double cpus) {
    rpc::NodeInfo node;
    std::string id = NodeId::FromRandom().Binary();
    node.set_node_id(id);
    node.set_raylet_address("127.0.0.1:" + std::to_string(1000 + ids_.size()));
    (*node.mutable_total())["CPU"] = cpus;
    (*node.mutable_available())["CPU"] = cpus;
    EXPECT_TRUE(nodes_.Register(node).ok());
    ids_.push_back(id);
    return id;
  }
  bool Report(const std::string& id, double cpus, bool has_resources = true) {
    rpc::NodeHeartbeatRequest request;
    request.set_node_id(id);
    request.set_has_resources(has_resources);
    (*request.mutable_available())["CPU"] = cpus;
    return nodes_.Heartbeat(request) == NodeManager::Liveness::kAlive;
  }
  void Ask(Poll& poll, uint64_t known, int64_t wait_ms = 5000, uint64_t owners_after = 0) {
    rpc::GetAllNodesRequest request;
    request.set_known_version(known);
    request.set_wait_ms(wait_ms);
    request.set_gone_owners_after(owners_after);
    nodes_.Poll(request, &poll.reply, [&poll](absl::Status status) {
      EXPECT_TRUE(status.ok());
      poll.answered = true;
    });
  }
  std::vector<std::string> ids_;
};

TEST_F(NodeManagerTest, AFirstPollGetsTheWholeTableAtOnce) {
  Add(4);
  Add(2);
  Poll poll;
  Ask(poll, 0);
  ASSERT_TRUE(poll.answered);
  EXPECT_TRUE(poll.reply.whole());
  EXPECT_EQ(poll.reply.nodes_size(), 2);
  EXPECT_EQ(poll.reply.version(), 2u);
  EXPECT_TRUE(poll.reply.resources().empty());
}

TEST_F(NodeManagerTest, AResourceChangeReachesParkedPollsAsAnUpdateAtTheNextPublish) {
  std::string a = Add(4);
  Add(2);
  Poll first, second;
  Ask(first, 2);
  Ask(second, 2);
  EXPECT_FALSE(first.answered);  // nothing new: parked
  ASSERT_TRUE(Report(a, 3));
  EXPECT_FALSE(first.answered);  // at the publish, not at once
  Fire(milliseconds(50));
  for (Poll* poll : {&first, &second}) {
    ASSERT_TRUE(poll->answered);
    EXPECT_FALSE(poll->reply.whole());
    EXPECT_TRUE(poll->reply.nodes().empty());  // known to the poller: just the resources
    ASSERT_EQ(poll->reply.resources_size(), 1);
    EXPECT_EQ(poll->reply.resources(0).node_id(), a);
    EXPECT_EQ(poll->reply.resources(0).available().at("CPU"), 3);
    EXPECT_EQ(poll->reply.version(), 3u);
  }
}

TEST_F(NodeManagerTest, OnlyChangesMakeVersions) {
  std::string a = Add(4);
  ASSERT_TRUE(Report(a, 4));         // the same resources
  ASSERT_TRUE(Report(a, 1, false));  // liveness only
  EXPECT_EQ(nodes_.version(), 1u);
  Poll poll;
  Ask(poll, 1);
  Fire(milliseconds(50));
  EXPECT_FALSE(poll.answered);
  Fire(milliseconds(5000));  // its wait ends with nothing new
  ASSERT_TRUE(poll.answered);
  EXPECT_EQ(poll.reply.version(), 1u);
  EXPECT_TRUE(poll.reply.nodes().empty());
  EXPECT_TRUE(poll.reply.resources().empty());
  EXPECT_FALSE(Report(NodeId::FromRandom().Binary(), 1));  // unknown: register again
  rpc::NodeHeartbeatRequest stranger;
  stranger.set_node_id(NodeId::FromRandom().Binary());
  EXPECT_EQ(nodes_.Heartbeat(stranger), NodeManager::Liveness::kUnknown);
}

TEST_F(NodeManagerTest, ABurstOfChangesIsOneReply) {
  std::vector<std::string> ids;
  for (int i = 0; i < 20; ++i) ids.push_back(Add(8));
  Poll poll;
  Ask(poll, nodes_.version());
  for (int round = 0; round < 3; ++round) {
    for (const auto& id : ids) ASSERT_TRUE(Report(id, 7 - round));
  }
  Fire(milliseconds(50));
  ASSERT_TRUE(poll.answered);
  EXPECT_EQ(poll.reply.resources_size(), 20);  // each node once, with its last figure
  for (const auto& update : poll.reply.resources()) EXPECT_EQ(update.available().at("CPU"), 5);
}

TEST_F(NodeManagerTest, NewAndDeadNodesComeWhole) {
  std::string a = Add(4);
  Poll poll;
  Ask(poll, 1);
  std::string b = Add(2);
  Fire(milliseconds(50));
  ASSERT_TRUE(poll.answered);
  ASSERT_EQ(poll.reply.nodes_size(), 1);
  EXPECT_EQ(poll.reply.nodes(0).node_id(), b);
  EXPECT_EQ(poll.reply.nodes(0).raylet_address(), "127.0.0.1:1001");

  NodeManager strict([this](milliseconds d, std::function<void()> f) { timers_.push_back({d, f}); },
                     /*node_timeout_ms=*/-1);
  rpc::NodeInfo node;
  node.set_node_id(a);
  ASSERT_TRUE(strict.Register(node).ok());
  strict.CheckHealth();  // silent past its (negative) timeout: dead
  rpc::GetAllNodesRequest request;
  request.set_known_version(1);
  rpc::GetAllNodesReply reply;
  strict.Poll(request, &reply, [](absl::Status) {});
  ASSERT_EQ(reply.nodes_size(), 1);
  EXPECT_FALSE(reply.nodes(0).alive());
  EXPECT_EQ(reply.version(), 2u);
  EXPECT_FALSE(strict.Register(rpc::NodeInfo()).ok());  // no node id
}

// A dead node is told so, cannot come back under its id, and is reported once; the head
// (it hosts the GCS) is never declared dead.
TEST_F(NodeManagerTest, ADeadNodeStaysDeadAndTheHeadNeverDies) {
  NodeManager strict([this](milliseconds d, std::function<void()> f) { timers_.push_back({d, f}); },
                     /*node_timeout_ms=*/-1);
  std::vector<std::string> died;
  strict.SetOnDeath([&died](const rpc::NodeInfo& node) {
    EXPECT_FALSE(node.alive());
    EXPECT_NE(node.death_cause().find("no heartbeat for"), std::string::npos)
        << node.death_cause();
    died.push_back(node.node_id());
  });
  rpc::NodeInfo head, worker;
  head.set_node_id(NodeId::FromRandom().Binary());
  head.set_is_head(true);
  worker.set_node_id(NodeId::FromRandom().Binary());
  ASSERT_TRUE(strict.Register(head).ok());
  ASSERT_TRUE(strict.Register(worker).ok());
  strict.CheckHealth();
  strict.CheckHealth();
  EXPECT_EQ(died, std::vector<std::string>{worker.node_id()});
  EXPECT_TRUE(strict.Find(head.node_id())->alive());
  EXPECT_FALSE(strict.Find(worker.node_id())->alive());
  rpc::NodeHeartbeatRequest late;
  late.set_node_id(worker.node_id());
  EXPECT_EQ(strict.Heartbeat(late), NodeManager::Liveness::kDead);
  absl::Status again = strict.Register(worker);
  EXPECT_EQ(again.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(again.message().find("as a new node"), std::string::npos) << again;
}

TEST_F(NodeManagerTest, OwnersGoneArePublishedWithTheView) {
  Add(1);
  Poll poll;
  Ask(poll, 1);
  nodes_.OwnerGone("127.0.0.5:7000");
  Fire(milliseconds(50));
  ASSERT_TRUE(poll.answered);
  ASSERT_EQ(poll.reply.gone_owners_size(), 1);
  EXPECT_EQ(poll.reply.gone_owners(0), "127.0.0.5:7000");
  EXPECT_EQ(poll.reply.gone_owners_last(), 1u);
  Poll next;
  Ask(next, poll.reply.version(), 5000, poll.reply.gone_owners_last());
  Fire(milliseconds(50));
  EXPECT_FALSE(next.answered);  // seen already
}

// Core workers watch only for processes gone: a new watcher gets those gone so far at
// once, resource changes do not wake it, and a node declared dead takes the processes
// it reported.
TEST_F(NodeManagerTest, WatchersOfOwnersGoneHearOfEveryProcessOfADeadNode) {
  NodeManager strict([this](milliseconds d, std::function<void()> f) { timers_.push_back({d, f}); },
                     /*node_timeout_ms=*/-1, milliseconds(50));
  rpc::NodeInfo node;
  node.set_node_id(NodeId::FromRandom().Binary());
  ASSERT_TRUE(strict.Register(node).ok());
  strict.OwnerGone("127.0.0.9:1");  // before the watcher
  rpc::NodeHeartbeatRequest report;
  report.set_node_id(node.node_id());
  report.set_has_processes(true);
  report.add_processes("127.0.0.3:4000");
  report.add_processes("127.0.0.3:4001");
  ASSERT_EQ(strict.Heartbeat(report), NodeManager::Liveness::kAlive);
  auto ask = [&strict](Poll& poll, uint64_t after, int64_t wait_ms) {
    rpc::GetAllNodesRequest request;
    request.set_gone_owners_only(true);
    request.set_gone_owners_after(after);
    request.set_wait_ms(wait_ms);
    strict.Poll(request, &poll.reply, [&poll](absl::Status) { poll.answered = true; });
  };
  Poll first;
  ask(first, 0, 0);
  ASSERT_TRUE(first.answered);
  EXPECT_EQ(std::vector<std::string>(first.reply.gone_owners().begin(),
                                     first.reply.gone_owners().end()),
            std::vector<std::string>{"127.0.0.9:1"})
      << "a new watcher hears of those gone so far";
  EXPECT_EQ(first.reply.nodes_size(), 0);
  Poll watch;
  ask(watch, first.reply.gone_owners_last(), 5000);
  report.set_has_processes(false);
  report.set_has_resources(true);
  (*report.mutable_available())["CPU"] = 3;
  ASSERT_EQ(strict.Heartbeat(report), NodeManager::Liveness::kAlive);  // a resource change
  Fire(milliseconds(50));
  EXPECT_FALSE(watch.answered) << "resource changes are not a watcher's news";
  strict.CheckHealth();  // silent past the timeout: dead
  Fire(milliseconds(50));
  ASSERT_TRUE(watch.answered);
  EXPECT_EQ(std::vector<std::string>(watch.reply.gone_owners().begin(),
                                     watch.reply.gone_owners().end()),
            (std::vector<std::string>{"127.0.0.3:4000", "127.0.0.3:4001"}));
  EXPECT_EQ(watch.reply.nodes_size(), 0);
}

TEST_F(NodeManagerTest, APollerAheadOfTheViewGetsItWholeAndStopAnswersParkedPolls) {
  Add(1);
  Poll ahead;
  Ask(ahead, 99);  // it held a version of a GCS before a restart
  Fire(milliseconds(50));
  ASSERT_TRUE(ahead.answered);
  EXPECT_TRUE(ahead.reply.whole());
  EXPECT_EQ(ahead.reply.nodes_size(), 1);
  Poll parked;
  Ask(parked, 1);
  EXPECT_FALSE(parked.answered);
  nodes_.Stop();
  EXPECT_TRUE(parked.answered);
}

}  // namespace
}  // namespace lumen::gcs
