// The core worker: lumen's runtime inside every driver and worker process. Owns the
// in-process object store and reference counts, submits tasks, serves its objects to
// borrowers and (in a worker) executes pushed tasks.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/event_loop.h"
#include "common/ids.h"
#include "core_worker.grpc.pb.h"
#include "core_worker/actor_submitter.h"
#include "core_worker/clients.h"
#include "core_worker/lineage.h"
#include "core_worker/memory_store.h"
#include "core_worker/peer_watch.h"
#include "core_worker/reference_counter.h"
#include "core_worker/store_client.h"
#include "core_worker/task_events.h"
#include "core_worker/task_executor.h"
#include "core_worker/task_submitter.h"
#include "gcs.grpc.pb.h"
#include "raylet.grpc.pb.h"
#include "rpc/frame_loop.h"
#include "rpc/rpc.h"

namespace lumen::core {

struct CoreWorkerOptions {
  bool is_worker = false;
  std::string listen_socket;    // this process's CoreWorkerService: unix:<path>
  std::string node_ip = "127.0.0.1";  // ... and on TCP there, for other nodes
  std::string raylet_endpoint;
  std::string gcs_endpoint;
  JobId job_id;
  WorkerId worker_id;
  NodeId node_id;
  // How raylets launch this program as the job's workers (its executable by digest,
  // argv); the driver and worker ids in it are filled in by the core worker.
  rpc::JobLaunchInfo launch;
  // Record task events and send them to the GCS (core_worker/task_events.h).
  bool task_events = true;
};

struct TaskOptionsInternal {
  std::string name;
  std::map<std::string, double> resources;
  int max_retries = 3;
  bool retry_exceptions = false;
  rpc::SchedulingStrategy scheduling;
};

struct ActorCreationOptions {
  std::string name;
  std::string namespace_;
  bool detached = false;
  std::map<std::string, double> resources;
  int max_restarts = 0;
  int max_task_retries = 0;
  int max_concurrency = 1;
  rpc::SchedulingStrategy scheduling;
};

/// A demand placed in a placement-group bundle (scheduling kind PLACEMENT_GROUP) becomes
/// a demand of the bundle's resources (common/bundles.h); others are left as they are.
void PlaceInBundle(const rpc::SchedulingStrategy& where,
                   google::protobuf::Map<std::string, double>* resources);

struct CreatedActor {
  std::string actor_id;  // binary
  /// Stands for its handles (ObjectId::ForActorHandle), owned here with one local ref
  /// for the handle made now; the actor ends when it is freed. Empty id: a named or
  /// detached actor, whose handles are not counted.
  rpc::ObjectRefProto handle;
};

class CoreWorker {
 public:
  /// Starts the service and registers with the raylet (as driver or worker).
  static absl::StatusOr<std::unique_ptr<CoreWorker>> Create(CoreWorkerOptions options);
  ~CoreWorker();

  /// Stops submitting and serving; returns leases. Safe to call twice.
  void Shutdown();
  /// After the peers are gone: waits (bounded) for RPC callbacks still in flight.
  void WaitForCallbacks();

  // Objects. Ids are binary ObjectIds; `owner` endpoints.
  /// Values above the store's inline limit go to the node store (ResourceExhausted:
  /// the store is full).
  absl::StatusOr<rpc::ObjectRefProto> Put(std::string data,
                                          std::vector<rpc::ObjectRefProto> nested);
  /// Put of `size` bytes that `write` fills where they are stored (one copy).
  absl::StatusOr<rpc::ObjectRefProto> PutWith(uint64_t size,
                                              const std::function<void(uint8_t*)>& write);
  /// DeadlineExceeded when the timeout passes; otherwise one object (value or error) per
  /// ref. timeout < 0: forever.
  absl::StatusOr<std::vector<ObjectPtr>> Get(const std::vector<rpc::ObjectRefProto>& refs,
                                             std::chrono::milliseconds timeout);
  std::vector<bool> Wait(const std::vector<rpc::ObjectRefProto>& refs, int num_returns,
                         std::chrono::milliseconds timeout);
  void AddLocalRef(const std::string& id, const std::string& owner);
  void RemoveLocalRef(const std::string& id);
  /// One more use of `id` (a task result's ref until the caller has it).
  void HoldRef(const std::string& id) { refs_.AddTaskUse(ObjectId::FromBinary(id)); }

