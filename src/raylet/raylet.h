// The raylet: one per node. Leases workers to owners under fractional resource
// accounting, runs the worker pool, and reports the node to the GCS.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "common/event_loop.h"
#include "common/ids.h"
#include "common/mutex.h"
#include "common/resources.h"
#include "gcs.grpc.pb.h"
#include "raylet.grpc.pb.h"
#include "raylet/executable_cache.h"
#include "raylet/log_monitor.h"
#include "raylet/resource_pool.h"
#include "raylet/store_server.h"
#include "raylet/worker_pool.h"
#include "rpc/rpc.h"

namespace lumen::raylet {

void ToProtoMap(const ResourceSet& set, google::protobuf::Map<std::string, double>* out);

struct RayletOptions {
  std::string session_dir;
  std::string logs_dir;
  std::string socket_path;   // the raylet listens on unix:<socket_path>
  std::string gcs_endpoint;
  std::string node_ip = "127.0.0.1";  // where other nodes reach this one
  bool is_head = false;      // this node hosts the GCS
  ResourceSet total;         // CPU, GPU, custom
  /// Workers started per job when its driver registers, and kept when idle.
  int num_prestart_workers = 1;
  /// Idle workers above num_prestart_workers exit after this long.
  int64_t idle_worker_timeout_ms = 10000;
  /// Lease requests fail after this many workers in a row died before registering.
  int max_startup_failures = 3;
  std::string log_level = "warn";
  StoreOptions store;                 // the node's object store
  /// The GCS declared this node dead (it was silent too long): the node must stop and
  /// start again as a new one. Called once, on any thread, with the reason; the host
  /// (the `lumen` daemon) stops the node. Null: the raylet only logs it.
  std::function<void(const std::string& why)> on_declared_dead;
};

/// Lease protocol, on the raylet's event loop:
///   1. RequestWorkerLease queues the demand (infeasible ones are answered at once).
///   2. When resources fit and an idle worker of the job exists, the lease is granted;
///      otherwise workers are started, at most one per queued demand that fits.
///   3. The owner pushes tasks to the worker directly, then ReturnWorkerLease frees it.
///      An owner with nothing queued or running for a while cancels its parked requests
///      (CancelWorkerLeases).
///   4. A leased worker blocked in Get lends its CPU back until it runs again.
///   5. A worker that exits frees whatever it held; its owner finds out on its own RPC,
///      the GCS from ReportWorkerDeath (for the actors on it and the actors it owned).
///   Actors: the GCS leases a dedicated worker per actor (no requester worker), held
///   until the GCS returns the lease or the worker exits.
class Raylet {
 public:
  explicit Raylet(RayletOptions options);
  ~Raylet();

  /// Listens (a Unix socket for this node, TCP at node_ip for the others), registers
  /// the node with the GCS. Returns the local endpoint ("unix:...").
  absl::StatusOr<std::string> Start();
  /// The raylet's TCP address (after Start).
  const std::string& address() const { return address_; }
  /// Stops serving and stops every worker. Idempotent.
  void Stop();
  const NodeId& node_id() const { return node_id_; }
  StoreServer* store() const { return store_.get(); }
  object_manager::ObjectManager* objects() const { return objects_.get(); }

