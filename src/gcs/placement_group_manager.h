// The GCS's placement groups: each group's bundles reserved on nodes by its strategy,
// atomically (two-phase: prepare on every chosen raylet, then commit), and given back
// when it is removed. Loop-only: every method runs on the GCS event loop.
//
//   Create ──► PENDING ──(all prepared, all committed)──► CREATED
//                 ▲  │ a prepare failed: what was prepared is returned; tried again
//                 └──┘ (after a backoff, and whenever the nodes change)
//   CREATED ──(a node holding bundles died)──► RESCHEDULING ──(its bundles placed again)──► CREATED
//   any ──Remove / its job ended (unless detached)──► REMOVED (final): the actors in it
//         are killed, its bundles returned (the raylets stop the workers using them).
//
// One group is placed at a time, in creation order (a group that cannot be placed now
// does not hold back those behind it). Every change bumps the group's version and
// answers the long polls parked on it.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "gcs.pb.h"
#include "gcs/node_manager.h"
#include "raylet.pb.h"
#include "rpc/rpc.h"

namespace lumen::gcs {

/// The manager's peers, as functions: gRPC in the GCS, fakes in tests. Callbacks may
/// run on any thread; the manager posts them to its loop itself.
struct PlacementGroupDeps {
  std::function<void(std::function<void()>)> post;
  std::function<void(std::chrono::milliseconds, std::function<void()>)> run_after;
  /// The raylet of `node` (its TCP address).
  std::function<void(const std::string& raylet, const rpc::PrepareBundlesRequest&,
                     std::function<void(absl::Status, rpc::PrepareBundlesReply)>)>
      prepare;
  std::function<void(const std::string& raylet, const rpc::CommitBundlesRequest&,
                     std::function<void(absl::Status, rpc::CommitBundlesReply)>)>
      commit;
  /// Gives bundles back (tried again until the raylet answers or its node is dead);
  /// `done` runs once it answered.
  std::function<void(const std::string& raylet, const rpc::ReturnBundlesRequest&,
                     std::function<void(rpc::ReturnBundlesReply)> done)>
      return_bundles;
  /// Kills (no restart) the actors placed in the group, saying `cause`.
  std::function<void(const std::string& group_id, const std::string& cause)> kill_actors;
  std::function<std::string(const std::string& job_id)> namespace_of;
};

class PlacementGroupManager {
 public:
  static constexpr int64_t kMaxWaitMs = 30000;
  /// Removed groups kept for lookups and lists.
  static constexpr size_t kKeptRemoved = 1000;

  PlacementGroupManager(PlacementGroupDeps deps, NodeManager* nodes)
      : deps_(std::move(deps)), nodes_(nodes) {}

  /// Checks the request (bundles, name), stores the group PENDING, starts placing it.
  /// AlreadyExists: the name is taken in its namespace; InvalidArgument: bad bundles.
  absl::Status Create(rpc::PlacementGroupInfo group);
  /// By id, or by name (answers not found for a removed one).
  void Get(const rpc::GetPlacementGroupRequest& request, rpc::GetPlacementGroupReply* reply,
           rpc::Done done);
  void List(rpc::ListPlacementGroupsReply* reply) const;
  /// NotFound when there is no such group; removing a removed group is fine.
  absl::Status Remove(const std::string& group_id, const std::string& cause);
  /// Groups of the job that are not detached are removed.
  void OnJobFinished(const std::string& job_id);
  /// Bundles on the node are placed again elsewhere.
  void OnNodeDeath(const std::string& node_id);
  /// The cluster changed (a node joined, resources freed): pending groups try again.
  void OnNodesChanged();
  /// Calls `ready` once bundle `index` (-1: any) of the group is placed, at once when it
  /// is: with "" then, or with why it never will be (no such group, removed).
  void WhenPlaced(const std::string& group_id, int index,
                  std::function<void(const std::string& failure)> ready);
  /// The node (binary id) of bundle `index` (-1: of a placed bundle, in turn), or "".
  std::string BundleNode(const std::string& group_id, int index) const;
  void Stop();

 private:
  struct Poll {
    uint64_t token;
    rpc::GetPlacementGroupReply* reply;
    rpc::Done done;
  };
  struct Waiter {
    int index;
    std::function<void(const std::string&)> ready;
  };
  struct Group {
    rpc::PlacementGroupInfo info;
    std::vector<Poll> polls;
    std::vector<Waiter> waiters;
    int64_t not_before_ms = 0;   // backoff after a failed round
    int64_t backoff_ms = 0;
    bool warned_infeasible = false;
  };
  /// One round for one group: the nodes chosen and what each was asked to prepare.
  struct Round {
    std::string group_id;
    std::map<std::string, std::vector<int>> by_node;  // node id -> bundle indices
    std::map<std::string, std::string> raylets;       // node id -> raylet address
    int replies_left = 0;
    bool failed = false;
    bool lost = false;  // a call failed (not a refusal): its node may have done the work
    std::string why;
  };

  Group* Find(const std::string& group_id);
  bool NeedsPlacing(const Group& group) const;
  /// Starts a round for the first group that can be placed now, unless one is out.
  void ScheduleNext();
  void ArmRetry();
  void OnPrepared(const std::string& node, absl::Status status,
                  const rpc::PrepareBundlesReply& reply);
  void OnCommitted(const std::string& node, absl::Status status,
                   const rpc::CommitBundlesReply& reply);
  /// Ends the round: placed (all committed) or given back (any failure).
  void FinishRound();
  void ReturnRound(const Round& round);
  /// Gives bundles back at a node; its answer updates the node's resources.
  void ReturnBundles(const std::string& node_id, const std::string& raylet,
                     const rpc::ReturnBundlesRequest& request);
  void Publish(Group& group);
  void RunWaiters(Group& group);
  static void Answer(Poll& poll, const Group& group);
  std::string NamespaceOf(const rpc::PlacementGroupInfo& info) const;

  PlacementGroupDeps deps_;
  NodeManager* nodes_;
  std::map<std::string, Group> groups_;                              // by binary id
  std::map<std::pair<std::string, std::string>, std::string> names_;  // (ns, name) -> id
  std::deque<std::string> order_;    // creation order, for placing
  std::deque<std::string> removed_;  // oldest first, the last kKeptRemoved
  std::unique_ptr<Round> round_;     // the round out, if any
  bool retry_armed_ = false;
  mutable uint64_t any_turn_ = 0;  // BundleNode's turn for "any bundle"
  uint64_t next_poll_token_ = 1;
  bool stopped_ = false;
};

}  // namespace lumen::gcs
