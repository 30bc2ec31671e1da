// The raylet's side of placement groups: bundles prepared, committed and returned at the
// GCS's request (two-phase: see PrepareBundlesRequest in raylet.proto).
#include <algorithm>

#include "common/bundles.h"
#include "common/logging.h"
#include "raylet/raylet.h"

namespace lumen::raylet {
namespace {

}  // namespace

template <typename Reply>
void Raylet::FillResources(Reply* reply) {
  ToProtoMap(resources_.total(), reply->mutable_total());
  ToProtoMap(resources_.available(), reply->mutable_available());
  reply->set_resources_seq(++resources_seq_);
}

void Raylet::HandlePrepareBundles(const rpc::PrepareBundlesRequest& request,
                                  rpc::PrepareBundlesReply* reply, rpc::Done done) {
  loop_.Post([this, request, reply, done] {
    if (request.placement_group_id().size() != PlacementGroupId::Size()) {
      return done(absl::InvalidArgumentError("malformed placement group id"));
    }
    // All or none: what this call took is given back when one does not fit.
    std::vector<std::pair<std::string, int>> taken;
    for (const rpc::BundleSpec& bundle : request.bundles()) {
      auto key = std::make_pair(request.placement_group_id(), bundle.index());
      if (bundles_.count(key)) continue;  // sent again: prepared already
      BundleEntry entry;
      entry.resources = ResourceSet::FromMap({bundle.resources().begin(),
                                              bundle.resources().end()});
      if (!resources_.TryAllocate(entry.resources, &entry.gpu_ids)) {
        reply->set_why("bundle " + std::to_string(bundle.index()) + " " +
                       entry.resources.ToString() + " does not fit in what is free here, " +
                       resources_.available().ToString());
        for (const auto& undo : taken) {
          const BundleEntry& prepared = bundles_.at(undo);
          resources_.Release(prepared.resources, prepared.gpu_ids);
          bundles_.erase(undo);
        }
        FillResources(reply);
        return done(absl::OkStatus());
      }
      bundles_[key] = std::move(entry);
      taken.push_back(key);
    }
    reply->set_prepared(true);
    FillResources(reply);
    done(absl::OkStatus());
  });
}

void Raylet::HandleCommitBundles(const rpc::CommitBundlesRequest& request,
                                 rpc::CommitBundlesReply* reply, rpc::Done done) {
  loop_.Post([this, request, reply, done] {
    PlacementGroupId group = PlacementGroupId::FromBinary(request.placement_group_id());
    for (int index : request.indices()) {
      auto it = bundles_.find({request.placement_group_id(), index});
      if (it == bundles_.end()) {
        return done(absl::FailedPreconditionError(
            "bundle " + std::to_string(index) + " of placement group " + group.Hex() +
            " was not prepared here (or was returned since)"));
      }
      if (it->second.committed) continue;
      it->second.committed = true;
      resources_.AddTotal(BundleResources(it->second.resources, group, index));
    }
    FillResources(reply);
    done(absl::OkStatus());
    ScheduleLeases();  // leases parked for the bundle's resources
  });
}

void Raylet::HandleReturnBundles(const rpc::ReturnBundlesRequest& request,
                                 rpc::ReturnBundlesReply* reply, rpc::Done done) {
  loop_.Post([this, request, reply, done] {
    std::vector<int> indices(request.indices().begin(), request.indices().end());
    if (indices.empty()) {
      for (auto it = bundles_.lower_bound({request.placement_group_id(), INT32_MIN});
           it != bundles_.end() && it->first.first == request.placement_group_id(); ++it) {
        indices.push_back(it->first.second);
      }
    }
    for (int index : indices) ReturnBundle(request.placement_group_id(), index);
    FillResources(reply);
    done(absl::OkStatus());
    ScheduleLeases();
  });
}

void Raylet::ReturnBundle(const std::string& group_id, int index) {
  auto it = bundles_.find({group_id, index});
  if (it == bundles_.end()) return;  // returned already, or never prepared: idempotent
  PlacementGroupId group = PlacementGroupId::FromBinary(group_id);
  BundleEntry entry = std::move(it->second);
  bundles_.erase(it);
  if (entry.committed) {
    // What runs in it stops: the workers leased with its resources (or with the group's,
    // once no bundle of the group is left here) are killed, and their leases freed first,
    // while the bundle's resources still exist.
    std::string marker = BundleResourceName("bundle", group, index);
    std::string any = BundleResourceName("bundle", group, -1);
    bool group_left = false;
    for (const auto& [key, other] : bundles_) group_left |= key.first == group_id;
    for (Worker* worker : pool_.All()) {
      if (worker->state != Worker::State::kLeased) continue;
      if (worker->held.Get(marker) <= 0 && (group_left || worker->held.Get(any) <= 0)) {
        continue;
      }
      LUMEN_LOG_INFO("raylet: bundle {} of placement group {} returned: stopping worker {}",
                     index, group.Hex(), worker->pid);
      ReleaseLease(worker);
      worker->state = Worker::State::kExiting;
      pool_.Kill(worker->id, /*force=*/true);
    }
    // Requests parked for its resources are answered: they would wait for a bundle that
    // is gone (an owner asks again and learns that the group was removed).
    for (PendingLease& parked : TakePending([&](const PendingLease& pending) {
           return pending.demand.Get(marker) > 0 || (!group_left && pending.demand.Get(any) > 0);
         })) {
      parked.reply->set_canceled(true);
      parked.done(absl::OkStatus());
    }
    resources_.RemoveTotal(BundleResources(entry.resources, group, index));
  }
  resources_.Release(entry.resources, entry.gpu_ids);
}

std::vector<int> Raylet::BundleDevices(const ResourceSet& demand) const {
  std::vector<int> devices;
  if (bundles_.empty()) return devices;  // every grant asks: the common case is cheap
  std::map<std::string, double> wanted = demand.ToMap();
  for (const auto& [key, entry] : bundles_) {
    if (!entry.committed || entry.gpu_ids.empty()) continue;
    PlacementGroupId group = PlacementGroupId::FromBinary(key.first);
    bool mine = wanted.count(BundleResourceName("GPU", group, key.second)) > 0;
    if (!mine && wanted.count(BundleResourceName("GPU", group, -1))) {
      // Any bundle of the group (unless the demand names one): the devices of all of
      // them here.
      std::string any = BundleResourceName("bundle", group, -1);
      mine = true;
      for (const auto& [name, amount] : wanted) {
        if (name.rfind("bundle_group_", 0) == 0 && name != any) mine = false;
      }
    }
    if (mine) devices.insert(devices.end(), entry.gpu_ids.begin(), entry.gpu_ids.end());
  }
  std::sort(devices.begin(), devices.end());
  devices.erase(std::unique(devices.begin(), devices.end()), devices.end());
  return devices;
}

}  // namespace lumen::raylet