  void HandleRegisterDriver(const rpc::RegisterDriverRequest& request,
                            rpc::RegisterDriverReply* reply, rpc::Done done);
  void HandleRegisterWorker(const rpc::RegisterWorkerRequest& request,
                            rpc::RegisterWorkerReply* reply, rpc::Done done);
  void HandleRequestWorkerLease(const rpc::RequestWorkerLeaseRequest& request,
                                rpc::RequestWorkerLeaseReply* reply, rpc::Done done);
  void HandleReturnWorkerLease(const rpc::ReturnWorkerLeaseRequest& request,
                               rpc::ReturnWorkerLeaseReply* reply, rpc::Done done);
  void HandleCancelWorkerLeases(const rpc::CancelWorkerLeasesRequest& request,
                                rpc::CancelWorkerLeasesReply* reply, rpc::Done done);
  void HandleNotifyBlocked(const rpc::NotifyBlockedRequest& request,
                           rpc::NotifyBlockedReply* reply, rpc::Done done);
  void HandleGetNodeInfo(const rpc::GetNodeInfoRequest& request,
                         rpc::GetNodeInfoReply* reply, rpc::Done done);
  /// The store's statistics, and the object manager's pulls.
  void HandleGetStoreStats(const rpc::GetStoreStatsRequest& request,
                           rpc::GetStoreStatsReply* reply, rpc::Done done);
  /// Frees here, stops pulls of the objects, and forwards the free to `node_ids`.
  void HandleFreeObjects(const rpc::FreeObjectsRequest& request, rpc::FreeObjectsReply* reply,
                         rpc::Done done);
  /// Placement-group bundles (raylet_bundles.cc): see PrepareBundlesRequest.
  void HandlePrepareBundles(const rpc::PrepareBundlesRequest& request,
                            rpc::PrepareBundlesReply* reply, rpc::Done done);
  void HandleCommitBundles(const rpc::CommitBundlesRequest& request,
                           rpc::CommitBundlesReply* reply, rpc::Done done);
  void HandleReturnBundles(const rpc::ReturnBundlesRequest& request,
                           rpc::ReturnBundlesReply* reply, rpc::Done done);

