#include "raylet/raylet.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <future>
#include <thread>

#include "common/bundles.h"
#include "common/clock.h"
#include "common/digest.h"
#include "common/logging.h"
#include "common/process.h"
#include "common/status.h"

namespace lumen::raylet {
namespace {

class RayletGrpcService final : public rpc::RayletService::CallbackService {
 public:
  explicit RayletGrpcService(Raylet* handler) : handler_(handler) {}
  LUMEN_RPC_FORWARD(handler_, RegisterDriver)
  LUMEN_RPC_FORWARD(handler_, RegisterWorker)
  LUMEN_RPC_FORWARD(handler_, RequestWorkerLease)
  LUMEN_RPC_FORWARD(handler_, ReturnWorkerLease)
  LUMEN_RPC_FORWARD(handler_, CancelWorkerLeases)
  LUMEN_RPC_FORWARD(handler_, NotifyBlocked)
  LUMEN_RPC_FORWARD(handler_, GetNodeInfo)
  LUMEN_RPC_FORWARD(handler_->store(), CreateObject)
  LUMEN_RPC_FORWARD(handler_->store(), SealObject)
  LUMEN_RPC_FORWARD(handler_->store(), GetObjects)
  LUMEN_RPC_FORWARD(handler_->store(), ReleaseObjects)
  LUMEN_RPC_FORWARD(handler_, FreeObjects)
  LUMEN_RPC_FORWARD(handler_, GetStoreStats)
  LUMEN_RPC_FORWARD(handler_->objects(), PullObjects)
  LUMEN_RPC_FORWARD(handler_, PrepareBundles)
  LUMEN_RPC_FORWARD(handler_, CommitBundles)
  LUMEN_RPC_FORWARD(handler_, ReturnBundles)

