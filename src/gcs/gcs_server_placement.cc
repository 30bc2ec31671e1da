// The GCS's placement-group service: its handlers, and the raylet calls the
// PlacementGroupManager makes through it.
#include "common/ids.h"
#include "common/logging.h"
#include "gcs/gcs_server.h"
#include "raylet.grpc.pb.h"

namespace lumen::gcs {
namespace {
constexpr int64_t kBundleCallTimeoutMs = 10000;
constexpr int kReturnTries = 5;
}  // namespace

template <typename Request, typename Reply, typename StartCall>
void GcsServer::CallRaylet(const std::string& address, StartCall start, Request request,
                           std::function<void(absl::Status, Reply)> callback,
                           int64_t timeout_ms) {
  auto context = calls_.Begin();
  if (context == nullptr) return callback(absl::UnavailableError("the GCS is stopping"), {});
  auto stub = std::shared_ptr<rpc::RayletService::Stub>(
      rpc::RayletService::NewStub(rpc::MakeChannel(address)));
  rpc::CallUnary<Request, Reply>(
      [stub, start](auto... args) { start(stub->async(), args...); }, std::move(request),
      [this, stub, callback, context](absl::Status status, Reply&& reply) {
        callback(status, std::move(reply));
        calls_.End(context);
      },
      timeout_ms, context);
}

PlacementGroupDeps GcsServer::MakePlacementGroupDeps() {
  PlacementGroupDeps deps;
  deps.post = [this](std::function<void()> fn) { loop_.Post(std::move(fn)); };
  deps.run_after = [this](std::chrono::milliseconds delay, std::function<void()> fn) {
    loop_.RunAfter(delay, std::move(fn));
  };
  deps.prepare = [this](const std::string& raylet, const rpc::PrepareBundlesRequest& request,
                        std::function<void(absl::Status, rpc::PrepareBundlesReply)> callback) {
    CallRaylet<rpc::PrepareBundlesRequest, rpc::PrepareBundlesReply>(
        raylet,
        [](auto* async, auto... args) { async->PrepareBundles(args...); },
        request, std::move(callback), kBundleCallTimeoutMs);
  };
  deps.commit = [this](const std::string& raylet, const rpc::CommitBundlesRequest& request,
                       std::function<void(absl::Status, rpc::CommitBundlesReply)> callback) {
    CallRaylet<rpc::CommitBundlesRequest, rpc::CommitBundlesReply>(
        raylet,
        [](auto* async, auto... args) { async->CommitBundles(args...); },
        request, std::move(callback), kBundleCallTimeoutMs);
  };
  deps.return_bundles = [this](const std::string& raylet, const rpc::ReturnBundlesRequest& request,
                               std::function<void(rpc::ReturnBundlesReply)> done) {
    ReturnBundles(raylet, request, kReturnTries, std::move(done));
  };
  deps.kill_actors = [this](const std::string& group_id, const std::string& cause) {
    actors_.OnPlacementGroupRemoved(group_id, cause);
  };
  deps.namespace_of = [this](const std::string& job_id) { return NamespaceOf(job_id); };
  return deps;
}

void GcsServer::ReturnBundles(const std::string& address, rpc::ReturnBundlesRequest request,
                              int tries, std::function<void(rpc::ReturnBundlesReply)> done) {
  CallRaylet<rpc::ReturnBundlesRequest, rpc::ReturnBundlesReply>(
      address,
      [](auto* async, auto... args) { async->ReturnBundles(args...); },
      request,
      [this, address, request, tries, done](absl::Status status, rpc::ReturnBundlesReply reply) {
        if (status.ok()) return done(std::move(reply));
        if (tries <= 1 || status.code() == absl::StatusCode::kCancelled) return;
        // The raylet did not answer: again, unless its node is gone (and its bundles
        // with it).
        loop_.RunAfter(std::chrono::milliseconds(500), [this, address, request, tries, done] {
          bool alive = false;
          nodes_.ForEach([&](const rpc::NodeInfo& node) {
            alive |= node.alive() && node.raylet_address() == address;
          });
          if (alive) ReturnBundles(address, request, tries - 1, done);
        });
      },
      kBundleCallTimeoutMs);
}

std::string GcsServer::JobOfDriver(const std::string& worker_id) const {
  for (const auto& [id, job] : jobs_) {
    if (!job.finished && job.info.launch().driver_worker_id() == worker_id) {
      return JobId::FromInt(id).Binary();
    }
  }
  return "";
}

void GcsServer::HandleCreatePlacementGroup(const rpc::CreatePlacementGroupRequest& request,
                                           rpc::CreatePlacementGroupReply*, rpc::Done done) {
  loop_.Post([this, request, done] { done(placement_groups_.Create(request.group())); });
}

void GcsServer::HandleGetPlacementGroup(const rpc::GetPlacementGroupRequest& request,
                                        rpc::GetPlacementGroupReply* reply, rpc::Done done) {
  loop_.Post([this, request, reply, done] { placement_groups_.Get(request, reply, done); });
}

void GcsServer::HandleListPlacementGroups(const rpc::ListPlacementGroupsRequest&,
                                          rpc::ListPlacementGroupsReply* reply,
                                          rpc::Done done) {
  loop_.Post([this, reply, done] {
    placement_groups_.List(reply);
    done(absl::OkStatus());
  });
}

void GcsServer::HandleRemovePlacementGroup(const rpc::RemovePlacementGroupRequest& request,
                                           rpc::RemovePlacementGroupReply*, rpc::Done done) {
  loop_.Post([this, request, done] {
    done(placement_groups_.Remove(request.placement_group_id(), "removed by its user"));
  });
}

}  // namespace lumen::gcs