  // Borrower protocol (core_worker_refs.cc).
  /// Registers this process with the owners of the refs it deserialized and does not yet
  /// hold registered (blocking: the container they came from must still be held).
  void RegisterBorrowed();
  /// A task's result holds `returned` (each held once by HoldRef): register `caller` as
  /// their borrower with their owners when `delivered`, then release the holds.
  void HandOffReturned(const std::string& caller,
                       const std::vector<detail::RefData>& returned, bool delivered);
  /// The number of objects this process owns or borrows (for tests and memory reports).
  size_t NumTrackedRefs() { return refs_.NumTracked(); }

  /// lumen::Cancel: drops the task that makes `ref` if it has not been sent to a worker
  /// yet; with `force`, kills the worker of one that has. OK for a finished task;
  /// InvalidArgument for a ref that is not a task result owned here (a Put, an actor
  /// call, a borrowed ref).
  absl::Status Cancel(const rpc::ObjectRefProto& ref, bool force);
  /// Submits a task; returns the ref of its return object (counted once for the caller).
  absl::StatusOr<rpc::ObjectRefProto> SubmitTask(const std::string& function_name,
                                                 std::vector<rpc::TaskArg> args,
                                                 const TaskOptionsInternal& options);

  // Actors (core_worker_actors.cc). Ids are binary ActorIds.
  /// Registers the actor with the GCS (AlreadyExists: the name is taken) and sends the
  /// factory call once the arguments owned here are ready.
  absl::StatusOr<CreatedActor> CreateActor(const std::string& factory,
                                          const std::string& class_name,
                                          std::vector<rpc::TaskArg> args,
                                          const ActorCreationOptions& options);
  /// FailedPrecondition (with the cause) when the actor is known to be dead. `handle`
  /// (binary ObjectId; empty: not counted) is held until the call ends, so that the
  /// actor outlives the calls made to it.
  absl::StatusOr<rpc::ObjectRefProto> SubmitActorTask(const std::string& actor_id,
                                                      const std::string& handle,
                                                      const std::string& method,
                                                      std::vector<rpc::TaskArg> args,
                                                      const std::string& name);
  absl::Status KillActor(const std::string& actor_id, bool no_restart);
  /// The last handle to an actor created here is gone, everywhere: it ends (async).
  void OnActorOutOfScope(const ActorId& actor);
  /// The live actor `name` (found = false when none); `ns` empty: this job's namespace.
  absl::StatusOr<rpc::GetNamedActorReply> GetNamedActor(const std::string& name,
                                                        const std::string& ns);
  /// The hosted actor's incarnation; -1 outside an actor.
  int ActorIncarnation() { return executor_ ? executor_->ActorIncarnation() : -1; }

  /// Worker: runs tasks on this thread until the raylet or the owner says exit.
  void RunTaskLoop();

  /// This process's TCP address: how every process of the cluster reaches it, and its
  /// identity as an owner (ObjectRefProto::owner).
  const std::string& endpoint() const { return endpoint_; }
  const CoreWorkerOptions& options() const { return options_; }
  /// The node store (nullptr before registration).
  StoreClient* store_client() const { return store_client_.get(); }
  /// Puts `bytes` in the node store as `id`, owned by `owner` (a task result: the
  /// caller). False when they are small enough to stay inline.
  absl::StatusOr<bool> MaybePutInStore(const ObjectId& id, const std::string& owner,
                                       const std::string& bytes);
  TaskContext CurrentTask() { return executor_->CurrentContext(); }

  // CoreWorkerService.
  void HandlePushTasks(const rpc::PushTasksRequest& request, rpc::PushTasksReply* reply,
                       rpc::Done done);
  void HandleGetObject(const rpc::GetObjectRequest& request, rpc::GetObjectReply* reply,
                       rpc::Done done);
  void HandleAddBorrowers(const rpc::AddBorrowersRequest& request,
                          rpc::AddBorrowersReply* reply, rpc::Done done);
  void HandleRemoveBorrowers(const rpc::RemoveBorrowersRequest& request,
                             rpc::RemoveBorrowersReply* reply, rpc::Done done);
  void HandleExit(const rpc::ExitRequest& request, rpc::ExitReply* reply, rpc::Done done);
  void HandleCancelTask(const rpc::CancelTaskRequest& request, rpc::CancelTaskReply* reply,
                        rpc::Done done);
  /// A PushTasks request that came over the frame loop (tasks and actor calls from this
  /// node's processes).
  void HandleFramePush(const std::shared_ptr<rpc::FrameConnection>& connection, uint64_t id,
                       std::string payload);