 private:
  Raylet* handler_;
};

}  // namespace

void ToProtoMap(const ResourceSet& set, google::protobuf::Map<std::string, double>* out) {
  for (const auto& [k, v] : set.ToMap()) (*out)[k] = v;
}

Raylet::Raylet(RayletOptions options)
    : options_(std::move(options)),
      log_monitor_([this](const std::string& job, pid_t pid, const std::string& text,
                          bool from_stderr) { OnWorkerOutput(job, pid, text, from_stderr); }),
      service_(std::make_unique<RayletGrpcService>(this)),
      resources_(options_.total),
      pool_(WorkerEnvironment{"unix:" + options_.socket_path, options_.node_ip,
                              options_.gcs_endpoint, node_id_.Hex(), options_.session_dir,
                              options_.logs_dir, options_.log_level},
            &log_monitor_) {}

Raylet::~Raylet() { Stop(); }

rpc::RegisterNodeRequest Raylet::NodeRegistration() const {
  rpc::RegisterNodeRequest request;
  rpc::NodeInfo* node = request.mutable_node();
  node->set_node_id(node_id_.Binary());
  node->set_raylet_endpoint("unix:" + options_.socket_path);
  node->set_raylet_address(address_);
  node->set_object_address(object_address_);
  char host[256] = {0};
  gethostname(host, sizeof(host) - 1);
  node->set_hostname(host);
  node->set_node_ip(options_.node_ip);
  node->set_is_head(options_.is_head);
  node->set_session_dir(options_.session_dir);
  ToProtoMap(resources_.total(), node->mutable_total());
  ToProtoMap(resources_.available(), node->mutable_available());
  return request;
}

absl::Status Raylet::RegisterWithGcs(bool blocking) {
  if (!blocking) {
    rpc::CallUnary<rpc::RegisterNodeRequest, rpc::RegisterNodeReply>(
        [this](auto... args) { gcs_->async()->RegisterNode(args...); }, NodeRegistration(),
        [this](absl::Status status, rpc::RegisterNodeReply&& reply) {
          if (absl::IsFailedPrecondition(status)) {
            return OnDeclaredDead(std::string(status.message()));
          }
          if (status.ok() && reply.heartbeat_period_ms() > 0) {
            heartbeat_period_ms_ = reply.heartbeat_period_ms();
          }
        },
        2000);
    return absl::OkStatus();
  }
  auto registered = rpc::CallBlocking<rpc::RegisterNodeRequest, rpc::RegisterNodeReply>(
      [&](auto* ctx, const auto& req, auto* reply) {
        return gcs_->RegisterNode(ctx, req, reply);
      },
      NodeRegistration(), 10000);
  if (!registered.ok()) {
    return absl::UnavailableError("raylet cannot register with the GCS at " +
                                  options_.gcs_endpoint + ": " +
                                  std::string(registered.status().message()));
  }
  if (registered->heartbeat_period_ms() > 0) {
    heartbeat_period_ms_ = registered->heartbeat_period_ms();
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> Raylet::Start() {
  auto store = StoreServer::Create(options_.store);
  if (!store.ok()) return store.status();
  store_ = std::move(*store);
  objects_ = std::make_unique<object_manager::ObjectManager>(node_id_, store_.get());
  pull_stats_ = objects_->pull_stats();
  gcs_ = rpc::GcsService::NewStub(rpc::MakeChannel(options_.gcs_endpoint));
  executables_ = std::make_unique<ExecutableCache>(
      options_.session_dir + "/executables",
      [this](const rpc::ReadExecutableRequest& request,
             std::function<void(absl::Status, rpc::ReadExecutableReply&&)> done) {
        auto context = rpc::CallUnary<rpc::ReadExecutableRequest, rpc::ReadExecutableReply>(
            [this](auto... args) { gcs_->async()->ReadExecutable(args...); }, request,
            std::move(done), 60000);
        return std::function<void()>([context] { context->TryCancel(); });
      },
      [this](std::function<void()> fn) { loop_.Post(std::move(fn)); });
  // Serving before registering: the GCS hands the address to others at once. Handlers
  // post to the loop, which runs them once it starts.
  auto endpoints = server_.Start(
      std::vector<std::string>{"unix:" + options_.socket_path, options_.node_ip + ":0"},
      {service_.get()});
  if (!endpoints.ok()) return endpoints.status();
  address_ = (*endpoints)[1];
  auto object_address = objects_->Listen(options_.node_ip);
  if (!object_address.ok()) {
    server_.Shutdown();
    unlink(options_.socket_path.c_str());
    return object_address.status();
  }
  object_address_ = *object_address;
  if (absl::Status registered = RegisterWithGcs(/*blocking=*/true); !registered.ok()) {
    server_.Shutdown();
    unlink(options_.socket_path.c_str());
    return registered;
  }
  loop_.Start();
  loop_started_ = true;
  loop_.RunEvery(std::chrono::milliseconds(20), [this] { OnTick(); });
  loop_.RunEvery(std::chrono::milliseconds(20), [this] { FlushLogs(/*blocking=*/false); });
  loop_.Post([this] { RefreshClusterView(/*wait=*/true); });
  return (*endpoints)[0];
}

void Raylet::Stop() {
  if (stopped_) return;
  stopped_ = true;
  if (!loop_started_) {  // Start failed before anything ran
    log_monitor_.Stop();
    return;
  }
  // 1. On the loop: refuse new work, answer every parked lease request, stop every
  //    worker (before the server goes, so a starting worker never finds it missing).
  std::promise<void> drained;
  loop_.Post([this, &drained] {
    stopping_ = true;
    for (auto& pending : pending_) pending.done(absl::UnavailableError("raylet stopping"));
    pending_.clear();
    for (auto& pending : awaiting_view_) pending.done(absl::UnavailableError("raylet stopping"));
    awaiting_view_.clear();
    pool_.StopAll();
    drained.set_value();
  });
  drained.get_future().wait();
  // 2. Transfers (their askers hear why), then the server, while the loop still runs
  //    the handlers of calls in flight.
  objects_->Stop();
  executables_->Stop();
  {
    MutexLock lock(&view_mutex_);
    view_stopped_ = true;
    for (const auto& call : view_calls_) call->TryCancel();
    while (!view_calls_.empty()) view_idle_.Wait(&view_mutex_);
  }
  server_.Shutdown();
  // 3. The loop, then the log monitor (which drains what the workers printed last).
  loop_.Stop();
  log_monitor_.Stop();
  FlushLogs(/*blocking=*/true);  // what the workers printed last reaches their drivers
  unlink(options_.socket_path.c_str());
  objects_.reset();
  store_.reset();  // after the server: no handler can still be posting to it
}

void Raylet::MaybeReport() {
  // What is free and what waits here, as text: a report goes when it changes.
  std::string report = resources_.available().ToString() + resources_.total().ToString();
  for (const PendingLease& pending : pending_) report += "|" + pending.demand.ToString();
  for (const auto& [shape, seen] : infeasible_seen_) report += "|!" + shape;
  int64_t now = NowMs();
  std::vector<std::string> processes = ProcessAddresses();
  bool processes_changed = processes != processes_reported_;
  bool changed = report != last_report_ || processes_changed;
  if (changed && now - last_report_ms_ >= 100) {
    last_report_ = std::move(report);
    last_report_ms_ = now;
    if (processes_changed) processes_reported_ = processes;
    SendHeartbeat(/*with_resources=*/true, processes_changed ? &processes : nullptr);
  } else if (now - last_report_ms_ >= heartbeat_period_ms_.load()) {
    last_report_ms_ = now;
    SendHeartbeat(/*with_resources=*/false);
  }
}

std::vector<std::string> Raylet::ProcessAddresses() {
  std::vector<std::string> addresses;
  for (Worker* worker : pool_.All()) {
    if (!worker->address.empty()) addresses.push_back(worker->address);
  }
  for (const auto& [job, launch] : pool_.jobs()) {
    if (launch.driver_pid > 0 && !launch.driver_address.empty() && !drivers_gone_.count(job)) {
      addresses.push_back(launch.driver_address);
    }
  }
  std::sort(addresses.begin(), addresses.end());
  return addresses;
}

void Raylet::SendHeartbeat(bool with_resources, const std::vector<std::string>* processes) {
  rpc::NodeHeartbeatRequest request;
  request.set_node_id(node_id_.Binary());
  request.set_has_resources(with_resources);
  if (processes != nullptr) {
    request.set_has_processes(true);
    request.mutable_processes()->Assign(processes->begin(), processes->end());
  }
  ToProtoMap(resources_.available(), request.mutable_available());
  ToProtoMap(resources_.total(), request.mutable_total());
  if (with_resources) request.set_resources_seq(++resources_seq_);
  // What waits here, by shape: `lumen status` shows it.
  std::map<std::string, rpc::ResourceDemand> by_shape;
  for (const PendingLease& pending : pending_) {
    rpc::ResourceDemand& demand = by_shape[pending.demand.ToString()];
    if (demand.count() == 0) ToProtoMap(pending.demand, demand.mutable_shape());
    demand.set_count(demand.count() + 1);
  }
  for (const auto& [shape, demand] : by_shape) *request.add_pending() = demand;
  int64_t now = NowMs();
  for (auto it = infeasible_seen_.begin(); it != infeasible_seen_.end();) {
    if (now - it->second.second > 3000) {  // nobody asked again: nobody waits for it
      it = infeasible_seen_.erase(it);
      continue;
    }
    rpc::ResourceDemand* demand = request.add_pending();
    ToProtoMap(it->second.first, demand->mutable_shape());
    demand->set_count(1);
    demand->set_infeasible(true);
    ++it;
  }
  rpc::CallUnary<rpc::NodeHeartbeatRequest, rpc::NodeHeartbeatReply>(
      [this](auto... args) { gcs_->async()->NodeHeartbeat(args...); }, std::move(request),
      [this, sent_processes = processes != nullptr](absl::Status status,
                                                    rpc::NodeHeartbeatReply&& reply) {
        if (!status.ok()) {
          LUMEN_LOG_DEBUG("raylet: heartbeat failed: {}", status.ToString());
          // The GCS may not have the node's processes: the next report sends them again.
          if (sent_processes) loop_.Post([this] { processes_reported_.clear(); });
        } else if (reply.dead()) {
          OnDeclaredDead(reply.why());
        } else if (!reply.known()) {
          // The GCS marked this node dead (missed heartbeats) or restarted: rejoin.
          LUMEN_LOG_WARN("raylet: the GCS does not know this node; registering again");
          loop_.Post([this] {
            processes_reported_.clear();
            RegisterWithGcs(/*blocking=*/false).IgnoreError();
          });
        }
      },
      2000);
}

void Raylet::OnDeclaredDead(const std::string& why) {
  if (declared_dead_.exchange(true)) return;
  LUMEN_LOG_ERROR("raylet: {}; this node stops: start it again (it joins as a new node)", why);
  if (options_.on_declared_dead) options_.on_declared_dead(why);
}

void Raylet::OnWorkerOutput(const std::string& job, pid_t pid, const std::string& text,
                            bool from_stderr) {
  std::lock_guard<std::mutex> lock(logs_mutex_);
  rpc::LogLine* line = log_batch_.add_lines();
  line->set_job_id(job);
  line->set_node_id(node_id_.Binary());
  line->set_node_ip(options_.node_ip);
  line->set_pid(pid);
  line->set_from_stderr(from_stderr);
  line->set_text(text);
}

void Raylet::FlushLogs(bool blocking) {
  if (blocking) {
    for (int i = 0; i < 100 && publishing_->load(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  } else if (publishing_->load()) {
    return;  // the next tick sends what comes meanwhile
  }
  rpc::PublishLogsRequest batch;
  {
    std::lock_guard<std::mutex> lock(logs_mutex_);
    if (log_batch_.lines_size() == 0) return;
    batch.Swap(&log_batch_);
  }
  if (blocking) {
    auto sent = rpc::CallBlocking<rpc::PublishLogsRequest, rpc::PublishLogsReply>(
        [this](auto* ctx, const auto& req, auto* rep) { return gcs_->PublishLogs(ctx, req, rep); },
        batch, 1000);
    if (!sent.ok()) {
      LUMEN_LOG_DEBUG("raylet: last worker output not published: {}", sent.status().ToString());
    }
    return;
  }
  publishing_->store(true);
  rpc::CallUnary<rpc::PublishLogsRequest, rpc::PublishLogsReply>(
      [this](auto... args) { gcs_->async()->PublishLogs(args...); }, std::move(batch),
      [publishing = publishing_](absl::Status status, rpc::PublishLogsReply&&) {
        if (!status.ok()) {
          LUMEN_LOG_DEBUG("raylet: worker output not published: {}", status.ToString());
        }
        publishing->store(false);
      },
      5000);
}

void Raylet::HandleRegisterDriver(const rpc::RegisterDriverRequest& request,
                                  rpc::RegisterDriverReply* reply, rpc::Done done) {
  loop_.Post([this, request, reply, done] {
    if (request.job_id().size() != JobId::Size() ||
        !IsHexDigest(request.launch().executable_digest())) {
      return done(absl::InvalidArgumentError(
          "RegisterDriver needs a job id and the executable's digest"));
    }
    JobLaunch launch = JobLaunch::FromProto(request.launch(), request.driver_pid());
    launch.driver_worker_id = request.worker_id();
    launch.driver_address = request.address();
    AddJob(request.job_id(), std::move(launch), options_.num_prestart_workers);
    reply->set_node_id(node_id_.Binary());
    *reply->mutable_store() = store_->Info();
    done(absl::OkStatus());
  });
}

void Raylet::HandleRegisterWorker(const rpc::RegisterWorkerRequest& request,
                                  rpc::RegisterWorkerReply* reply, rpc::Done done) {
  loop_.Post([this, request, reply, done] {
    Worker* worker = pool_.OnRegistered(WorkerId::FromBinary(request.worker_id()),
                                        request.pid(), request.endpoint(), request.address(),
                                        request.frame_address());
    if (worker == nullptr) {
      return done(absl::NotFoundError("unknown worker: not started by this raylet"));
    }
    worker->idle_since_ms = NowMs();
    startup_failures_[worker->job] = 0;
    reply->set_node_id(node_id_.Binary());
    *reply->mutable_store() = store_->Info();
    done(absl::OkStatus());
    ScheduleLeases();
  });
}

void Raylet::HandleRequestWorkerLease(const rpc::RequestWorkerLeaseRequest& request,
                                      rpc::RequestWorkerLeaseReply* reply, rpc::Done done) {
  loop_.Post([this, request, reply, done] {
    if (stopping_) return done(absl::UnavailableError("raylet stopping"));
    std::map<std::string, double> demand_map(request.resources().begin(),
                                             request.resources().end());
    for (const auto& [name, amount] : demand_map) {
      absl::Status valid = ResourceSet::ValidateDemand(name, amount);
      if (!valid.ok()) return done(valid);
    }
    ResourceSet demand = ResourceSet::FromMap(demand_map);
    JobLaunch* job = pool_.FindJob(request.job_id());
    if (job == nullptr) {
      if (!IsHexDigest(request.launch().executable_digest())) {
        return done(absl::FailedPreconditionError("job is not registered with this raylet"));
      }
      // A job first seen here (spillback, or an actor the GCS placed here): its workers
      // run the driver's executable; its driver is not on this node.
      AddJob(request.job_id(), JobLaunch::FromProto(request.launch(), 0), 0);
    } else if (job->cached.empty()) {
      FetchExecutable(request.job_id(), 0);  // again, if the last fetch failed
    }
    LeaseId lease_id = LeaseId::FromBinary(request.lease_id());
    if (!request.lease_id().empty() && lease_id.IsNil()) {
      return done(absl::InvalidArgumentError("malformed lease_id"));
    }
    if (!lease_id.IsNil()) {
      if (returned_ids_.contains(lease_id)) {  // its requester gave up on it
        reply->set_canceled(true);
        return done(absl::OkStatus());
      }
      if (Worker* worker = pool_.FindByLease(lease_id)) {  // sent again: the same grant
        FillGrant(*worker, reply);
        return done(absl::OkStatus());
      }
      // Sent again while the first is parked: this one takes its place.
      for (PendingLease& earlier : TakePending([&](const PendingLease& parked) {
             return parked.lease_id == lease_id;
           })) {
        earlier.reply->set_canceled(true);
        earlier.done(absl::OkStatus());
      }
    }
    PendingLease pending{request.job_id(), WorkerId::FromBinary(request.requester_worker_id()),
                         request.requester_address(), demand, reply, done,
                         request.grant_or_reject()};
    pending.lease_id = lease_id;
    pending.strategy = request.scheduling();
    pending.detached_actor = request.detached_actor();
    pending.pinned = pending.strategy.kind() == rpc::SchedulingStrategy::NODE_AFFINITY &&
                     !pending.strategy.soft() && pending.strategy.node_id() == node_id_.Binary();
    Admit(std::move(pending), /*view_fresh=*/false);
  });
}

void Raylet::Admit(PendingLease pending, bool view_fresh) {
  const ResourceSet& demand = pending.demand;
  rpc::RequestWorkerLeaseReply* reply = pending.reply;
  if (!pending.grant_or_reject) {
    std::string failure;
    auto* node = Place(pending.strategy, demand, &failure);
    if (!failure.empty() && !view_fresh) {
      awaiting_view_.push_back(std::move(pending));
      return RefreshClusterView(/*wait=*/false);
    }
    if (!failure.empty()) {
      reply->set_failure(failure);
      return pending.done(absl::OkStatus());
    }
    if (node != nullptr) return SpillBack(pending, *node);
  }
  if (resources_.IsInfeasible(demand)) {
    if (!pending.grant_or_reject && !pending.pinned) {
      // Never here, but maybe elsewhere: where there is room now, else where it fits.
      if (auto* node = PickSpillback(demand)) return SpillBack(pending, *node);
      for (const auto& entry : cluster_view_) {
        if (entry.second.total.Contains(demand)) return SpillBack(pending, entry);
      }
      if (!view_fresh) {
        // A node that fits may have joined, or a placement-group bundle been committed,
        // since the view was last heard of: ask again before saying it never fits.
        awaiting_view_.push_back(std::move(pending));
        return RefreshClusterView(/*wait=*/false);
      }
    }
    infeasible_seen_[demand.ToString()] = {demand, NowMs()};
    reply->set_infeasible(true);
    ToProtoMap(resources_.total(), reply->mutable_node_total());
    return pending.done(absl::OkStatus());
  }
  if (pending.grant_or_reject && !resources_.available().Contains(demand)) {
    reply->set_rejected(true);
    return pending.done(absl::OkStatus());
  }
  pending_.push_back(std::move(pending));
  ScheduleLeases();
}

void Raylet::ScheduleLeases() {
  if (stopping_) return;
  // A worker that died since the last tick must not be granted.
  ReapWorkers();
  // By job and devices: a worker sees the devices of its leases from its start
  // (CUDA_VISIBLE_DEVICES is set when it is spawned), so a lease takes an idle worker
  // started with exactly the devices it is given.
  std::map<std::pair<std::string, std::optional<std::string>>, int> workers_wanted;
  ResourceSet would_remain = resources_.available();
  for (auto it = pending_.begin(); it != pending_.end();) {
    std::vector<int> gpu_ids;
    std::optional<std::optional<std::string>> devices;  // set when it fits now
    if (resources_.TryAllocate(it->demand, &gpu_ids)) {
      if (gpu_ids.empty()) gpu_ids = BundleDevices(it->demand);
      devices = VisibleDevices(gpu_ids);
      if (Worker* idle = pool_.FindIdle(it->job, *devices)) {
        Grant(*it, idle, std::move(gpu_ids));
        it = pending_.erase(it);
        continue;
      }
      resources_.Release(it->demand, gpu_ids);
    }
    if (!would_remain.Contains(it->demand) && !it->grant_or_reject && !it->pinned) {
      // Busy here: another node with room takes it (hybrid policy).
      if (auto* node = PickSpillback(it->demand)) {
        SpillBack(*it, *node);
        it = pending_.erase(it);
        continue;
      }
    }
    if (devices && would_remain.Contains(it->demand)) {
      would_remain.Subtract(it->demand);
      ++workers_wanted[{it->job, *devices}];
    }
    ++it;
  }
  for (const auto& [key, wanted] : workers_wanted) {
    const auto& [job, devices] = key;
    const JobLaunch* launch = pool_.FindJob(job);
    if (launch != nullptr && launch->cached.empty()) continue;  // workers once it is here
    for (int n = pool_.CountStarting(job, devices); n < wanted; ++n) {
      absl::Status started = pool_.StartWorker(job, devices);
      if (!started.ok()) {
        FailPendingForJob(job, started.ToString());
        break;
      }
    }
  }
}

void Raylet::Grant(PendingLease& pending, Worker* worker, std::vector<int> gpu_ids) {
  worker->state = Worker::State::kLeased;
  worker->lease = pending.lease_id.IsNil() ? LeaseId::FromRandom() : pending.lease_id;
  worker->leased_to = pending.requester;
  worker->leased_to_address = pending.requester_address;
  worker->detached_actor = pending.detached_actor;
  worker->held = pending.demand;
  worker->gpu_ids = gpu_ids;
  worker->blocked = false;
  FillGrant(*worker, pending.reply);
  pending.done(absl::OkStatus());
}

void Raylet::FillGrant(const Worker& worker, rpc::RequestWorkerLeaseReply* reply) {
  reply->set_granted(true);
  reply->set_lease_id(worker.lease.Binary());
  reply->set_worker_id(worker.id.Binary());
  reply->set_worker_endpoint(worker.endpoint);
  reply->set_worker_address(worker.address);
  reply->set_worker_frame_address(worker.frame_address);
  reply->set_node_id(node_id_.Binary());
  reply->set_worker_pid(worker.pid);
  for (int id : worker.gpu_ids) reply->add_gpu_ids(id);
}

void Raylet::ReleaseLease(Worker* worker) {
  if (worker->blocked) resources_.ReclaimCpu(CpuPart(worker->held));
  resources_.Release(worker->held, worker->gpu_ids);
  worker->held = ResourceSet();
  worker->gpu_ids.clear();
  worker->blocked = false;
  worker->detached_actor = false;
  worker->lease = LeaseId::Nil();
}

void Raylet::HandleGetStoreStats(const rpc::GetStoreStatsRequest& request,
                                  rpc::GetStoreStatsReply* reply, rpc::Done done) {
  // The store answers on its own loop, which may outlive objects_ at Stop.
  store_->HandleGetStoreStats(request, reply, [stats = pull_stats_, reply, done](absl::Status s) {
    reply->set_total_pulled(stats->objects.load());
    reply->set_pulled_bytes(stats->bytes.load());
    done(s);
  });
}

void Raylet::HandleReturnWorkerLease(const rpc::ReturnWorkerLeaseRequest& request,
                                     rpc::ReturnWorkerLeaseReply* reply, rpc::Done done) {
  loop_.Post([this, request, reply, done] {
    LeaseId lease = LeaseId::FromBinary(request.lease_id());
    Worker* worker = pool_.FindByLease(lease);
    if (worker == nullptr) {  // already gone: idempotent (and says how, when it knows)
      auto exit = recent_exits_.find(lease.Binary());
      if (request.worker_failed() && exit != recent_exits_.end()) {
        reply->set_worker_exit(exit->second);
      }
      if (exit == recent_exits_.end() && !lease.IsNil()) ForgetRequest(lease);
      return done(absl::OkStatus());
    }
    ReleaseLease(worker);
    worker->idle_since_ms = NowMs();
    if (request.worker_failed()) {
      // Its owner saw it fail: never lease it again, even before it is reaped. It is
      // most likely gone already (its owner lost the connection as it exited): it is
      // given a moment to be reaped, so that the owner learns how it ended.
      worker->state = Worker::State::kExiting;
      AwaitWorkerExit(worker->id, NowMs() + kWorkerExitWaitMs,
                      [reply, done](const std::string& how) {
                        reply->set_worker_exit(how);
                        done(absl::OkStatus());
                      });
      ScheduleLeases();
      return;
    } else {
      worker->state = Worker::State::kIdle;
    }
    done(absl::OkStatus());
    ScheduleLeases();
  });
}

void Raylet::AwaitWorkerExit(WorkerId id, int64_t deadline_ms,
                             std::function<void(const std::string&)> done) {
  if (ReapWorkers()) ScheduleLeases();
  auto exit = recent_exits_.find(id.Binary());
  if (exit != recent_exits_.end()) return done(exit->second);
  if (NowMs() >= deadline_ms || stopping_) {
    pool_.Kill(id, /*force=*/true);  // alive but failed, for its owner: it goes
    return done("");
  }
  loop_.RunAfter(std::chrono::milliseconds(20), [this, id, deadline_ms, done] {
    AwaitWorkerExit(id, deadline_ms, done);
  });
}

void Raylet::HandleCancelWorkerLeases(const rpc::CancelWorkerLeasesRequest& request,
                                      rpc::CancelWorkerLeasesReply* reply, rpc::Done done) {
  loop_.Post([this, request, reply, done] {
    WorkerId requester = WorkerId::FromBinary(request.requester_worker_id());
    if (requester.IsNil()) {
      return done(absl::InvalidArgumentError("CancelWorkerLeases needs the requester's id"));
    }
    ResourceSet demand = ResourceSet::FromMap(
        std::map<std::string, double>(request.resources().begin(), request.resources().end()));
    std::vector<PendingLease> canceled = TakePending([&](const PendingLease& pending) {
      return pending.requester == requester &&
             (request.every_demand() || pending.demand == demand);
    });
    for (PendingLease& pending : canceled) {
      pending.reply->set_canceled(true);
      pending.done(absl::OkStatus());
    }
    reply->set_canceled(int(canceled.size()));
    done(absl::OkStatus());
    // Another requester's parked demand may now be first in line for a starting worker.
    if (!canceled.empty()) ScheduleLeases();
  });
}

void Raylet::HandleNotifyBlocked(const rpc::NotifyBlockedRequest& request,
                                 rpc::NotifyBlockedReply*, rpc::Done done) {
  loop_.Post([this, request, done] {
    Worker* worker = pool_.Find(WorkerId::FromBinary(request.worker_id()));
    if (worker != nullptr && worker->state == Worker::State::kLeased &&
        worker->blocked != request.blocked()) {
      worker->blocked = request.blocked();
      ResourceSet cpus = CpuPart(worker->held);  // bundles' CPU too
      if (request.blocked()) {
        resources_.LendCpu(cpus);
      } else {
        resources_.ReclaimCpu(cpus);
      }
    }
    done(absl::OkStatus());
    if (request.blocked()) ScheduleLeases();
  });
}

void Raylet::HandleGetNodeInfo(const rpc::GetNodeInfoRequest&, rpc::GetNodeInfoReply* reply,
                               rpc::Done done) {
  loop_.Post([this, reply, done] {
    reply->set_node_id(node_id_.Binary());
    ToProtoMap(resources_.total(), reply->mutable_total());
    ToProtoMap(resources_.available(), reply->mutable_available());
    int idle = 0, all = 0;
    for (Worker* w : pool_.All()) {
      ++all;
      idle += w->state == Worker::State::kIdle;
    }
    reply->set_num_workers(all);
    reply->set_num_idle_workers(idle);
    done(absl::OkStatus());
  });
}

void Raylet::ForgetRequest(const LeaseId& lease) {
  // Never granted: a request with this id still parked is answered, and one yet to come
  // will be (its requester gave up on it: the reply was lost, say).
  for (PendingLease& parked : TakePending([&](const PendingLease& pending) {
         return pending.lease_id == lease;
       })) {
    parked.reply->set_canceled(true);
    parked.done(absl::OkStatus());
  }
  if (!returned_ids_.insert(lease).second) return;
  returned_order_.push_back(lease);
  while (returned_order_.size() > kMaxReturnedIds) {
    returned_ids_.erase(returned_order_.front());
    returned_order_.pop_front();
  }
}

std::vector<Raylet::PendingLease> Raylet::TakePending(
    const std::function<bool(const PendingLease&)>& match) {
  std::vector<PendingLease> taken;
  // Parked here, and those waiting for a fresh view of the cluster before placement.
  auto take = [&](auto& list) {
    for (auto it = list.begin(); it != list.end();) {
      if (match(*it)) {
        taken.push_back(std::move(*it));
        it = list.erase(it);
      } else {
        ++it;
      }
    }
  };
  take(pending_);
  take(awaiting_view_);
  return taken;
}

void Raylet::AddJob(const std::string& job, JobLaunch launch, int prestart) {
  pool_.AddJob(job, std::move(launch));
  FetchExecutable(job, prestart);
}

void Raylet::FetchExecutable(const std::string& job, int prestart) {
  const JobLaunch* launch = pool_.FindJob(job);
  if (launch == nullptr || !fetching_for_.insert(job).second) return;
  executables_->Ensure(launch->digest, launch->size,
                       [this, job, prestart](absl::StatusOr<std::string> path) {
    fetching_for_.erase(job);
    JobLaunch* launch = pool_.FindJob(job);
    if (stopping_ || launch == nullptr) return;
    if (!path.ok()) {
      return FailPendingForJob(job, "cannot run the job's executable (" + launch->executable +
                                        ") on this node: " +
                                        std::string(path.status().message()));
    }
    launch->cached = *path;
    for (int i = 0; i < prestart; ++i) {
      absl::Status started = pool_.StartWorker(job);
      if (!started.ok()) {
        LUMEN_LOG_WARN("raylet: cannot prestart a worker: {}", started.ToString());
        break;
      }
    }
    ScheduleLeases();
  });
}

void Raylet::FailPendingForJob(const std::string& job, const std::string& why) {
  for (PendingLease& pending :
       TakePending([&](const PendingLease& p) { return p.job == job; })) {
    pending.reply->set_failure(why);
    pending.done(absl::OkStatus());
  }
}

bool Raylet::ReapWorkers() {
  bool changed = false;
  pool_.ReapExited([&](const Worker& worker, const std::string& how) {
    changed = true;
    if (worker.state == Worker::State::kStarting) {
      std::string why = "worker process (pid " + std::to_string(worker.pid) + ") " + how +
                        " before it registered; see " + pool_.LogPath(worker.pid);
      LUMEN_LOG_WARN("raylet: {}", why);
      // SIGKILL comes from outside (a user, the OOM killer, a chaos test): it says nothing
      // of the executable, so it does not count towards failing the job's leases.
      if (how.rfind("killed by signal " + std::to_string(SIGKILL) + " ", 0) == 0) return;
      int failures = ++startup_failures_[worker.job];
      if (failures >= options_.max_startup_failures) {
        FailPendingForJob(worker.job, "workers cannot start: " + why);
      }
      return;
    }
    // How it ended, for its owner's ReturnWorkerLease: by worker, and by lease if leased.
    for (const std::string& key : {worker.id.Binary(), worker.lease.Binary()}) {
      if (key == LeaseId::Nil().Binary() || !recent_exits_.emplace(key, how).second) continue;
      recent_exit_order_.push_back(key);
      if (recent_exit_order_.size() > kRecentExits) {
        recent_exits_.erase(recent_exit_order_.front());
        recent_exit_order_.pop_front();
      }
    }
    if (worker.state == Worker::State::kLeased) {
      Worker copy = worker;
      ReleaseLease(&copy);
    }
    LUMEN_LOG_INFO("raylet: worker pid {} {}", worker.pid, how);
    store_->OnClientExit(worker.id.Binary(), worker.address);
    DropLeasesOf(worker.id, worker.address);
    ReportWorkerDeath(worker, how);
  });
  return changed;
}

void Raylet::ReportWorkerDeath(const Worker& worker, const std::string& how) {
  rpc::ReportWorkerDeathRequest request;
  request.set_worker_id(worker.id.Binary());
  request.set_pid(worker.pid);
  request.set_how(how);
  request.set_address(worker.address);
  SendWorkerDeath(std::move(request));
}

void Raylet::SendWorkerDeath(rpc::ReportWorkerDeathRequest request) {
  request.set_node_id(node_id_.Binary());
  rpc::CallUnary<rpc::ReportWorkerDeathRequest, rpc::ReportWorkerDeathReply>(
      [this](auto... args) { gcs_->async()->ReportWorkerDeath(args...); }, std::move(request),
      [](absl::Status status, rpc::ReportWorkerDeathReply&&) {
        if (!status.ok()) {
          LUMEN_LOG_WARN("raylet: cannot report a worker death: {}", status.ToString());
        }
      },
      5000);
}

void Raylet::DropLeasesOf(const WorkerId& owner, const std::string& address) {
  auto is_owner = [&](const WorkerId& id, const std::string& at) {
    return (!owner.IsNil() && id == owner) || (!address.empty() && at == address);
  };
  // Its parked requests have nobody to answer to...
  for (PendingLease& pending : TakePending([&](const PendingLease& p) {
         return is_owner(p.requester, p.requester_address);
       })) {
    pending.done(absl::UnavailableError("the requesting worker exited"));
  }
  // ...and the workers it leased run tasks whose results nobody will collect: stop
  // them, so that their resources come back when they are reaped.
  for (Worker* w : pool_.All()) {
    if (w->state == Worker::State::kLeased && is_owner(w->leased_to, w->leased_to_address)) {
      ReleaseLease(w);
      w->state = Worker::State::kExiting;
      pool_.Kill(w->id, /*force=*/true);
    }
  }
}

void Raylet::RemoteNode::Charge(const ResourceSet& demand) {
  available.Subtract(demand);
  charged_ms = NowMs();
}

const std::pair<const std::string, Raylet::RemoteNode>* Raylet::PickSpillback(
    const ResourceSet& demand) {
  std::pair<const std::string, RemoteNode>* best = nullptr;
  double best_use = 2;
  for (auto& entry : cluster_view_) {
    const RemoteNode& node = entry.second;
    if (!node.available.Contains(demand)) continue;
    double cpus = node.total.Get("CPU");
    double use = cpus > 0 ? 1 - node.available.Get("CPU") / cpus : 0;
    if (use < best_use) {
      best_use = use;
      best = &entry;
    }
  }
  if (best != nullptr) best->second.Charge(demand);
  return best;
}

const std::pair<const std::string, Raylet::RemoteNode>* Raylet::Place(
    const rpc::SchedulingStrategy& strategy, const ResourceSet& demand, std::string* failure) {
  switch (strategy.kind()) {
    case rpc::SchedulingStrategy::NODE_AFFINITY: {
      if (strategy.node_id() == node_id_.Binary()) return nullptr;  // here
      auto it = cluster_view_.find(strategy.node_id());
      // Soft: there when it may fit; that node grants or rejects, and its requester
      // falls back to the hybrid policy for a while when it rejects (the view of its
      // free resources lags: it would send work away from a node with room).
      if (it != cluster_view_.end() &&
          (!strategy.soft() || it->second.total.Contains(demand))) {
        it->second.Charge(demand);
        return &*it;
      }
      if (strategy.soft()) return nullptr;  // gone or full: the hybrid policy
      if (it == cluster_view_.end()) {
        *failure = "its NodeAffinityStrategy names node " +
                   NodeId::FromBinary(strategy.node_id()).Hex() +
                   ", which is not an alive node of the cluster";
      }
      return nullptr;
    }
    case rpc::SchedulingStrategy::SPREAD: {
      // In turn over the nodes with room now, this one included. When the view shows no
      // room anywhere (it lags: a node's report of work that ended comes a beat later),
      // in turn over every node that fits the demand at all: the node itself grants or
      // rejects, and a rejected requester asks here again.
      std::vector<std::pair<const std::string, RemoteNode>*> room;
      bool here = resources_.available().Contains(demand);
      for (auto& entry : cluster_view_) {
        if (entry.second.available.Contains(demand)) room.push_back(&entry);
      }
      bool has_room = !room.empty();
      if (!has_room && here) return nullptr;  // room here only: here
      if (!has_room) {
        here = resources_.total().Contains(demand);
        for (auto& entry : cluster_view_) {
          if (entry.second.total.Contains(demand)) room.push_back(&entry);
        }
        if (room.empty()) return nullptr;
      }
      size_t turn = spread_next_++ % (room.size() + (here ? 1 : 0));
      if (here && turn == room.size()) return nullptr;
      if (has_room) room[turn]->second.Charge(demand);
      return room[turn];
    }
    default:
      return nullptr;  // the hybrid policy: here first (see ScheduleLeases)
  }
}

void Raylet::SpillBack(PendingLease& pending,
                       const std::pair<const std::string, RemoteNode>& node) {
  pending.reply->set_spillback_address(node.second.address);
  pending.reply->set_spillback_node_id(node.first);
  pending.done(absl::OkStatus());
}

void Raylet::RefreshClusterView(bool wait) {
  constexpr int64_t kPollMs = 5000;
  if (wait && view_polling_) return;
  rpc::GetAllNodesRequest request;
  request.set_gone_owners_after(gone_owners_seen_);
  request.set_known_version(view_version_);
  request.set_wait_ms(wait ? kPollMs : 0);
  auto context = std::make_shared<grpc::ClientContext>();
  {
    MutexLock lock(&view_mutex_);
    if (view_stopped_) return;
    view_calls_.insert(context);
  }
  if (wait) view_polling_ = true;
  rpc::CallUnary<rpc::GetAllNodesRequest, rpc::GetAllNodesReply>(
      [this](auto... args) { gcs_->async()->GetAllNodes(args...); }, std::move(request),
      [this, wait, context](absl::Status status, rpc::GetAllNodesReply&& reply) {
        loop_.Post([this, wait, status, reply = std::move(reply)] {
          if (status.ok()) ApplyClusterView(reply);
          if (!wait) return;
          view_polling_ = false;
          if (stopping_) return;
          if (status.ok()) return RefreshClusterView(/*wait=*/true);
          LUMEN_LOG_DEBUG("raylet: cluster view poll failed: {}", status.ToString());
          loop_.RunAfter(std::chrono::milliseconds(500), [this] {
            if (!stopping_) RefreshClusterView(/*wait=*/true);
          });
        });
        MutexLock lock(&view_mutex_);
        view_calls_.erase(context);
        if (view_calls_.empty()) view_idle_.SignalAll();
      },
      wait ? kPollMs + 5000 : 2000, context);
}

void Raylet::ApplyClusterView(const rpc::GetAllNodesReply& reply) {
  // Owners gone anywhere: what they owned here goes (their own node freed it), and a gone
  // driver's job ends here too.
  if (reply.gone_owners_last() > gone_owners_seen_) {
    for (const std::string& owner : reply.gone_owners()) {
      store_->OnOwnerGone(owner);
      // A requester on another node: its leases here (a node's own processes were
      // dropped when they exited).
      if (!owner.empty()) DropLeasesOf(WorkerId::Nil(), owner);
      for (const auto& [job, launch] : pool_.jobs()) {
        if (!owner.empty() && launch.driver_address == owner) StopJobWorkers(job);
      }
    }
    gone_owners_seen_ = reply.gone_owners_last();
  }
  // Two answers may cross (the long poll and a refresh): an entry only moves forward.
  if (reply.whole()) cluster_view_.clear();
  bool members_changed = reply.whole();
  for (const rpc::NodeInfo& node : reply.nodes()) {
    auto it = cluster_view_.find(node.node_id());
    if (it != cluster_view_.end() && it->second.version >= node.version()) continue;
    members_changed = true;
    if (!node.alive()) dead_nodes_.insert(node.node_id());
    if (!node.alive() || node.node_id() == node_id_.Binary() ||
        node.raylet_address().empty()) {
      if (it != cluster_view_.end()) cluster_view_.erase(it);
      continue;
    }
    RemoteNode& entry = cluster_view_[node.node_id()];
    entry.address = node.raylet_address();
    entry.object_address = node.object_address();
    entry.total = ResourceSet::FromMap({node.total().begin(), node.total().end()});
    entry.reported = ResourceSet::FromMap({node.available().begin(), node.available().end()});
    entry.available = entry.reported;
    entry.version = node.version();
    entry.charged_ms = 0;
  }
  for (const rpc::ResourceUpdate& update : reply.resources()) {
    auto it = cluster_view_.find(update.node_id());
    if (it == cluster_view_.end() || it->second.version >= update.version()) continue;
    it->second.reported =
        ResourceSet::FromMap({update.available().begin(), update.available().end()});
    if (!update.total().empty()) {
      it->second.total = ResourceSet::FromMap({update.total().begin(), update.total().end()});
    }
    it->second.available = it->second.reported;
    it->second.version = update.version();
    it->second.charged_ms = 0;
  }
  if (reply.whole() || reply.version() > view_version_) view_version_ = reply.version();
  if (members_changed) {
    std::map<std::string, object_manager::NodeAddresses> addresses;
    for (const auto& [id, node] : cluster_view_) {
      addresses[id] = object_manager::NodeAddresses{node.address, node.object_address};
    }
    objects_->SetNodes(std::move(addresses), dead_nodes_);
  }
  std::vector<PendingLease> waiting;
  waiting.swap(awaiting_view_);
  for (PendingLease& pending : waiting) Admit(std::move(pending), /*view_fresh=*/true);
  ScheduleLeases();  // parked demands may go where there is room now
}

void Raylet::HandleFreeObjects(const rpc::FreeObjectsRequest& request,
                               rpc::FreeObjectsReply* reply, rpc::Done done) {
  std::vector<ObjectId> ids;
  for (const std::string& id : request.ids()) {
    if (id.size() == ObjectId::Size()) ids.push_back(ObjectId::FromBinary(id));
  }
  objects_->Free(ids, {request.node_ids().begin(), request.node_ids().end()});
  rpc::FreeObjectsRequest here;
  *here.mutable_ids() = request.ids();
  store_->HandleFreeObjects(here, reply, std::move(done));
}

void Raylet::StopJobWorkers(const std::string& job) {
  for (Worker* w : pool_.All()) {
    // A detached actor's worker stays: the actor outlives its creator.
    if (w->job == job && !w->detached_actor) pool_.Kill(w->id, /*force=*/true);
  }
}

void Raylet::OnTick() {
  bool changed = ReapWorkers();
  MaybeReport();
  int64_t now = NowMs();
  for (auto& [id, node] : cluster_view_) {
    if (node.charged_ms != 0 && now - node.charged_ms > 1000) {
      node.available = node.reported;
      node.charged_ms = 0;
    }
  }
  // Jobs whose driver is gone: stop their workers.
  for (const auto& [job, launch] : pool_.jobs()) {
    if (launch.driver_pid > 0 && launch.driver_pid != getpid() &&
        !ProcessAlive(launch.driver_pid)) {
      if (drivers_gone_.insert(job).second) {
        store_->OnClientExit(launch.driver_worker_id, launch.driver_address);
        // The other nodes free what it owned.
        rpc::ReportWorkerDeathRequest gone;
        gone.set_worker_id(launch.driver_worker_id);
        gone.set_pid(launch.driver_pid);
        gone.set_address(launch.driver_address);
        gone.set_how("(the job's driver) exited without finishing its job");
        SendWorkerDeath(std::move(gone));
      }
      StopJobWorkers(job);
    }
  }
  // Reap idle workers above the prestarted count.
  std::map<std::string, int> alive;
  for (Worker* w : pool_.All()) ++alive[w->job];
  for (Worker* w : pool_.All()) {
    if (w->state == Worker::State::kIdle && alive[w->job] > options_.num_prestart_workers &&
        now - w->idle_since_ms > options_.idle_worker_timeout_ms) {
      --alive[w->job];
      pool_.Kill(w->id, /*force=*/false);
      w->state = Worker::State::kExiting;  // never leased again; reaped when it exits
    }
  }
  if (changed) ScheduleLeases();
}

}  // namespace lumen::raylet
