#include "gcs/node_manager.h"

#include <algorithm>

#include "common/clock.h"
#include "common/ids.h"
#include "common/logging.h"

namespace lumen::gcs {
namespace {

constexpr size_t kKeptGoneOwners = 10000;
// What a new core worker watching for processes gone hears of: the last minute.
constexpr int64_t kNewWatcherHistoryMs = 60000;
constexpr int64_t kMaxWaitMs = 30000;

}  // namespace

NodeManager::NodeManager(RunAfter run_after, int64_t node_timeout_ms,
                         std::chrono::milliseconds publish_interval)
    : run_after_(std::move(run_after)),
      node_timeout_ms_(node_timeout_ms),
      publish_interval_(publish_interval) {}

absl::Status NodeManager::Register(const rpc::NodeInfo& node) {
  if (node.node_id().size() != NodeId::Size()) {
    return absl::InvalidArgumentError("node id must be 16 bytes");
  }
  auto known = nodes_.find(node.node_id());
  if (known != nodes_.end() && !known->second.info.alive()) {
    return absl::FailedPreconditionError(
        "node " + NodeId::FromBinary(node.node_id()).Hex() + " was declared dead (" +
        known->second.info.death_cause() + "); start it again, as a new node");
  }
  Entry& entry = nodes_[node.node_id()];
  entry.info = node;
  entry.info.set_alive(true);
  entry.info.set_last_heartbeat_ms(NowMs());
  entry.info.set_version(++version_);
  entry.state_version = version_;
  Changed();
  LUMEN_LOG_INFO("gcs: node {} registered at {}", NodeId::FromBinary(node.node_id()).Hex(),
                 node.raylet_endpoint());
  return absl::OkStatus();
}

NodeManager::Liveness NodeManager::Heartbeat(const rpc::NodeHeartbeatRequest& request) {
  auto it = nodes_.find(request.node_id());
  if (it == nodes_.end()) return Liveness::kUnknown;
  if (!it->second.info.alive()) return Liveness::kDead;
  rpc::NodeInfo& node = it->second.info;
  node.set_last_heartbeat_ms(NowMs());
  if (request.has_processes()) {
    it->second.processes.assign(request.processes().begin(), request.processes().end());
  }
  if (request.has_resources()) {
    // What waits there is for `lumen status`, which reads whole entries: no new version.
    *node.mutable_pending() = request.pending();
    SetResources(it->second, request.total(), request.available(), request.resources_seq());
  }
  return Liveness::kAlive;
}

void NodeManager::UpdateResources(const std::string& node_id, const ResourceMap& total,
                                  const ResourceMap& available, uint64_t seq) {
  auto it = nodes_.find(node_id);
  if (total.empty() || it == nodes_.end() || !it->second.info.alive()) return;
  SetResources(it->second, total, available, seq);
}

void NodeManager::SetResources(Entry& entry, const ResourceMap& total,
                               const ResourceMap& available, uint64_t seq) {
  // Heartbeats and replies about bundles travel apart: one made earlier may come later.
  if (seq != 0 && seq <= entry.resources_seq) return;
  if (seq != 0) entry.resources_seq = seq;
  rpc::NodeInfo& node = entry.info;
  using Sorted = std::map<std::string, double>;
  bool changed = false;
  if (Sorted(node.available().begin(), node.available().end()) !=
      Sorted(available.begin(), available.end())) {
    *node.mutable_available() = available;
    changed = true;
  }
  // Total changes with the placement-group bundles the node holds (a raylet that does
  // not send it keeps the total it registered with).
  if (!total.empty() &&
      Sorted(node.total().begin(), node.total().end()) != Sorted(total.begin(), total.end())) {
    *node.mutable_total() = total;
    changed = true;
  }
  if (changed) {
    node.set_version(++version_);
    Changed();
  }
}

void NodeManager::CheckHealth() {
  int64_t now = NowMs();
  std::vector<std::string> died;
  for (auto& [id, entry] : nodes_) {
    int64_t silent = now - entry.info.last_heartbeat_ms();
    if (entry.info.alive() && !entry.info.is_head() && silent > node_timeout_ms_) {
      entry.info.set_alive(false);
      entry.info.set_death_cause("no heartbeat for " + std::to_string(silent) + " ms");
      entry.info.set_version(++version_);
      entry.state_version = version_;
      Changed();
      LUMEN_LOG_WARN("gcs: node {} at {} sent no heartbeat for {} ms; declared dead",
                     NodeId::FromBinary(id).Hex(), entry.info.node_ip(), silent);
      died.push_back(id);
    }
  }
  for (const std::string& id : died) {
    // Its processes are gone too, as far as the cluster is concerned: even if they still
    // run (a frozen machine), nothing waits for them or keeps their objects any more.
    for (const std::string& address : nodes_.at(id).processes) OwnerGone(address);
    if (on_death_) on_death_(nodes_.at(id).info);
  }
}

void NodeManager::OwnerGone(const std::string& address) {
  gone_owners_.push_back(GoneOwner{LastGoneOwner() + 1, address, NowMs()});
  if (gone_owners_.size() > kKeptGoneOwners) gone_owners_.pop_front();
  Changed();
}

const rpc::NodeInfo* NodeManager::Find(const std::string& node_id) const {
  auto it = nodes_.find(node_id);
  return it == nodes_.end() ? nullptr : &it->second.info;
}

bool NodeManager::HasNews(const Cursor& cursor) const {
  // A poller ahead of this view (the GCS restarted) needs all of it again.
  bool owners = cursor.gone_owners_after < LastGoneOwner();
  return owners || (!cursor.owners_only && cursor.known_version != version_);
}

void NodeManager::Fill(const Cursor& cursor, rpc::GetAllNodesReply* reply) const {
  // A core worker that starts watching hears only of recent ones: those it could be
  // handed refs of. (An address gone long ago may belong to a new process by now: the
  // kernel hands ports out again.)
  bool new_watcher = cursor.owners_only && cursor.gone_owners_after == 0;
  int64_t since_ms = new_watcher ? NowMs() - kNewWatcherHistoryMs : 0;
  for (const GoneOwner& gone : gone_owners_) {
    if (gone.seq > cursor.gone_owners_after && gone.at_ms >= since_ms) {
      reply->add_gone_owners(gone.address);
    }
  }
  reply->set_gone_owners_last(LastGoneOwner());
  if (cursor.owners_only) return;
  uint64_t known_version = cursor.known_version;
  bool whole = known_version == 0 || known_version > version_;
  for (const auto& [id, entry] : nodes_) {
    if (whole || entry.state_version > known_version) {
      *reply->add_nodes() = entry.info;
    } else if (entry.info.version() > known_version) {
      rpc::ResourceUpdate* update = reply->add_resources();
      update->set_node_id(id);
      update->set_version(entry.info.version());
      *update->mutable_available() = entry.info.available();
      *update->mutable_total() = entry.info.total();
    }
  }
  reply->set_version(version_);
  reply->set_whole(whole);
}

void NodeManager::Poll(const rpc::GetAllNodesRequest& request, rpc::GetAllNodesReply* reply,
                       rpc::Done done) {
  Cursor cursor{request.known_version(), request.gone_owners_after(),
                request.gone_owners_only()};
  if (stopped_ || request.wait_ms() <= 0 || (cursor.known_version == 0 && !cursor.owners_only)) {
    Fill(cursor, reply);
    return done(absl::OkStatus());
  }
  // Even with news, a poll waits for the next publish: a raylet that polls again at once
  // gets the changes of a whole interval in one reply, not one reply per change.
  uint64_t token = next_token_++;
  parked_[token] = Parked{cursor, reply, std::move(done)};
  if (HasNews(cursor)) Changed();
  run_after_(std::chrono::milliseconds(std::min(request.wait_ms(), kMaxWaitMs)), [this, token] {
    auto it = parked_.find(token);
    if (it == parked_.end()) return;
    Parked parked = std::move(it->second);
    parked_.erase(it);
    Fill(parked.cursor, parked.reply);
    parked.done(absl::OkStatus());
  });
}

void NodeManager::Changed() {
  if (publish_scheduled_ || parked_.empty()) return;
  publish_scheduled_ = true;
  run_after_(publish_interval_, [this] {
    publish_scheduled_ = false;
    Publish();
  });
}

void NodeManager::Publish() {
  std::map<uint64_t, Parked> parked;
  parked.swap(parked_);
  // Most pollers hold the same version (the last publish's): one reply is made for each
  // version held, and copied to the others.
  std::map<Cursor, const rpc::GetAllNodesReply*> made;
  for (auto& [token, poll] : parked) {
    if (!HasNews(poll.cursor)) {
      parked_.emplace(token, std::move(poll));
      continue;
    }
    auto it = made.find(poll.cursor);
    if (it != made.end()) {
      *poll.reply = *it->second;
    } else {
      Fill(poll.cursor, poll.reply);
      made.emplace(poll.cursor, poll.reply);
    }
  }
  // Answered only now: a reply may be gone once its call is done.
  for (auto& [token, poll] : parked) {
    if (parked_.count(token) == 0) poll.done(absl::OkStatus());
  }
}

void NodeManager::Stop() {
  stopped_ = true;
  std::map<uint64_t, Parked> parked;
  parked.swap(parked_);
  for (auto& [token, poll] : parked) {
    Fill(poll.cursor, poll.reply);
    poll.done(absl::OkStatus());
  }
}

}  // namespace lumen::gcs
