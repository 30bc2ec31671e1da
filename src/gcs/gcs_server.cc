#include "gcs/gcs_server.h"

#include <chrono>

#include "common/clock.h"
#include "common/ids.h"
#include "common/logging.h"
#include "common/resources.h"
#include "core_worker.grpc.pb.h"
#include "raylet.grpc.pb.h"

namespace lumen::gcs {
namespace {

class GcsGrpcService final : public rpc::GcsService::CallbackService {
 public:
  explicit GcsGrpcService(GcsServer* handler) : handler_(handler) {}
  using rpc::GcsService::CallbackService::CallbackService;
  LUMEN_RPC_FORWARD(handler_, RegisterNode)
  LUMEN_RPC_FORWARD(handler_, NodeHeartbeat)
  LUMEN_RPC_FORWARD(handler_, GetAllNodes)
  LUMEN_RPC_FORWARD(handler_, RegisterJob)
  LUMEN_RPC_FORWARD(handler_, FinishJob)
  LUMEN_RPC_FORWARD(handler_, KvPut)
  LUMEN_RPC_FORWARD(handler_, KvGet)
  LUMEN_RPC_FORWARD(handler_, KvDel)
  LUMEN_RPC_FORWARD(handler_, KvKeys)
  LUMEN_RPC_FORWARD(handler_, RegisterActor)
  LUMEN_RPC_FORWARD(handler_, CreateActor)
  LUMEN_RPC_FORWARD(handler_, GetActorInfo)
  LUMEN_RPC_FORWARD(handler_, GetNamedActor)
  LUMEN_RPC_FORWARD(handler_, KillActor)
  LUMEN_RPC_FORWARD(handler_, ReportActorExit)
  LUMEN_RPC_FORWARD(handler_, ReportWorkerDeath)
  LUMEN_RPC_FORWARD(handler_, PublishLogs)
  LUMEN_RPC_FORWARD(handler_, GetLogs)
  LUMEN_RPC_FORWARD(handler_, UploadExecutable)
  LUMEN_RPC_FORWARD(handler_, ReadExecutable)
  LUMEN_RPC_FORWARD(handler_, CreatePlacementGroup)
  LUMEN_RPC_FORWARD(handler_, GetPlacementGroup)
  LUMEN_RPC_FORWARD(handler_, ListPlacementGroups)
  LUMEN_RPC_FORWARD(handler_, RemovePlacementGroup)
  LUMEN_RPC_FORWARD(handler_, AddTaskEvents)
  LUMEN_RPC_FORWARD(handler_, QueryState)

