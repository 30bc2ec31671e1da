// The GCS: the head node's tables (nodes with health, jobs, internal KV, actors), served
// over gRPC.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <string>

#include "common/event_loop.h"
#include "gcs/actor_manager.h"
#include "gcs/executable_store.h"
#include "gcs/log_channel.h"
#include "gcs/node_manager.h"
#include "gcs/placement_group_manager.h"
#include "gcs/state_query.h"
#include "gcs/task_event_table.h"
#include "http/http_server.h"
#include "gcs.grpc.pb.h"
#include "raylet.grpc.pb.h"
#include "rpc/call_tracker.h"
#include "rpc/rpc.h"

namespace lumen::gcs {

struct GcsOptions {
  /// Listening address; port 0 picks a free port. Loopback unless told otherwise.
  std::string listen_address = "127.0.0.1:0";
  /// Nodes report that they are alive every period; one silent for `failure_threshold`
  /// periods is declared dead (its actors restart elsewhere or die).
  int64_t health_check_period_ms = 1000;
  int health_check_failure_threshold = 5;
  /// The head's HTTP server (the state API at /api/v0/): host ("" = none) and port (0:
  /// a free one).
  std::string http_host;
  int http_port = 0;
  /// Task attempts the state API keeps (the oldest are evicted past it).
  size_t max_task_events = TaskEventTable::kDefaultMaxTasks;
  /// Where the GCS keeps files (the jobs' executables, under executables/); empty: it
  /// keeps none, and drivers cannot register their executable.
  std::string storage_dir;
};

/// The service logic. Every handler runs on the GCS event loop; the tables are owned by
/// it and touched nowhere else.
class GcsServer {
 public:
  explicit GcsServer(GcsOptions options);
  ~GcsServer();

  /// Starts the loop and the gRPC server; returns the endpoint ("127.0.0.1:port").
  absl::StatusOr<std::string> Start();
  /// The HTTP server's port once started (0: none).
  int http_port() const { return http_port_; }
  void Stop();

  void HandleRegisterNode(const rpc::RegisterNodeRequest& request,
                          rpc::RegisterNodeReply* reply, rpc::Done done);
  void HandleNodeHeartbeat(const rpc::NodeHeartbeatRequest& request,
                           rpc::NodeHeartbeatReply* reply, rpc::Done done);
  void HandleGetAllNodes(const rpc::GetAllNodesRequest& request,
                         rpc::GetAllNodesReply* reply, rpc::Done done);
  void HandleRegisterJob(const rpc::RegisterJobRequest& request,
                         rpc::RegisterJobReply* reply, rpc::Done done);
  void HandleFinishJob(const rpc::FinishJobRequest& request, rpc::FinishJobReply* reply,
                       rpc::Done done);
  void HandleKvPut(const rpc::KvPutRequest& request, rpc::KvPutReply* reply,
                   rpc::Done done);
  void HandleKvGet(const rpc::KvGetRequest& request, rpc::KvGetReply* reply,
                   rpc::Done done);
  void HandleKvDel(const rpc::KvDelRequest& request, rpc::KvDelReply* reply,
                   rpc::Done done);
  void HandleKvKeys(const rpc::KvKeysRequest& request, rpc::KvKeysReply* reply,
                    rpc::Done done);
  void HandleRegisterActor(const rpc::RegisterActorRequest& request,
                           rpc::RegisterActorReply* reply, rpc::Done done);
  void HandleCreateActor(const rpc::CreateActorRequest& request, rpc::CreateActorReply* reply,
                         rpc::Done done);
  void HandleGetActorInfo(const rpc::GetActorInfoRequest& request,
                          rpc::GetActorInfoReply* reply, rpc::Done done);
  void HandleGetNamedActor(const rpc::GetNamedActorRequest& request,
                           rpc::GetNamedActorReply* reply, rpc::Done done);
  void HandleKillActor(const rpc::KillActorRequest& request, rpc::KillActorReply* reply,
                       rpc::Done done);
  void HandleReportActorExit(const rpc::ReportActorExitRequest& request,
                             rpc::ReportActorExitReply* reply, rpc::Done done);
  void HandleReportWorkerDeath(const rpc::ReportWorkerDeathRequest& request,
                               rpc::ReportWorkerDeathReply* reply, rpc::Done done);
  void HandlePublishLogs(const rpc::PublishLogsRequest& request, rpc::PublishLogsReply* reply,
                         rpc::Done done);
  void HandleGetLogs(const rpc::GetLogsRequest& request, rpc::GetLogsReply* reply,
                     rpc::Done done);
  void HandleUploadExecutable(const rpc::UploadExecutableRequest& request,
                              rpc::UploadExecutableReply* reply, rpc::Done done);
  void HandleReadExecutable(const rpc::ReadExecutableRequest& request,
                            rpc::ReadExecutableReply* reply, rpc::Done done);
  // Placement groups (gcs_server_placement.cc).
  void HandleCreatePlacementGroup(const rpc::CreatePlacementGroupRequest& request,
                                  rpc::CreatePlacementGroupReply* reply, rpc::Done done);
  void HandleGetPlacementGroup(const rpc::GetPlacementGroupRequest& request,
                               rpc::GetPlacementGroupReply* reply, rpc::Done done);
  void HandleListPlacementGroups(const rpc::ListPlacementGroupsRequest& request,
                                 rpc::ListPlacementGroupsReply* reply, rpc::Done done);
  void HandleRemovePlacementGroup(const rpc::RemovePlacementGroupRequest& request,
                                  rpc::RemovePlacementGroupReply* reply, rpc::Done done);
  // The state API (gcs_server_state.cc).
  void HandleAddTaskEvents(const rpc::AddTaskEventsRequest& request,
                           rpc::AddTaskEventsReply* reply, rpc::Done done);
  void HandleQueryState(const rpc::QueryStateRequest& request, rpc::QueryStateReply* reply,
                        rpc::Done done);
  /// Answers a state API target ("/api/v0/tasks?limit=10"): on the loop only.
  StateReply ServeState(const std::string& target);
  /// Every route of the head's HTTP server (on the loop).
  http::Response ServeHttp(const http::Request& request);

