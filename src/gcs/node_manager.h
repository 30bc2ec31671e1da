// The GCS's node table and the cluster view it publishes to every raylet.
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
#include "rpc/rpc.h"

namespace lumen::gcs {

/// Nodes register, report liveness and resource changes, and are declared dead when they
/// stop reporting (except the head node: it hosts the GCS itself). A dead node stays dead:
/// its id cannot register again, and its heartbeats are told so (it must start again as a
/// new node). The view is versioned: every change that raylets need (a node that
/// registers or dies, a node's available resources) takes the next version, and so does
/// an owner that exits (every node frees what it owned). Raylets long-poll the view with
/// the version they hold and get only what changed since: whole entries for nodes new or
/// dead to them, just the resources for the rest. Parked polls are answered together,
/// at most once per `publish_interval`, so a burst of changes costs one round of replies.
/// Loop-only: every method runs on the GCS event loop.
class NodeManager {
 public:
  using RunAfter = std::function<void(std::chrono::milliseconds, std::function<void()>)>;
  NodeManager(RunAfter run_after, int64_t node_timeout_ms,
              std::chrono::milliseconds publish_interval = std::chrono::milliseconds(50));

  /// Called on the loop with a node's entry just after it was declared dead.
  void SetOnDeath(std::function<void(const rpc::NodeInfo&)> on_death) {
    on_death_ = std::move(on_death);
  }

  /// INVALID_ARGUMENT for a malformed node id; FAILED_PRECONDITION for the id of a node
  /// declared dead. A node that registers again (same id, alive) gets its new entry.
  absl::Status Register(const rpc::NodeInfo& node);
  enum class Liveness { kAlive, kUnknown, kDead };
  /// kUnknown: the node must register again; kDead: it must stop.
  Liveness Heartbeat(const rpc::NodeHeartbeatRequest& request);
  using ResourceMap = google::protobuf::Map<std::string, double>;
  /// A node's resources as a raylet's reply about its bundles gave them (fresher than
  /// its last report). A reply without the node's total changes nothing.
  void UpdateResources(const std::string& node_id, const ResourceMap& total,
                       const ResourceMap& available, uint64_t seq);
  /// Nodes (but the head) silent for longer than node_timeout_ms are dead.
  void CheckHealth();
  /// An owner (a core worker's TCP address) exited: published with the view. The last
  /// 10,000 are kept. A node declared dead takes every process it reported with it.
  void OwnerGone(const std::string& address);
  /// Answers with what changed after request.known_version (everything for 0) and the
  /// owners gone after request.gone_owners_after: at once for known_version 0 or
  /// wait_ms <= 0, else at the next publish with news for it (at most publish_interval
  /// after the change), or after wait_ms (at most 30 s) with nothing new. With
  /// gone_owners_only, just the owners gone (and only they are news).
  void Poll(const rpc::GetAllNodesRequest& request, rpc::GetAllNodesReply* reply,
            rpc::Done done);
  /// Answers every parked poll; later polls are answered at once.
  void Stop();

  /// nullptr when unknown.
  const rpc::NodeInfo* Find(const std::string& node_id) const;
  /// Every node, alive or not, by binary node id.
  template <typename F>
  void ForEach(F&& f) const {
    for (const auto& [id, entry] : nodes_) f(entry.info);
  }
  uint64_t version() const { return version_; }

 private:
  struct Entry {
    rpc::NodeInfo info;         // info.version(): its last change of any kind
    uint64_t state_version = 0;  // its registration or death
    std::vector<std::string> processes;  // its drivers' and workers' TCP addresses
    uint64_t resources_seq = 0;  // of the last report of its resources applied
  };
  /// What a poll asks for.
  struct Cursor {
    uint64_t known_version;
    uint64_t gone_owners_after;
    bool owners_only;
    auto operator<=>(const Cursor&) const = default;
  };
  struct Parked {
    Cursor cursor;
    rpc::GetAllNodesReply* reply;
    rpc::Done done;
  };
  bool HasNews(const Cursor& cursor) const;
  /// Applies a report stamped `seq` (0: unstamped) unless a later one was applied.
  void SetResources(struct Entry& entry, const ResourceMap& total, const ResourceMap& available,
                    uint64_t seq);
  void Fill(const Cursor& cursor, rpc::GetAllNodesReply* reply) const;
  /// Something changed: parked polls hear of it at the next publish.
  void Changed();
  void Publish();
  uint64_t LastGoneOwner() const { return gone_owners_.empty() ? 0 : gone_owners_.back().seq; }

  RunAfter run_after_;
  int64_t node_timeout_ms_;
  std::function<void(const rpc::NodeInfo&)> on_death_;
  std::chrono::milliseconds publish_interval_;
  std::map<std::string, Entry> nodes_;  // by binary node id
  uint64_t version_ = 0;
  struct GoneOwner {
    uint64_t seq;
    std::string address;
    int64_t at_ms;  // when it was announced
  };
  std::deque<GoneOwner> gone_owners_;
  std::map<uint64_t, Parked> parked_;  // by token
  uint64_t next_token_ = 1;
  bool publish_scheduled_ = false;
  bool stopped_ = false;
};

}  // namespace lumen::gcs