 private:
  explicit CoreWorker(CoreWorkerOptions options);
  absl::Status Start();
  /// Starts fetching a borrowed object from its owner into the local store; with
  /// `lost_node`, tells the owner that its copy there was lost with that (dead) node.
  void FetchFromOwner(const ObjectId& id, const std::string& owner,
                      const std::string& lost_node = "");
  /// Get, with up to `rebuilds` rounds of recovering objects lost with their nodes.
  absl::StatusOr<std::vector<ObjectPtr>> GetRounds(const std::vector<rpc::ObjectRefProto>& refs,
                                                   std::chrono::milliseconds timeout,
                                                   int rebuilds);
  /// Why placement group `group_id` was removed, or "" (SubmitterDeps).
  std::string PlacementGroupRemoved(const std::string& group_id);
  std::string ClusterCapacity();
  void NotifyBlocked(bool blocked);
  TaskId NextPutTaskId();
  /// Sends the buffered task events to the GCS: asynchronously (one flush in flight at a
  /// time), or at shutdown blocking, bounded.
  void FlushTaskEvents(bool blocking);
  /// A hosted actor called ExitActor: dead in the GCS before this worker stops.
  void ReportActorExit(const std::string& actor_id);
  /// Sends the factory call of a registered actor (its owned arguments resolved).
  void SendActorCreation(const ActorId& actor_id, const rpc::TaskSpec& creation);
  absl::Status ConnectStore(const rpc::ObjectStoreInfo& info);
  /// How other nodes' raylets start this job's workers.
  rpc::JobLaunchInfo JobLaunch() const;
  /// Large by-value arguments go to the node store and become owned references (one
  /// handle each in `promoted`, dropped by ReleasePromoted once the task holds them).
  absl::Status PromoteLargeArgs(std::vector<rpc::TaskArg>* args,
                                std::vector<ObjectId>* promoted);
  void ReleasePromoted(const std::vector<ObjectId>& promoted);
  /// Replaces node-store markers by pinned views (or errors) in place; objects of other
  /// nodes' stores are pulled to this node's first.
  /// A copy that could not be read: the object's index, and the node that held it.
  struct LostCopy {
    size_t index;
    std::string node;
  };
  void ResolveStored(std::vector<ObjectPtr>* objects, const std::vector<ObjectId>& ids,
                     const std::vector<rpc::ObjectRefProto>& refs, std::vector<LostCopy>* lost);

  // Objects lost with their nodes (core_worker_recovery.cc).
  /// Waits (bounded) for the GCS to declare `node` dead; false when it stays alive (the
  /// copy failed for another reason) or the GCS does not answer.
  bool AwaitNodeDeath(const std::string& node);
  /// Owned `id`'s stored copy is gone: runs the task that made it again (its lineage),
  /// unless a rebuild is under way. Then Get waits for it anew.
  absl::Status Rebuild(const ObjectId& id);
  /// `ref`'s copy on dead `node` is gone: rebuilds it (owned) or asks its owner to
  /// (borrowed). OK: a Get may wait for it again.
  absl::Status Recover(const rpc::ObjectRefProto& ref, const std::string& node);
  void OnFree(const ReferenceCounter::Freed& freed);
  /// Tells the worker at `endpoint` that `task`, pushed to it, is cancelled; `will_skip`
  /// runs when the worker says it will not run it.
  void CancelOnWorker(const std::string& endpoint, const TaskId& task,
                      std::function<void()> will_skip);
  /// The GCS says these processes are gone (exited, or their node was declared dead):
  /// they borrow nothing any more, pushes to them fail (and retry by the usual rules),
  /// fetches from them as owners fail with OwnerDied.
  void OnPeersGone(const std::vector<std::string>& addresses);
  /// A stub to the core worker at `endpoint` (cached).
  std::shared_ptr<rpc::CoreWorkerService::Stub> PeerStub(const std::string& endpoint);
  using IdsByOwner = absl::flat_hash_map<std::string, std::vector<ObjectId>>;
  /// Registers `borrower` with every owner at once (blocking, kRegisterTimeoutMs in all,
  /// however many owners); per owner and id, whether the owner counted it. An owner known
  /// gone is not asked; one that does not answer is logged.
  absl::flat_hash_map<std::string, std::vector<bool>> AddBorrowers(const IdsByOwner& by_owner,
                                                                   const std::string& borrower);
  /// Gives registrations back to their owners (asynchronously unless `wait`).
  void SendRemoveBorrowers(const std::vector<ReferenceCounter::Freed>& freed, bool wait);
  /// A new owned object with one handle (the ref returned to the user).
  rpc::ObjectRefProto AddPut(const ObjectId& id, ObjectPtr object);
  /// Frees an owned object's copies: the primary on `store_node`, and those pulled to
  /// other nodes (AddCopy).
  void FreeInStore(const ObjectId& id, const std::string& store_node);
  /// `node` pulls a copy of owned `id` (it asked where the object is).
  void AddCopy(const ObjectId& id, const std::string& node);
  /// Values above the store's inline limit go to the node store.
  bool GoesToStore(uint64_t size) const {
    return store_client_ && size > store_client_->max_inline_bytes();
  }