 private:
  struct JobEntry {
    rpc::RegisterJobRequest info;
    bool finished = false;
    int64_t start_ms = 0;     // wall clock
    int64_t end_ms = 0;       // once finished
    std::string driver_died;  // how, when it ended because its driver died
  };
  JobEntry* FindJob(const std::string& job_id);  // binary JobId; nullptr when unknown
  const JobEntry* FindJob(const std::string& job_id) const;
  ActorManagerDeps MakeActorDeps();
  PlacementGroupDeps MakePlacementGroupDeps();
  /// The namespace of a job (where its named actors and groups live).
  std::string NamespaceOf(const std::string& job_id) const;
  /// The (binary) id of the job whose driver is `worker_id`, or "".
  std::string JobOfDriver(const std::string& worker_id) const;
  /// Leases a worker for an actor (ActorManagerDeps::lease_worker); one placed in a
  /// placement group waits for its bundle to be placed first.
  void LeaseActorWorker(const rpc::ActorSpec& spec,
                        std::function<void(absl::Status, rpc::RequestWorkerLeaseReply,
                                           std::string)> callback);
  /// Leases a worker for the actor on `node` (nullptr or dead: infeasible).
  void LeaseActorWorkerOn(const rpc::NodeInfo* node, const rpc::ActorSpec& spec,
                          std::function<void(absl::Status, rpc::RequestWorkerLeaseReply,
                                             std::string)> callback);
  // State API rows (gcs_server_state.cc).
  StateReply ListNodes(const StateRequest& request);
  StateReply ListActors(const StateRequest& request);
  StateReply ListJobs(const StateRequest& request);
  StateReply ListPlacementGroups(const StateRequest& request);
  StateReply ListTasks(const StateRequest& request);
  StateReply SummarizeTasks(const StateRequest& request);
  StateReply SummarizeActors(const StateRequest& request);
  /// An actor's creation task changed state (the GCS runs it, not its creator): into the
  /// task table, described. FINISHED with a `result`: RUNNING and FINISHED or FAILED at
  /// the worker's times. On the loop.
  void RecordCreation(const rpc::TaskSpec& creation, rpc::TaskStatus state,
                      const std::string& node_id = "", const std::string& worker_id = "",
                      const rpc::TaskResult* result = nullptr);
  /// The warnings every task list carries (events dropped or evicted).
  std::vector<std::string> TaskWarnings() const;
  /// A unary call to the raylet at `address`, tracked so that Stop waits for it.
  template <typename Request, typename Reply, typename StartCall>
  void CallRaylet(const std::string& address, StartCall start, Request request,
                  std::function<void(absl::Status, Reply)> callback, int64_t timeout_ms);
  /// Gives bundles back at a raylet, trying again while it lives.
  void ReturnBundles(const std::string& address, rpc::ReturnBundlesRequest request, int tries,
                     std::function<void(rpc::ReturnBundlesReply)> done);
  /// Gives back `lease_id` at `raylet` (a lease, or a request whose reply was lost).
  void ReturnLease(std::shared_ptr<rpc::RayletService::Stub> raylet, const std::string& lease_id,
                   bool worker_failed);
  /// A live node whose total resources fit `demand`, or nullptr: the job's driver's node
  /// when it fits (the only raylet that can start the job's workers until jobs are
  /// registered cluster-wide), else any.
  /// NodeAffinityStrategy: that node (soft: else as below); SpreadStrategy: the fitting
  /// nodes in turn.
  const rpc::NodeInfo* PickNode(const rpc::ActorSpec& spec);

  GcsOptions options_;
  EventLoop loop_{"lumen-gcs"};
  rpc::CallTracker calls_;  // to raylets and workers; Stop cancels and waits for them
  std::unique_ptr<grpc::Service> service_;
  rpc::Server server_;
  // Loop-only state.
  std::map<uint32_t, JobEntry> jobs_;
  uint32_t next_job_ = 1;
  uint64_t spread_next_ = 0;
  std::map<std::string, std::map<std::string, std::string>> kv_;  // ns -> key -> value
  ActorManager actors_;
  LogChannel logs_;
  NodeManager nodes_;
  ExecutableStore executables_;
  PlacementGroupManager placement_groups_;  // uses nodes_
  TaskEventTable task_events_;
  std::unique_ptr<http::Server> http_;  // runs on loop_
  int http_port_ = 0;
};

}  // namespace lumen::gcs