 private:
  struct PendingLease {
    std::string job;
    WorkerId requester;
    std::string requester_address;  // owner address; "" from the GCS
    ResourceSet demand;
    rpc::RequestWorkerLeaseReply* reply;
    rpc::Done done;
    bool grant_or_reject = false;  // a spillback: never sent on again
    bool pinned = false;           // hard node affinity to this node: never sent on
    rpc::SchedulingStrategy strategy;
    bool detached_actor = false;   // its worker outlives the job's driver
    LeaseId lease_id;              // the requester's choice; Nil: one is made at the grant
  };
  /// Another node, as of the last GetAllNodes.
  struct RemoteNode {
    std::string address;         // its raylet, TCP
    std::string object_address;  // its object manager's chunk server, TCP
    ResourceSet total;
    ResourceSet reported;   // available, as the node last reported it
    ResourceSet available;  // reported, minus what this raylet sent there since
    uint64_t version = 0;   // of the view, when the GCS last changed this entry
    int64_t charged_ms = 0;  // when `available` was last charged; 0: it is `reported`
    /// Counts a demand sent there until the node's own report says how it went; a charge
    /// no report replaced within a second (the lease went elsewhere) is dropped.
    void Charge(const ResourceSet& demand);
  };
  void ScheduleLeases();
  /// A bundle reserved here: prepared (its resources taken from what is free), then
  /// committed (its own resources added; see common/bundles.h).
  struct BundleEntry {
    ResourceSet resources;
    std::vector<int> gpu_ids;  // devices it took (GPU in the bundle)
    bool committed = false;
  };
  /// The devices of the bundles a demand in a bundle runs on (empty: none).
  std::vector<int> BundleDevices(const ResourceSet& demand) const;
  /// Gives back one bundle: its workers are killed, its resources go back.
  void ReturnBundle(const std::string& group, int index);
  std::map<std::pair<std::string, int>, BundleEntry> bundles_;  // loop-only; (group, index)
  /// Stamps each report of this node's resources (loop-only): see resources_seq.
  uint64_t resources_seq_ = 0;
  /// A reply about bundles carries the node's resources after it, stamped.
  template <typename Reply>
  void FillResources(Reply* reply);
  /// Hybrid policy, for a demand that does not fit here now: the alive node with room
  /// for it and the lowest CPU use, whose view is then charged with it; nullptr when
  /// none has room.
  const std::pair<const std::string, RemoteNode>* PickSpillback(const ResourceSet& demand);
  /// Answers `pending` with "ask that node".
  void SpillBack(PendingLease& pending, const std::pair<const std::string, RemoteNode>& node);
  /// Asks the GCS for what changed in the cluster view since the version held here.
  /// `wait`: the long poll that keeps the view current (one at a time; the next starts
  /// when it is answered); else a refresh now (a node missing from the view may have
  /// joined since).
  void RefreshClusterView(bool wait);
  void ApplyClusterView(const rpc::GetAllNodesReply& reply);
  /// Reports available resources and waiting demands to the GCS when they changed (at
  /// most every 100 ms), and liveness once a second.
  void MaybeReport();
  /// Places a new request by its strategy: spills it back, queues it, or answers it.
  /// `view_fresh`: the view was refreshed after the request came.
  void Admit(PendingLease pending, bool view_fresh);
  /// Where the strategy of a new request sends it: nullptr to queue it here (or answer
  /// infeasible), else the node to spill back to. Sets `failure` for a hard affinity to
  /// a node that is not alive.
  const std::pair<const std::string, RemoteNode>* Place(const rpc::SchedulingStrategy& strategy,
                                                        const ResourceSet& demand,
                                                        std::string* failure);
  void Grant(PendingLease& pending, Worker* worker, std::vector<int> gpu_ids);
  void ReleaseLease(Worker* worker);
  /// ReturnWorkerLease of a lease id never granted: see ReturnWorkerLeaseRequest.
  void ForgetRequest(const LeaseId& lease);
  /// Fills a granted reply for `worker`'s lease.
  void FillGrant(const Worker& worker, rpc::RequestWorkerLeaseReply* reply);
  void OnTick();
  /// Forgets exited workers and frees what they held; true when any exited.
  bool ReapWorkers();
  /// A requester exited (a worker here: by id; a process anywhere the GCS says is gone:
  /// by owner address): answer its parked lease requests, stop the workers it leased.
  void DropLeasesOf(const WorkerId& owner, const std::string& address);
  /// Calls `done` with how worker `id` ended once it is reaped, or with "" at
  /// `deadline_ms`, having killed it. (By value: reaping frees the worker's entry.)
  void AwaitWorkerExit(WorkerId id, int64_t deadline_ms,
                       std::function<void(const std::string&)> done);
  static constexpr int64_t kWorkerExitWaitMs = 500;
  static constexpr size_t kRecentExits = 1000;
  /// Tells the GCS (actors on it restart or die; actors it owned die).
  void ReportWorkerDeath(const Worker& worker, const std::string& how);
  void SendWorkerDeath(rpc::ReportWorkerDeathRequest request);
  /// Removes the parked lease requests that `match` picks, in order, for the caller to
  /// answer.
  std::vector<PendingLease> TakePending(const std::function<bool(const PendingLease&)>& match);
  void FailPendingForJob(const std::string& job, const std::string& why);
  /// The job's driver is gone (its process, or it finished the job): its workers stop,
  /// except those that host detached actors.
  void StopJobWorkers(const std::string& job);
  /// Adds a job, and fetches its executable into this node's cache (then starts
  /// `prestart` workers for it).
  void AddJob(const std::string& job, JobLaunch launch, int prestart);
  /// Fetches the job's executable unless a fetch is under way; a failure fails the job's
  /// parked lease requests (the next request tries again).
  void FetchExecutable(const std::string& job, int prestart);
  /// `processes`: the node's processes changed since the last report; they go with it.
  void SendHeartbeat(bool with_resources, const std::vector<std::string>* processes = nullptr);
  /// The TCP addresses of this node's live drivers and workers, sorted.
  std::vector<std::string> ProcessAddresses();
  /// Worker output, from the log monitor's thread: batched for the GCS's log channel.
  void OnWorkerOutput(const std::string& job, pid_t pid, const std::string& text,
                      bool from_stderr);
  /// Sends the batched lines to the GCS (blocking: at Stop, when nothing else will).
  void FlushLogs(bool blocking);
  rpc::RegisterNodeRequest NodeRegistration() const;
  /// Registers this node with the GCS; `blocking` false sends it and moves on.
  absl::Status RegisterWithGcs(bool blocking);

