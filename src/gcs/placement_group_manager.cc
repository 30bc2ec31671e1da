#include "gcs/placement_group_manager.h"

#include <algorithm>

#include "common/bundles.h"
#include "common/clock.h"
#include "common/ids.h"
#include "common/logging.h"
#include "gcs/bundle_placement.h"

namespace lumen::gcs {
namespace {

constexpr int64_t kFirstBackoffMs = 100;
constexpr int64_t kMaxBackoffMs = 2000;
constexpr int64_t kRetryMs = 200;

const char* StrategyName(rpc::PlacementGroupInfo::Strategy strategy) {
  return rpc::PlacementGroupInfo::Strategy_Name(strategy).c_str();
}

std::string Label(const rpc::PlacementGroupInfo& info) {
  std::string id = PlacementGroupId::FromBinary(info.placement_group_id()).Hex();
  return info.name().empty() ? "placement group " + id
                             : "placement group '" + info.name() + "' (" + id + ")";
}

ResourceSet BundleSet(const rpc::Bundle& bundle) {
  return ResourceSet::FromMap({bundle.resources().begin(), bundle.resources().end()});
}

bool Placed(const rpc::PlacementGroupInfo& info, int index) {
  if (index >= 0) return !info.bundles(index).node_id().empty();
  for (const rpc::Bundle& bundle : info.bundles()) {
    if (!bundle.node_id().empty()) return true;
  }
  return false;
}

}  // namespace

absl::Status PlacementGroupManager::Create(rpc::PlacementGroupInfo group) {
  if (group.placement_group_id().size() != PlacementGroupId::Size()) {
    return absl::InvalidArgumentError("malformed placement group id");
  }
  if (groups_.count(group.placement_group_id())) return absl::OkStatus();  // sent again
  if (group.bundles().empty()) {
    return absl::InvalidArgumentError("a placement group needs at least one bundle");
  }
  if (!rpc::PlacementGroupInfo::Strategy_IsValid(group.strategy())) {
    return absl::InvalidArgumentError("unknown placement strategy");
  }
  for (int i = 0; i < group.bundles_size(); ++i) {
    rpc::Bundle* bundle = group.mutable_bundles(i);
    bundle->clear_node_id();
    if (bundle->resources().empty()) {
      return absl::InvalidArgumentError("bundle " + std::to_string(i) +
                                        " is empty: a bundle reserves at least one resource");
    }
    for (const auto& [name, amount] : bundle->resources()) {
      absl::Status valid = ResourceSet::ValidateDemand(name, amount);
      if (!valid.ok()) {
        return absl::InvalidArgumentError("bundle " + std::to_string(i) + ": " +
                                          std::string(valid.message()));
      }
      if (IsBundleResource(name)) {
        return absl::InvalidArgumentError("bundle " + std::to_string(i) + ": '" + name +
                                          "' is a bundle's resource, not a node's");
      }
    }
  }
  if (!group.name().empty()) {
    group.set_namespace_(NamespaceOf(group));
    auto key = std::make_pair(group.namespace_(), group.name());
    if (names_.count(key)) {
      return absl::AlreadyExistsError("a placement group named '" + group.name() +
                                      "' exists already in namespace '" + key.first + "'");
    }
    names_[key] = group.placement_group_id();
  }
  group.set_state(rpc::PlacementGroupInfo::PENDING);
  group.set_version(1);
  group.set_created_ms(NowMs());
  std::string id = group.placement_group_id();
  LUMEN_LOG_INFO("gcs: {} asked for: {} bundle(s), {}", Label(group), group.bundles_size(),
                 StrategyName(group.strategy()));
  groups_[id].info = std::move(group);
  order_.push_back(id);
  ScheduleNext();
  return absl::OkStatus();
}

PlacementGroupManager::Group* PlacementGroupManager::Find(const std::string& group_id) {
  auto it = groups_.find(group_id);
  return it == groups_.end() ? nullptr : &it->second;
}

std::string PlacementGroupManager::NamespaceOf(const rpc::PlacementGroupInfo& info) const {
  return info.namespace_().empty() ? deps_.namespace_of(info.job_id()) : info.namespace_();
}

bool PlacementGroupManager::NeedsPlacing(const Group& group) const {
  auto state = group.info.state();
  if (state != rpc::PlacementGroupInfo::PENDING &&
      state != rpc::PlacementGroupInfo::RESCHEDULING) {
    return false;
  }
  for (const rpc::Bundle& bundle : group.info.bundles()) {
    if (bundle.node_id().empty()) return true;
  }
  return false;
}

void PlacementGroupManager::ScheduleNext() {
  if (round_ != nullptr || stopped_) return;
  int64_t now = NowMs();
  bool waiting = false;
  std::vector<NodeRoom> free;
  std::vector<NodeRoom> whole;  // every alive node as if idle: can it ever fit?
  nodes_->ForEach([&](const rpc::NodeInfo& node) {
    if (!node.alive() || node.raylet_address().empty()) return;
    free.push_back({node.node_id(), ResourceSet::FromMap({node.available().begin(),
                                                          node.available().end()})});
    whole.push_back({node.node_id(), ResourceSet::FromMap({node.total().begin(),
                                                           node.total().end()})});
  });
  for (auto it = order_.begin(); it != order_.end();) {
    Group* group = Find(*it);
    if (group == nullptr || !NeedsPlacing(*group)) {
      it = order_.erase(it);
      continue;
    }
    ++it;
    waiting = true;
    if (now < group->not_before_ms) continue;
    rpc::PlacementGroupInfo& info = group->info;
    std::vector<ResourceSet> bundles;
    std::vector<std::string> placed;
    for (const rpc::Bundle& bundle : info.bundles()) {
      bundles.push_back(BundleSet(bundle));
      placed.push_back(bundle.node_id());
    }
    std::vector<std::string> chosen = placed;
    std::string why;
    if (!PlaceBundles(info.strategy(), bundles, free, &chosen, &why)) {
      std::string never;
      std::vector<std::string> ideal = placed;
      bool feasible = PlaceBundles(info.strategy(), bundles, whole, &ideal, &never);
      std::string reason = feasible ? why + " (it waits for resources to free up or nodes "
                                            "to join)"
                                    : "infeasible: " + never + ", even with every node idle "
                                                               "(it waits for nodes to join)";
      if (reason != info.waiting_reason() || feasible == info.infeasible()) {
        info.set_waiting_reason(reason);
        info.set_infeasible(!feasible);
        if (!feasible && !group->warned_infeasible) {
          group->warned_infeasible = true;
          LUMEN_LOG_WARN("gcs: {} cannot be placed: {}", Label(info), reason);
        }
        Publish(*group);
      }
      continue;
    }
    // Prepare each newly placed bundle on its node.
    round_ = std::make_unique<Round>();
    round_->group_id = info.placement_group_id();
    for (size_t i = 0; i < chosen.size(); ++i) {
      if (placed[i].empty()) round_->by_node[chosen[i]].push_back(int(i));
    }
    for (const auto& [node_id, indices] : round_->by_node) {
      round_->raylets[node_id] = nodes_->Find(node_id)->raylet_address();
    }
    round_->replies_left = int(round_->by_node.size());
    for (const auto& [node_id, indices] : round_->by_node) {
      rpc::PrepareBundlesRequest request;
      request.set_placement_group_id(info.placement_group_id());
      for (int index : indices) {
        rpc::BundleSpec* spec = request.add_bundles();
        spec->set_index(index);
        *spec->mutable_resources() = info.bundles(index).resources();
      }
      std::string node = node_id;
      deps_.prepare(round_->raylets[node_id], request,
                    [this, node](absl::Status status, rpc::PrepareBundlesReply reply) {
                      deps_.post([this, node, status, reply = std::move(reply)] {
                        OnPrepared(node, status, reply);
                      });
                    });
    }
    return;
  }
  if (waiting) ArmRetry();
}

void PlacementGroupManager::ArmRetry() {
  if (retry_armed_ || stopped_) return;
  retry_armed_ = true;
  deps_.run_after(std::chrono::milliseconds(kRetryMs), [this] {
    retry_armed_ = false;
    ScheduleNext();
  });
}

void PlacementGroupManager::OnNodesChanged() { ScheduleNext(); }

void PlacementGroupManager::OnPrepared(const std::string& node, absl::Status status,
                                       const rpc::PrepareBundlesReply& reply) {
  if (round_ == nullptr) return;
  if (status.ok()) {
    nodes_->UpdateResources(node, reply.total(), reply.available(), reply.resources_seq());
  }
  if (!status.ok() || !reply.prepared()) {
    round_->failed = true;
    round_->lost |= !status.ok();
    round_->why = "node " + NodeId::FromBinary(node).Hex() + ": " +
                  (status.ok() ? reply.why() : status.ToString());
  }
  if (--round_->replies_left > 0) return;
  Group* group = Find(round_->group_id);
  if (round_->failed || group == nullptr ||
      group->info.state() == rpc::PlacementGroupInfo::REMOVED) {
    return FinishRound();
  }
  // Every node holds its bundles: commit them all.
  round_->replies_left = int(round_->by_node.size());
  for (const auto& [node_id, indices] : round_->by_node) {
    rpc::CommitBundlesRequest request;
    request.set_placement_group_id(round_->group_id);
    for (int index : indices) request.add_indices(index);
    std::string id = node_id;
    deps_.commit(round_->raylets[node_id], request,
                 [this, id](absl::Status status, rpc::CommitBundlesReply reply) {
                   deps_.post([this, id, status, reply = std::move(reply)] {
                     OnCommitted(id, status, reply);
                   });
                 });
  }
}

void PlacementGroupManager::OnCommitted(const std::string& node, absl::Status status,
                                        const rpc::CommitBundlesReply& reply) {
  if (round_ == nullptr) return;
  if (status.ok()) {
    nodes_->UpdateResources(node, reply.total(), reply.available(), reply.resources_seq());
  } else {
    round_->failed = true;
    round_->lost = true;
    round_->why = "node " + NodeId::FromBinary(node).Hex() + ": " + status.ToString();
  }
  if (--round_->replies_left == 0) FinishRound();
}

void PlacementGroupManager::FinishRound() {
  std::unique_ptr<Round> round = std::move(round_);
  Group* group = Find(round->group_id);
  bool removed = group == nullptr || group->info.state() == rpc::PlacementGroupInfo::REMOVED;
  // A node may have died since it was chosen: then the round fails.
  for (const auto& [node_id, indices] : round->by_node) {
    const rpc::NodeInfo* node = nodes_->Find(node_id);
    if (!round->failed && (node == nullptr || !node->alive())) {
      round->failed = true;
      round->why = "node " + NodeId::FromBinary(node_id).Hex() + " died";
    }
  }
  if (round->failed || removed) {
    if (!removed) {
      group->backoff_ms = std::min(kMaxBackoffMs, std::max(kFirstBackoffMs, 2 * group->backoff_ms));
      group->not_before_ms = NowMs() + group->backoff_ms;
      group->info.set_waiting_reason("reserving its bundles failed (" + round->why +
                                     "); trying again");
      if (round->lost) {  // a raylet did not answer (or its answer was lost)
        LUMEN_LOG_WARN("gcs: {}: {}", Label(group->info), group->info.waiting_reason());
      } else {            // no room after all: the view lagged
        LUMEN_LOG_INFO("gcs: {}: {}", Label(group->info), group->info.waiting_reason());
      }
      Publish(*group);
    }
    ReturnRound(*round);  // (its answers may schedule: after the backoff is set)
  } else {
    rpc::PlacementGroupInfo& info = group->info;
    for (const auto& [node_id, indices] : round->by_node) {
      for (int index : indices) info.mutable_bundles(index)->set_node_id(node_id);
    }
    group->backoff_ms = 0;
    if (!NeedsPlacing(*group)) {
      info.set_state(rpc::PlacementGroupInfo::CREATED);
      info.clear_waiting_reason();
      info.set_infeasible(false);
      LUMEN_LOG_INFO("gcs: {} created on {} node(s)", Label(info), round->by_node.size());
    }
    Publish(*group);
    RunWaiters(*group);
  }
  ScheduleNext();
}

void PlacementGroupManager::ReturnRound(const Round& round) {
  for (const auto& [node_id, indices] : round.by_node) {
    rpc::ReturnBundlesRequest request;
    request.set_placement_group_id(round.group_id);
    for (int index : indices) request.add_indices(index);
    ReturnBundles(node_id, round.raylets.at(node_id), request);
  }
}

void PlacementGroupManager::ReturnBundles(const std::string& node_id, const std::string& raylet,
                                          const rpc::ReturnBundlesRequest& request) {
  deps_.return_bundles(raylet, request, [this, node_id](rpc::ReturnBundlesReply reply) {
    deps_.post([this, node_id, reply = std::move(reply)] {
      if (stopped_) return;
      nodes_->UpdateResources(node_id, reply.total(), reply.available(),
                              reply.resources_seq());
      ScheduleNext();  // what came back may let a waiting group in
    });
  });
}

absl::Status PlacementGroupManager::Remove(const std::string& group_id,
                                           const std::string& cause) {
  Group* group = Find(group_id);
  if (group == nullptr) {
    return absl::NotFoundError("no placement group " + PlacementGroupId::FromBinary(group_id).Hex());
  }
  rpc::PlacementGroupInfo& info = group->info;
  if (info.state() == rpc::PlacementGroupInfo::REMOVED) return absl::OkStatus();
  info.set_state(rpc::PlacementGroupInfo::REMOVED);
  info.set_removal_cause(cause);
  info.clear_waiting_reason();
  if (!info.name().empty()) names_.erase({info.namespace_(), info.name()});
  LUMEN_LOG_INFO("gcs: {} removed ({})", Label(info), cause);
  // The actors first (no restart), then the bundles: the raylets stop what else runs in
  // them (tasks), and their resources go back.
  deps_.kill_actors(group_id, Label(info) + " was removed (" + cause + ")");
  std::map<std::string, rpc::ReturnBundlesRequest> by_node;
  for (int i = 0; i < info.bundles_size(); ++i) {
    const std::string& node_id = info.bundles(i).node_id();
    if (node_id.empty()) continue;
    by_node[node_id].set_placement_group_id(group_id);
    by_node[node_id].add_indices(i);
  }
  for (const auto& [node_id, request] : by_node) {
    const rpc::NodeInfo* node = nodes_->Find(node_id);
    if (node != nullptr && node->alive()) ReturnBundles(node_id, node->raylet_address(), request);
  }
  Publish(*group);
  RunWaiters(*group);
  removed_.push_back(group_id);
  while (removed_.size() > kKeptRemoved) {
    Group* old = Find(removed_.front());
    if (old != nullptr && old->polls.empty()) groups_.erase(removed_.front());
    removed_.pop_front();
  }
  ScheduleNext();  // what it held may let others be placed
  return absl::OkStatus();
}

void PlacementGroupManager::OnJobFinished(const std::string& job_id) {
  std::vector<std::string> ids;
  for (const auto& [id, group] : groups_) {
    if (group.info.job_id() == job_id && !group.info.detached()) ids.push_back(id);
  }
  for (const std::string& id : ids) Remove(id, "its job ended").IgnoreError();
}

void PlacementGroupManager::OnNodeDeath(const std::string& node_id) {
  for (auto& [id, group] : groups_) {
    rpc::PlacementGroupInfo& info = group.info;
    if (info.state() == rpc::PlacementGroupInfo::REMOVED) continue;
    int lost = 0;
    for (rpc::Bundle& bundle : *info.mutable_bundles()) {
      if (bundle.node_id() == node_id) {
        bundle.clear_node_id();
        ++lost;
      }
    }
    if (lost == 0) continue;
    if (info.state() == rpc::PlacementGroupInfo::CREATED) {
      info.set_state(rpc::PlacementGroupInfo::RESCHEDULING);
    }
    LUMEN_LOG_WARN("gcs: {} lost {} bundle(s) with node {}; placing them again", Label(info),
                   lost, NodeId::FromBinary(node_id).Hex());
    if (std::find(order_.begin(), order_.end(), id) == order_.end()) order_.push_back(id);
    Publish(group);
  }
  ScheduleNext();
}

void PlacementGroupManager::WhenPlaced(const std::string& group_id, int index,
                                       std::function<void(const std::string&)> ready) {
  Group* group = Find(group_id);
  if (group == nullptr) {
    return ready("placement group " + PlacementGroupId::FromBinary(group_id).Hex() +
                 " does not exist");
  }
  if (index >= group->info.bundles_size()) {
    return ready("bundle index " + std::to_string(index) + " is out of range for " +
                 Label(group->info));
  }
  group->waiters.push_back(Waiter{index, std::move(ready)});
  RunWaiters(*group);
}

std::string PlacementGroupManager::BundleNode(const std::string& group_id, int index) const {
  auto it = groups_.find(group_id);
  if (it == groups_.end()) return "";
  const rpc::PlacementGroupInfo& info = it->second.info;
  if (index >= 0) return index < info.bundles_size() ? info.bundles(index).node_id() : "";
  // Any bundle: in turn over the placed ones, so that a group's actors spread over them.
  std::vector<std::string> placed;
  for (const rpc::Bundle& bundle : info.bundles()) {
    if (!bundle.node_id().empty()) placed.push_back(bundle.node_id());
  }
  return placed.empty() ? "" : placed[any_turn_++ % placed.size()];
}

void PlacementGroupManager::RunWaiters(Group& group) {
  std::vector<Waiter> waiters;
  waiters.swap(group.waiters);
  bool removed = group.info.state() == rpc::PlacementGroupInfo::REMOVED;
  for (Waiter& waiter : waiters) {
    if (removed) {
      waiter.ready(Label(group.info) + " was removed (" + group.info.removal_cause() + ")");
    } else if (Placed(group.info, waiter.index)) {
      waiter.ready("");
    } else {
      group.waiters.push_back(std::move(waiter));
    }
  }
}

void PlacementGroupManager::Publish(Group& group) {
  group.info.set_version(group.info.version() + 1);
  std::vector<Poll> polls;
  polls.swap(group.polls);
  for (Poll& poll : polls) Answer(poll, group);
}

void PlacementGroupManager::Answer(Poll& poll, const Group& group) {
  poll.reply->set_found(true);
  *poll.reply->mutable_group() = group.info;
  poll.done(absl::OkStatus());
}

void PlacementGroupManager::Get(const rpc::GetPlacementGroupRequest& request,
                                rpc::GetPlacementGroupReply* reply, rpc::Done done) {
  std::string id = request.placement_group_id();
  if (id.empty() && !request.name().empty()) {
    std::string ns = request.namespace_().empty() ? deps_.namespace_of(request.job_id())
                                                  : request.namespace_();
    auto it = names_.find({ns, request.name()});
    if (it != names_.end()) id = it->second;
  }
  Group* group = Find(id);
  if (group == nullptr) {
    reply->set_found(false);
    return done(absl::OkStatus());
  }
  if (group->info.version() > request.known_version() || request.wait_ms() <= 0 || stopped_) {
    reply->set_found(true);
    *reply->mutable_group() = group->info;
    return done(absl::OkStatus());
  }
  uint64_t token = next_poll_token_++;
  group->polls.push_back(Poll{token, reply, std::move(done)});
  deps_.run_after(std::chrono::milliseconds(std::min(request.wait_ms(), kMaxWaitMs)),
                  [this, id, token] {
                    Group* g = Find(id);
                    if (g == nullptr) return;
                    for (auto it = g->polls.begin(); it != g->polls.end(); ++it) {
                      if (it->token != token) continue;
                      Poll poll = std::move(*it);
                      g->polls.erase(it);
                      return Answer(poll, *g);
                    }
                  });
}

void PlacementGroupManager::List(rpc::ListPlacementGroupsReply* reply) const {
  std::vector<const rpc::PlacementGroupInfo*> all;
  for (const auto& [id, group] : groups_) all.push_back(&group.info);
  std::sort(all.begin(), all.end(), [](const auto* a, const auto* b) {
    return a->created_ms() < b->created_ms();
  });
  for (const auto* info : all) *reply->add_groups() = *info;
}

void PlacementGroupManager::Stop() {
  stopped_ = true;
  for (auto& [id, group] : groups_) {
    std::vector<Poll> polls;
    polls.swap(group.polls);
    for (Poll& poll : polls) Answer(poll, group);
  }
}

}  // namespace lumen::gcs