 private:
  GcsServer* handler_;
};

}  // namespace

GcsServer::GcsServer(GcsOptions options)
    : options_(std::move(options)),
      service_(std::make_unique<GcsGrpcService>(this)),
      actors_(MakeActorDeps()),
      logs_([this](std::chrono::milliseconds delay, std::function<void()> fn) {
        loop_.RunAfter(delay, std::move(fn));
      }),
      nodes_([this](std::chrono::milliseconds delay,
                    std::function<void()> fn) { loop_.RunAfter(delay, std::move(fn)); },
             options_.health_check_period_ms * options_.health_check_failure_threshold),
      executables_(options_.storage_dir.empty() ? ""
                                                : options_.storage_dir + "/executables"),
      placement_groups_(MakePlacementGroupDeps(), &nodes_),
      task_events_(options_.max_task_events) {}

ActorManagerDeps GcsServer::MakeActorDeps() {
  ActorManagerDeps deps;
  deps.post = [this](std::function<void()> fn) { loop_.Post(std::move(fn)); };
  deps.run_after = [this](std::chrono::milliseconds delay, std::function<void()> fn) {
    loop_.RunAfter(delay, std::move(fn));
  };
  deps.lease_worker = [this](const rpc::ActorSpec& spec, auto callback) {
    LeaseActorWorker(spec, std::move(callback));
  };
  deps.push_creation = [this](const ActorLease& lease, const rpc::TaskSpec& creation,
                              auto callback) {
    auto context = calls_.Begin();
    if (context == nullptr) return callback(absl::UnavailableError("the GCS is stopping"), {});
    RecordCreation(creation, rpc::SUBMITTED_TO_WORKER, lease.node_id, lease.worker_id);
    auto stub = std::shared_ptr<rpc::CoreWorkerService::Stub>(
        rpc::CoreWorkerService::NewStub(rpc::MakeChannel(lease.address)));
    rpc::PushTasksRequest request;
    request.set_lease_id(lease.lease_id);
    for (int gpu : lease.gpu_ids) request.add_gpu_ids(gpu);
    *request.add_tasks() = creation;
    rpc::CallUnary<rpc::PushTasksRequest, rpc::PushTasksReply>(
        [stub](auto... args) { stub->async()->PushTasks(args...); }, std::move(request),
        [this, stub, callback, context, creation](absl::Status status,
                                                  rpc::PushTasksReply&& reply) {
          if (status.ok() && reply.results_size() == 1) {
            loop_.Post([this, creation, result = reply.results(0)] {
              RecordCreation(creation, rpc::FINISHED, "", "", &result);
            });
          }
          callback(status, std::move(reply));
          calls_.End(context);
        },
        -1, context);
  };
  deps.kill_worker = [this](const ActorLease& lease) {
    ReturnLease(std::shared_ptr<rpc::RayletService::Stub>(
                    rpc::RayletService::NewStub(rpc::MakeChannel(lease.raylet_endpoint))),
                lease.lease_id, /*worker_failed=*/true);
  };
  deps.namespace_of = [this](const std::string& job_id) { return NamespaceOf(job_id); };
  return deps;
}

std::string GcsServer::NamespaceOf(const std::string& job_id) const {
  const JobEntry* job = FindJob(job_id);
  if (job != nullptr && !job->info.namespace_().empty()) return job->info.namespace_();
  return "anonymous-" + JobId::FromBinary(job_id).Hex();
}

void GcsServer::LeaseActorWorker(
    const rpc::ActorSpec& spec,
    std::function<void(absl::Status, rpc::RequestWorkerLeaseReply, std::string)> callback) {
  const rpc::SchedulingStrategy& where = spec.scheduling();
  if (where.kind() == rpc::SchedulingStrategy::PLACEMENT_GROUP) {
    // Its bundle's resources exist only once the bundle is placed: wait for that.
    placement_groups_.WhenPlaced(
        where.placement_group_id(), where.bundle_index(),
        [this, spec, where, callback](const std::string& failure) {
          if (!failure.empty()) {
            rpc::RequestWorkerLeaseReply reply;
            reply.set_failure(failure);
            return callback(absl::OkStatus(), std::move(reply), "");
          }
          // Straight to the bundle's node (the view of its resources may lag).
          const rpc::NodeInfo* node = nodes_.Find(
              placement_groups_.BundleNode(where.placement_group_id(), where.bundle_index()));
          LeaseActorWorkerOn(node, spec, callback);
        });
    return;
  }
  LeaseActorWorkerOn(PickNode(spec), spec, std::move(callback));
}

void GcsServer::LeaseActorWorkerOn(
    const rpc::NodeInfo* node, const rpc::ActorSpec& spec,
    std::function<void(absl::Status, rpc::RequestWorkerLeaseReply, std::string)> callback) {
  if (node == nullptr || !node->alive()) {
    rpc::RequestWorkerLeaseReply reply;
    reply.set_infeasible(true);
    return callback(absl::OkStatus(), std::move(reply), "");
  }
  std::string endpoint = node->raylet_address();
  auto stub = std::shared_ptr<rpc::RayletService::Stub>(
      rpc::RayletService::NewStub(rpc::MakeChannel(endpoint)));
  rpc::RequestWorkerLeaseRequest request;
  request.set_job_id(spec.job_id());
  *request.mutable_resources() = spec.resources();
  if (const JobEntry* job = FindJob(spec.job_id())) {
    *request.mutable_launch() = job->info.launch();
  }
  request.set_detached_actor(spec.detached());
  // Chosen here: a request whose reply is lost is given back by it.
  std::string lease_id = LeaseId::FromRandom().Binary();
  request.set_lease_id(lease_id);
  auto context = calls_.Begin();
  if (context == nullptr) {
    return callback(absl::UnavailableError("the GCS is stopping"), {}, endpoint);
  }
  // No requester: the lease belongs to the GCS, not to a worker whose exit ends it.
  rpc::CallUnary<rpc::RequestWorkerLeaseRequest, rpc::RequestWorkerLeaseReply>(
      [stub](auto... args) { stub->async()->RequestWorkerLease(args...); },
      std::move(request),
      [this, stub, endpoint, lease_id, callback, context](
          absl::Status status, rpc::RequestWorkerLeaseReply&& reply) {
        if (!status.ok()) ReturnLease(stub, lease_id, /*worker_failed=*/false);
        callback(status, std::move(reply), endpoint);
        calls_.End(context);
      },
      -1, context);
}

void GcsServer::ReturnLease(std::shared_ptr<rpc::RayletService::Stub> raylet,
                            const std::string& lease_id, bool worker_failed) {
  auto context = calls_.Begin();
  if (context == nullptr) return;
  rpc::ReturnWorkerLeaseRequest request;
  request.set_lease_id(lease_id);
  request.set_worker_failed(worker_failed);
  rpc::CallUnary<rpc::ReturnWorkerLeaseRequest, rpc::ReturnWorkerLeaseReply>(
      [raylet](auto... args) { raylet->async()->ReturnWorkerLease(args...); },
      std::move(request),
      [this, raylet, context](absl::Status, rpc::ReturnWorkerLeaseReply&&) {
        calls_.End(context);
      },
      5000, context);
}

GcsServer::JobEntry* GcsServer::FindJob(const std::string& job_id) {
  JobId id = JobId::FromBinary(job_id);
  auto it = job_id.size() == JobId::Size() ? jobs_.find(id.ToInt()) : jobs_.end();
  return it == jobs_.end() ? nullptr : &it->second;
}

const GcsServer::JobEntry* GcsServer::FindJob(const std::string& job_id) const {
  return const_cast<GcsServer*>(this)->FindJob(job_id);
}

const rpc::NodeInfo* GcsServer::PickNode(const rpc::ActorSpec& spec) {
  const auto& demand = spec.resources();
  ResourceSet wanted = ResourceSet::FromMap({demand.begin(), demand.end()});
  auto fits = [&wanted](const rpc::NodeInfo& node) {
    return node.alive() &&
           ResourceSet::FromMap({node.total().begin(), node.total().end()}).Contains(wanted);
  };
  const rpc::SchedulingStrategy& strategy = spec.scheduling();
  if (strategy.kind() == rpc::SchedulingStrategy::NODE_AFFINITY) {
    const rpc::NodeInfo* node = nodes_.Find(strategy.node_id());
    if (node != nullptr && fits(*node)) return node;
    if (!strategy.soft()) return nullptr;  // waits for that node (infeasible until then)
  }
  std::vector<const rpc::NodeInfo*> fitting;
  nodes_.ForEach([&](const rpc::NodeInfo& node) {
    if (fits(node)) fitting.push_back(&node);
  });
  if (fitting.empty()) return nullptr;
  if (strategy.kind() == rpc::SchedulingStrategy::SPREAD) {
    return fitting[spread_next_++ % fitting.size()];
  }
  if (const JobEntry* job = FindJob(spec.job_id())) {
    const rpc::NodeInfo* node = nodes_.Find(job->info.driver_node_id());
    if (node != nullptr && fits(*node)) return node;
  }
  return fitting.front();
}

GcsServer::~GcsServer() { Stop(); }

absl::StatusOr<std::string> GcsServer::Start() {
  if (options_.health_check_period_ms <= 0 || options_.health_check_failure_threshold < 1) {
    return absl::InvalidArgumentError(
        "the health check period must be > 0 ms and the failure threshold >= 1");
  }
  nodes_.SetOnDeath([this](const rpc::NodeInfo& node) {
    // Its bundles first: the actors in them restart once their bundle is placed again.
    placement_groups_.OnNodeDeath(node.node_id());
    actors_.OnNodeDeath(node.node_id(), "its node " + NodeId::FromBinary(node.node_id()).Hex() +
                                            " at " + node.node_ip() + " died (" +
                                            node.death_cause() + ")");
  });
  if (!options_.http_host.empty()) {
    http_ = std::make_unique<http::Server>(
        loop_.io(), [this](const http::Request& request) { return ServeHttp(request); });
    auto port = http_->Listen(options_.http_host, options_.http_port);
    if (!port.ok()) {
      return absl::Status(port.status().code(),
                          "the state API's HTTP server: " + std::string(port.status().message()) +
                              " (--dashboard-host, --dashboard-port; port 0 picks a free one)");
    }
    http_port_ = *port;
  }
  loop_.Start();
  loop_.RunEvery(std::chrono::milliseconds(options_.health_check_period_ms),
                 [this] { nodes_.CheckHealth(); });
  return server_.Start(options_.listen_address, {service_.get()});
}

void GcsServer::Stop() {
  // Parked long polls would hold the server's shutdown until their deadline.
  loop_.Post([this] {
    if (http_) http_->Stop();
    actors_.Stop();
    placement_groups_.Stop();
    logs_.Stop();
    nodes_.Stop();
  });
  server_.Shutdown();
  // Calls to raylets and workers (a lease parked for an actor, say) end now: their
  // callbacks reach the actor manager and this loop, which must outlive them.
  if (!calls_.CancelAndWait(std::chrono::milliseconds(5000))) {
    LUMEN_LOG_WARN("gcs: calls to raylets still in flight after stopping");
  }
  loop_.Stop();
}

void GcsServer::HandleRegisterNode(const rpc::RegisterNodeRequest& request,
                                   rpc::RegisterNodeReply* reply, rpc::Done done) {
  loop_.Post([this, request, reply, done] {
    reply->set_heartbeat_period_ms(options_.health_check_period_ms);
    done(nodes_.Register(request.node()));
    placement_groups_.OnNodesChanged();
  });
}

void GcsServer::HandleNodeHeartbeat(const rpc::NodeHeartbeatRequest& request,
                                    rpc::NodeHeartbeatReply* reply, rpc::Done done) {
  loop_.Post([this, request, reply, done] {
    NodeManager::Liveness liveness = nodes_.Heartbeat(request);
    reply->set_known(liveness != NodeManager::Liveness::kUnknown);
    reply->set_dead(liveness == NodeManager::Liveness::kDead);
    if (reply->dead()) {
      reply->set_why("the GCS declared node " + NodeId::FromBinary(request.node_id()).Hex() +
                     " dead (" + nodes_.Find(request.node_id())->death_cause() + ")");
    }
    done(absl::OkStatus());
  });
}

void GcsServer::HandleGetAllNodes(const rpc::GetAllNodesRequest& request,
                                  rpc::GetAllNodesReply* reply, rpc::Done done) {
  loop_.Post([this, request, reply, done] { nodes_.Poll(request, reply, done); });
}

void GcsServer::HandleRegisterJob(const rpc::RegisterJobRequest& request,
                                  rpc::RegisterJobReply* reply, rpc::Done done) {
  loop_.Post([this, request, reply, done] {
    uint32_t job = next_job_++;
    jobs_[job].info = request;
    jobs_[job].start_ms = WallMs();
    reply->set_job_id(JobId::FromInt(job).Binary());
    done(absl::OkStatus());
  });
}

void GcsServer::HandleFinishJob(const rpc::FinishJobRequest& request,
                                rpc::FinishJobReply*, rpc::Done done) {
  loop_.Post([this, request, done] {
    JobEntry* job = FindJob(request.job_id());
    if (job == nullptr) return done(absl::NotFoundError("no such job"));
    if (!job->finished) job->end_ms = WallMs();
    job->finished = true;
    logs_.DropJob(request.job_id());
    if (!request.driver_address().empty()) nodes_.OwnerGone(request.driver_address());
    // The actors the driver made die with its job, wherever they run; detached ones stay.
    if (!request.driver_worker_id().empty()) {
      actors_.OnWorkerDeath(request.driver_worker_id(), request.driver_pid(),
                            "finished its job");
    }
    placement_groups_.OnJobFinished(request.job_id());
    done(absl::OkStatus());
  });
}

void GcsServer::HandleKvPut(const rpc::KvPutRequest& request, rpc::KvPutReply* reply,
                            rpc::Done done) {
  loop_.Post([this, request, reply, done] {
    auto& table = kv_[request.ns()];
    auto [it, added] = table.try_emplace(request.key(), request.value());
    if (!added && request.overwrite()) it->second = request.value();
    reply->set_added(added);
    done(absl::OkStatus());
  });
}

void GcsServer::HandleKvGet(const rpc::KvGetRequest& request, rpc::KvGetReply* reply,
                            rpc::Done done) {
  loop_.Post([this, request, reply, done] {
    auto ns = kv_.find(request.ns());
    if (ns != kv_.end()) {
      auto it = ns->second.find(request.key());
      if (it != ns->second.end()) {
        reply->set_found(true);
        reply->set_value(it->second);
      }
    }
    done(absl::OkStatus());
  });
}

void GcsServer::HandleKvDel(const rpc::KvDelRequest& request, rpc::KvDelReply* reply,
                            rpc::Done done) {
  loop_.Post([this, request, reply, done] {
    auto ns = kv_.find(request.ns());
    reply->set_deleted(ns != kv_.end() && ns->second.erase(request.key()) > 0);
    done(absl::OkStatus());
  });
}

void GcsServer::HandleKvKeys(const rpc::KvKeysRequest& request, rpc::KvKeysReply* reply,
                             rpc::Done done) {
  loop_.Post([this, request, reply, done] {
    auto ns = kv_.find(request.ns());
    if (ns != kv_.end()) {
      for (auto it = ns->second.lower_bound(request.prefix());
           it != ns->second.end() && it->first.rfind(request.prefix(), 0) == 0; ++it) {
        reply->add_keys(it->first);
      }
    }
    done(absl::OkStatus());
  });
}

void GcsServer::HandleRegisterActor(const rpc::RegisterActorRequest& request,
                                    rpc::RegisterActorReply*, rpc::Done done) {
  loop_.Post([this, request, done] { done(actors_.Register(request.spec())); });
}

void GcsServer::HandleCreateActor(const rpc::CreateActorRequest& request,
                                  rpc::CreateActorReply*, rpc::Done done) {
  loop_.Post([this, request, done] {
    absl::Status created = actors_.Create(request.actor_id(), request.creation_task());
    if (created.ok()) {
      rpc::TaskSpec creation = request.creation_task();
      creation.mutable_actor_creation()->set_actor_id(request.actor_id());
      RecordCreation(creation, rpc::PENDING_NODE_ASSIGNMENT);
    }
    done(created);
  });
}

void GcsServer::HandleGetActorInfo(const rpc::GetActorInfoRequest& request,
                                   rpc::GetActorInfoReply* reply, rpc::Done done) {
  loop_.Post([this, request, reply, done] { actors_.GetInfo(request, reply, done); });
}

void GcsServer::HandleGetNamedActor(const rpc::GetNamedActorRequest& request,
                                    rpc::GetNamedActorReply* reply, rpc::Done done) {
  loop_.Post([this, request, reply, done] {
    reply->set_found(actors_.GetNamed(request.name(), request.namespace_(), request.job_id(),
                                      reply->mutable_info()));
    done(absl::OkStatus());
  });
}

void GcsServer::HandleKillActor(const rpc::KillActorRequest& request,
                                rpc::KillActorReply* reply, rpc::Done done) {
  loop_.Post([this, request, reply, done] {
    int32_t killed = -1;
    absl::Status status =
        request.out_of_scope()
            ? actors_.OutOfScope(request.actor_id())
            : actors_.Kill(request.actor_id(), request.no_restart(), &killed);
    reply->set_killed_incarnation(killed);
    done(status);
  });
}

void GcsServer::HandleReportActorExit(const rpc::ReportActorExitRequest& request,
                                      rpc::ReportActorExitReply*, rpc::Done done) {
  loop_.Post([this, request, done] {
    actors_.OnActorExit(request.actor_id(), request.worker_id());
    done(absl::OkStatus());
  });
}

void GcsServer::HandleReportWorkerDeath(const rpc::ReportWorkerDeathRequest& request,
                                        rpc::ReportWorkerDeathReply*, rpc::Done done) {
  loop_.Post([this, request, done] {
    actors_.OnWorkerDeath(request.worker_id(), request.pid(), request.how());
    if (!request.address().empty()) nodes_.OwnerGone(request.address());
    // A driver that died without finishing its job ends it for its placement groups.
    std::string job = JobOfDriver(request.worker_id());
    if (!job.empty()) {
      JobEntry* entry = FindJob(job);
      entry->finished = true;
      entry->end_ms = WallMs();
      entry->driver_died = request.how();
      placement_groups_.OnJobFinished(job);
    }
    done(absl::OkStatus());
  });
}

void GcsServer::HandlePublishLogs(const rpc::PublishLogsRequest& request,
                                  rpc::PublishLogsReply*, rpc::Done done) {
  loop_.Post([this, request, done] {
    logs_.Publish(request);
    done(absl::OkStatus());
  });
}

void GcsServer::HandleGetLogs(const rpc::GetLogsRequest& request, rpc::GetLogsReply* reply,
                              rpc::Done done) {
  loop_.Post([this, request, reply, done] { logs_.Poll(request, reply, done); });
}

// The request lives until `done` runs: the chunk is not copied onto the loop.
void GcsServer::HandleUploadExecutable(const rpc::UploadExecutableRequest& request,
                                       rpc::UploadExecutableReply* reply, rpc::Done done) {
  loop_.Post([this, &request, reply, done] {
    auto stored = executables_.Upload(request);
    if (stored.ok()) reply->set_stored(*stored);
    done(stored.status());
  });
}

void GcsServer::HandleReadExecutable(const rpc::ReadExecutableRequest& request,
                                     rpc::ReadExecutableReply* reply, rpc::Done done) {
  loop_.Post([this, request, reply, done] { done(executables_.Read(request, reply)); });
}

}  // namespace lumen::gcs