  CoreWorkerOptions options_;
  std::string endpoint_;        // TCP (see endpoint())
  std::string local_endpoint_;  // unix:, for this node's raylet and workers
  std::string frame_address_;   // workers: TCP "ip:port" where other nodes push (frames)
  MemoryStore store_;
  ReferenceCounter refs_;
  Lineage lineage_;  // how owned results in node stores were made
  EventLoop timers_{"lumen-cw-timers"};
  std::unique_ptr<rpc::RayletService::Stub> raylet_;
  std::unique_ptr<RayletClient> raylet_client_;
  std::unique_ptr<rpc::GcsService::Stub> gcs_;
  std::unique_ptr<TaskSubmitter> submitter_;
  std::unique_ptr<GcsActorClient> gcs_actor_client_;
  std::unique_ptr<ActorSubmitter> actor_submitter_;
  std::unique_ptr<TaskExecutor> executor_;
  std::unique_ptr<StoreClient> store_client_;
  std::unique_ptr<grpc::Service> service_;
  rpc::Server server_;
  rpc::FrameLoop frames_;  // pushes to and from this node's workers (PushSocketPath)
  std::shared_ptr<PushRoutes> push_routes_ = std::make_shared<PushRoutes>();
  Mutex last_push_mutex_;
  // Where the last frame push came from: the executor, idle, reads it (likely the next).
  std::weak_ptr<rpc::FrameConnection> last_push_ ABSL_GUARDED_BY(last_push_mutex_);
  RpcTracker rpcs_;
  std::unique_ptr<TaskEvents> task_events_;
  std::atomic<bool> flush_in_flight_{false};
  TaskId driver_task_id_ = TaskId::FromRandom();  // parent of the driver's objects
  std::atomic<uint32_t> put_index_{0};
  std::atomic<bool> shutdown_{false};
  Mutex peers_mutex_;
  absl::flat_hash_map<std::string, std::shared_ptr<rpc::CoreWorkerService::Stub>> peers_
      ABSL_GUARDED_BY(peers_mutex_);
  WorkerClientRegistry worker_clients_;  // pushes to other processes, by endpoint
  std::unique_ptr<PeerWatch> peer_watch_;
  struct Fetch {  // a borrowed object asked of its owner
    std::string owner;
    std::shared_ptr<grpc::ClientContext> call;
    bool owner_gone = false;  // OnPeersGone cancelled the call
  };
  Mutex fetch_mutex_;
  absl::flat_hash_map<ObjectId, Fetch> fetching_ ABSL_GUARDED_BY(fetch_mutex_);
  // Owned objects in the store: the other nodes that pulled a copy (freed with them).
  Mutex copies_mutex_;
  absl::flat_hash_map<ObjectId, std::vector<std::string>> copies_
      ABSL_GUARDED_BY(copies_mutex_);
  // Actors created here: the refs their factory's arguments hold (values in node stores,
  // handles and refs inside values), kept while the actor may run its factory again (a
  // restart) or has not yet made its own copies. Released when its handles are all gone
  // or this process learns it is dead. An entry is made (empty) at creation: one gone
  // when the arguments are resolved means the actor ended meanwhile.
  Mutex creation_mutex_;
  absl::flat_hash_map<ActorId, std::vector<ObjectId>> creation_uses_
      ABSL_GUARDED_BY(creation_mutex_);
  /// Releases what `actor`'s creation held (nothing when it held nothing).
  void ReleaseCreationUses(const ActorId& actor);
};

}  // namespace lumen::core
