// lumen::CreatePlacementGroup and the PlacementGroup handle: calls to the GCS.
#include <cstdio>
#include <mutex>
#include <set>

#include "api/runtime.h"
#include "common/bundles.h"
#include "common/clock.h"
#include "common/ids.h"
#include "lumen/errors.h"
#include "lumen/placement_group.h"
#include "rpc/rpc.h"

namespace lumen {
namespace {

constexpr int64_t kCallTimeoutMs = 10000;
constexpr int64_t kPollMs = 5000;

using Info = rpc::PlacementGroupInfo;

PlacementStrategy FromProto(Info::Strategy strategy) {
  switch (strategy) {
    case Info::SPREAD: return PlacementStrategy::kSpread;
    case Info::STRICT_PACK: return PlacementStrategy::kStrictPack;
    case Info::STRICT_SPREAD: return PlacementStrategy::kStrictSpread;
    default: return PlacementStrategy::kPack;
  }
}

Info::Strategy ToProto(PlacementStrategy strategy) {
  switch (strategy) {
    case PlacementStrategy::kSpread: return Info::SPREAD;
    case PlacementStrategy::kStrictPack: return Info::STRICT_PACK;
    case PlacementStrategy::kStrictSpread: return Info::STRICT_SPREAD;
    default: return Info::PACK;
  }
}

PlacementGroup FromProto(const Info& info) {
  std::vector<std::map<std::string, double>> bundles;
  for (const rpc::Bundle& bundle : info.bundles()) {
    bundles.emplace_back(bundle.resources().begin(), bundle.resources().end());
  }
  return PlacementGroup(PlacementGroupId::FromBinary(info.placement_group_id()).Hex(),
                        info.name(), std::move(bundles), FromProto(info.strategy()));
}

std::string BinaryId(const std::string& hex, const char* call) {
  PlacementGroupId id = PlacementGroupId::FromHex(hex);
  if (id.IsNil()) {
    throw ConfigError(std::string("lumen: ") + call + ": '" + hex +
                      "' is not a placement group id (32 hex digits)");
  }
  return id.Binary();
}

/// GetPlacementGroup on the GCS; `wait_ms` > 0: a long poll past `known_version`.
rpc::GetPlacementGroupReply Fetch(const char* call, rpc::GetPlacementGroupRequest request) {
  auto runtime = api::Require(call);
  request.set_job_id(runtime->job_id);
  auto reply = rpc::CallBlocking<rpc::GetPlacementGroupRequest, rpc::GetPlacementGroupReply>(
      [&](auto* ctx, const auto& req, auto* rep) {
        return runtime->gcs->GetPlacementGroup(ctx, req, rep);
      },
      request, request.wait_ms() + kCallTimeoutMs);
  if (!reply.ok()) {
    throw Error(std::string("lumen: ") + call + ": the GCS did not answer: " +
                std::string(reply.status().message()));
  }
  return *reply;
}

Info FetchById(const char* call, const std::string& hex) {
  rpc::GetPlacementGroupRequest request;
  request.set_placement_group_id(BinaryId(hex, call));
  rpc::GetPlacementGroupReply reply = Fetch(call, request);
  if (!reply.found()) {
    throw Error(std::string("lumen: ") + call + ": the GCS knows no placement group " + hex);
  }
  return reply.group();
}

/// Says once per group and process why it cannot be placed.
void WarnInfeasible(const Info& info, const std::string& hex) {
  static std::mutex mutex;
  static std::set<std::string> warned;
  std::lock_guard<std::mutex> lock(mutex);
  if (!warned.insert(hex).second) return;
  std::string label = info.name().empty() ? hex : "'" + info.name() + "' (" + hex + ")";
  std::fprintf(stderr, "lumen: warning: placement group %s cannot be placed: %s\n",
               label.c_str(), info.waiting_reason().c_str());
}

}  // namespace

PlacementGroup CreatePlacementGroup(const PlacementGroupOptions& options) {
  auto runtime = api::Require("CreatePlacementGroup");
  if (options.bundles.empty()) {
    throw ConfigError("lumen: CreatePlacementGroup: a placement group needs at least one bundle");
  }
  Info info;
  info.set_placement_group_id(PlacementGroupId::FromRandom().Binary());
  info.set_name(options.name);
  info.set_job_id(runtime->job_id);
  info.set_detached(options.lifetime == ActorLifetime::kDetached);
  info.set_strategy(ToProto(options.strategy));
  for (size_t i = 0; i < options.bundles.size(); ++i) {
    rpc::Bundle* bundle = info.add_bundles();
    for (const auto& [name, amount] : options.bundles[i]) {
      absl::Status valid = ResourceSet::ValidateDemand(name, amount);
      if (!valid.ok()) {
        throw ConfigError("lumen: CreatePlacementGroup: bundle " + std::to_string(i) + ": " +
                          std::string(valid.message()));
      }
      (*bundle->mutable_resources())[name] = amount;
    }
  }
  rpc::CreatePlacementGroupRequest request;
  *request.mutable_group() = info;
  auto created =
      rpc::CallBlocking<rpc::CreatePlacementGroupRequest, rpc::CreatePlacementGroupReply>(
          [&](auto* ctx, const auto& req, auto* rep) {
            return runtime->gcs->CreatePlacementGroup(ctx, req, rep);
          },
          request, kCallTimeoutMs);
  if (!created.ok()) {
    std::string why(created.status().message());
    auto code = created.status().code();
    if (code == absl::StatusCode::kAlreadyExists || code == absl::StatusCode::kInvalidArgument) {
      throw ConfigError("lumen: CreatePlacementGroup: " + why);
    }
    throw Error("lumen: CreatePlacementGroup: the GCS did not answer: " + why);
  }
  return FromProto(info);
}

std::optional<PlacementGroup> GetPlacementGroup(const std::string& name) {
  rpc::GetPlacementGroupRequest request;
  request.set_name(name);
  if (name.empty()) return std::nullopt;
  rpc::GetPlacementGroupReply reply = Fetch("GetPlacementGroup", request);
  if (!reply.found() || reply.group().state() == Info::REMOVED) return std::nullopt;
  return FromProto(reply.group());
}

std::vector<PlacementGroup> ListPlacementGroups() {
  auto runtime = api::Require("ListPlacementGroups");
  auto reply = rpc::CallBlocking<rpc::ListPlacementGroupsRequest, rpc::ListPlacementGroupsReply>(
      [&](auto* ctx, const auto& req, auto* rep) {
        return runtime->gcs->ListPlacementGroups(ctx, req, rep);
      },
      rpc::ListPlacementGroupsRequest(), kCallTimeoutMs);
  if (!reply.ok()) {
    throw Error("lumen: ListPlacementGroups: the GCS did not answer: " +
                std::string(reply.status().message()));
  }
  std::vector<PlacementGroup> out;
  for (const Info& info : reply->groups()) out.push_back(FromProto(info));
  return out;
}

void RemovePlacementGroup(const std::string& id) {
  auto runtime = api::Require("RemovePlacementGroup");
  rpc::RemovePlacementGroupRequest request;
  request.set_placement_group_id(BinaryId(id, "RemovePlacementGroup"));
  auto removed =
      rpc::CallBlocking<rpc::RemovePlacementGroupRequest, rpc::RemovePlacementGroupReply>(
          [&](auto* ctx, const auto& req, auto* rep) {
            return runtime->gcs->RemovePlacementGroup(ctx, req, rep);
          },
          request, kCallTimeoutMs);
  if (removed.ok()) return;
  if (removed.status().code() == absl::StatusCode::kNotFound) {
    throw ConfigError("lumen: RemovePlacementGroup: " + std::string(removed.status().message()));
  }
  throw Error("lumen: RemovePlacementGroup: the GCS did not answer: " +
              std::string(removed.status().message()));
}

PlacementGroupState PlacementGroup::State() const {
  switch (FetchById("PlacementGroup::State", id_).state()) {
    case Info::CREATED: return PlacementGroupState::kCreated;
    case Info::REMOVED: return PlacementGroupState::kRemoved;
    case Info::RESCHEDULING: return PlacementGroupState::kRescheduling;
    default: return PlacementGroupState::kPending;
  }
}

bool PlacementGroup::Wait(std::chrono::milliseconds timeout) const {
  int64_t deadline = NowMs() + std::max<int64_t>(0, timeout.count());
  rpc::GetPlacementGroupRequest request;
  request.set_placement_group_id(BinaryId(id_, "PlacementGroup::Wait"));
  while (true) {
    rpc::GetPlacementGroupReply reply = Fetch("PlacementGroup::Wait", request);
    if (!reply.found()) {
      throw Error("lumen: PlacementGroup::Wait: the GCS knows no placement group " + id_);
    }
    const Info& info = reply.group();
    if (info.state() == Info::CREATED) return true;
    if (info.state() == Info::REMOVED) {
      throw Error("lumen: PlacementGroup::Wait: placement group " + id_ + " was removed (" +
                  info.removal_cause() + ")");
    }
    if (info.infeasible()) WarnInfeasible(info, id_);
    int64_t left = deadline - NowMs();
    if (left <= 0) return false;
    request.set_known_version(info.version());
    request.set_wait_ms(std::min(left, kPollMs));
  }
}

std::vector<std::string> PlacementGroup::BundleNodeIds() const {
  std::vector<std::string> out;
  Info info = FetchById("PlacementGroup::BundleNodeIds", id_);
  for (const rpc::Bundle& bundle : info.bundles()) {
    out.push_back(bundle.node_id().empty() ? "" : NodeId::FromBinary(bundle.node_id()).Hex());
  }
  return out;
}

namespace detail {

PlacementTarget MakePlacementTarget(const PlacementGroup& group, int bundle_index) {
  if (group.IsNil()) {
    throw ConfigError("lumen: SetPlacementGroup: the placement group is nil; make one with "
                      "CreatePlacementGroup or find one with GetPlacementGroup");
  }
  if (bundle_index < -1 || bundle_index >= int(group.Bundles().size())) {
    throw ConfigError("lumen: SetPlacementGroup: bundle index " + std::to_string(bundle_index) +
                      " is out of range: the group has " +
                      std::to_string(group.Bundles().size()) + " bundle(s) (-1: any)");
  }
  return PlacementTarget{group.ID(), bundle_index, group.Bundles()};
}

}  // namespace detail
}  // namespace lumen