  RayletOptions options_;
  NodeId node_id_ = NodeId::FromRandom();
  EventLoop loop_{"lumen-raylet"};
  LogMonitor log_monitor_;
  std::unique_ptr<grpc::Service> service_;
  rpc::Server server_;
  std::unique_ptr<rpc::GcsService::Stub> gcs_;
  bool stopped_ = false;
  bool loop_started_ = false;
  // Loop-only state.
  bool stopping_ = false;
  ResourcePool resources_;
  WorkerPool pool_;
  std::deque<PendingLease> pending_;
  std::map<std::string, int> startup_failures_;  // by job, consecutive
  std::map<std::string, std::string> last_startup_failure_;
  std::set<std::string> drivers_gone_;  // jobs whose driver's exit the store was told
  // How the workers reaped lately ended, by worker id and by the lease they held then
  // (binary ids; loop-only).
  std::map<std::string, std::string> recent_exits_;
  // Lease ids returned before they were granted (the requester gave up on the request):
  // the request, if it still comes, is answered `canceled`. The last kMaxReturnedIds.
  static constexpr size_t kMaxReturnedIds = 10000;
  absl::flat_hash_set<LeaseId> returned_ids_;
  std::deque<LeaseId> returned_order_;
  std::deque<std::string> recent_exit_order_;
  // Infeasible demands asked for lately (owners ask again every second while they wait),
  // by ResourceSet::ToString: the shape and when it was last asked for.
  std::map<std::string, std::pair<ResourceSet, int64_t>> infeasible_seen_;
  std::unique_ptr<StoreServer> store_;
  std::unique_ptr<object_manager::ObjectManager> objects_;  // uses store_
  // Its pull counters, kept from its start (GetStoreStats reads them).
  std::shared_ptr<const object_manager::ObjectManager::PullStats> pull_stats_;
  std::unique_ptr<ExecutableCache> executables_;  // reads from gcs_
  std::set<std::string> fetching_for_;  // loop-only: jobs whose executable is on its way
  std::string address_;
  std::string object_address_;  // the object manager's chunk server
  std::map<std::string, RemoteNode> cluster_view_;  // loop-only; by binary node id
  std::set<std::string> dead_nodes_;  // loop-only: nodes the GCS declared dead
  uint64_t gone_owners_seen_ = 0;  // loop-only: the GCS's cursor of owners gone
  uint64_t view_version_ = 0;      // loop-only: of the cluster view held
  bool view_polling_ = false;      // loop-only: the long poll is out
  std::string last_report_;        // loop-only: resources last reported (ToString form)
  int64_t last_report_ms_ = 0;     // loop-only: when anything was last reported
  std::vector<std::string> processes_reported_;  // loop-only: ProcessAddresses last sent
  /// How often to report liveness (the GCS says, when this node registers).
  std::atomic<int64_t> heartbeat_period_ms_{1000};
  std::atomic<bool> declared_dead_{false};
  /// The GCS declared this node dead: tells the host once.
  void OnDeclaredDead(const std::string& why);
  // Calls to the GCS for the view that Stop cancels and waits for.
  Mutex view_mutex_;
  CondVar view_idle_;
  bool view_stopped_ ABSL_GUARDED_BY(view_mutex_) = false;
  std::set<std::shared_ptr<grpc::ClientContext>> view_calls_ ABSL_GUARDED_BY(view_mutex_);
  uint64_t spread_next_ = 0;  // SpreadStrategy's turn
  // Requests for a node missing from the view: placed again once it is refreshed (the
  // node may have joined since the last refresh).
  std::vector<PendingLease> awaiting_view_;
  std::mutex logs_mutex_;
  rpc::PublishLogsRequest log_batch_;  // guarded by logs_mutex_
  // One PublishLogs in flight at a time, so that lines reach the GCS in order.
  // Shared with the call's callback, which may outlive the raylet.
  std::shared_ptr<std::atomic<bool>> publishing_ = std::make_shared<std::atomic<bool>>(false);
};

}  // namespace lumen::raylet
