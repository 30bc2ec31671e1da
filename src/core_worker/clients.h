// The peers the task submitter talks to, as interfaces: gRPC in production
// (MakeGrpcClients), fakes in tests.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "common/ids.h"
#include "common/mutex.h"
#include "core_worker.pb.h"
#include "gcs.pb.h"
#include "raylet.pb.h"
#include "rpc/frame_loop.h"
#include "rpc/rpc.h"

namespace lumen::core {

template <typename Reply>
using ReplyCallback = std::function<void(absl::Status, Reply&&)>;

/// The local raylet's lease calls. Callbacks run on any thread, never inline with the
/// call that started them while the caller holds a lock it needs (implementations must
/// not call back synchronously).
class RayletClient {
 public:
  virtual ~RayletClient() = default;
  virtual void RequestWorkerLease(rpc::RequestWorkerLeaseRequest request,
                                  ReplyCallback<rpc::RequestWorkerLeaseReply> callback) = 0;
  virtual void ReturnWorkerLease(rpc::ReturnWorkerLeaseRequest request,
                                 ReplyCallback<rpc::ReturnWorkerLeaseReply> callback) = 0;
  virtual void CancelWorkerLeases(rpc::CancelWorkerLeasesRequest request,
                                  ReplyCallback<rpc::CancelWorkerLeasesReply> callback) = 0;
};

/// One leased worker.
class WorkerClient {
 public:
  virtual ~WorkerClient() = default;
  virtual void PushTasks(rpc::PushTasksRequest request,
                         ReplyCallback<rpc::PushTasksReply> callback) = 0;
  /// The worker's process is gone (say, its node was declared dead while it is frozen):
  /// pushes in flight fail at once, as if the connection broke. By default nothing: the
  /// connection breaks by itself when a process on this node exits.
  virtual void Abort() {}
  /// The connection is gone for good: a new client is needed to reach the worker again.
  virtual bool Broken() const { return false; }
};

/// The GCS's actor directory, as the actor submitter uses it.
class GcsActorClient {
 public:
  virtual ~GcsActorClient() = default;
  /// A long poll; the returned function cancels it (the callback still runs once).
  virtual std::function<void()> GetActorInfo(rpc::GetActorInfoRequest request,
                                             ReplyCallback<rpc::GetActorInfoReply> callback) = 0;
};

/// (rpc/rpc.h) Whether a failed PushTasks surely never reached the worker.
using rpc::MarkNotDelivered;
using rpc::NotDelivered;

/// A client to the raylet at `address` (another node's, after a spillback); cached.
using RayletFactory = std::function<std::shared_ptr<RayletClient>(const std::string& address)>;

/// Opens a client to the worker at `endpoint` (its gRPC service: "unix:..." on this node,
/// "ip:port" on another); `frame_address`, when not empty, is where that worker on
/// another node takes pushes over frames (TCP "ip:port").
using WorkerClientFactory = std::function<std::shared_ptr<WorkerClient>(
    const std::string& endpoint, const std::string& frame_address)>;

/// Where the worker listening at `endpoint` ("unix:<dir>/<name>.sock") takes pushes over
/// a FrameLoop: "<dir>/<name>.push". Empty for other endpoints.
std::string PushSocketPath(const std::string& endpoint);
/// The frame connection each pushed task's reply will come back on, while it is out: a
/// thread about to sleep until a task's result is here reads that connection itself
/// (FrameConnection::Borrow) instead of being woken by the loop's thread. Thread-safe.
class PushRoutes {
 public:
  void Add(const std::vector<TaskId>& tasks,
           const std::shared_ptr<rpc::FrameConnection>& connection);
  /// Those of `tasks` still routed to `connection`.
  void Remove(const std::vector<TaskId>& tasks,
              const std::weak_ptr<rpc::FrameConnection>& connection);
  /// nullptr when `task` is not out on a frame connection.
  std::shared_ptr<rpc::FrameConnection> Find(const TaskId& task);

 private:
  Mutex mutex_;
  absl::flat_hash_map<TaskId, std::weak_ptr<rpc::FrameConnection>> routes_
      ABSL_GUARDED_BY(mutex_);
};

/// Clients that push over `loop` to workers that listen at PushSocketPath or at their
/// frame address (TCP, another node), and over `fallback` to the others (and to those
/// that refuse the connection: gone already).
/// Frame pushes are entered in `routes` (optional) while they are out.
WorkerClientFactory MakeFrameWorkerClientFactory(rpc::FrameLoop* loop,
                                                 WorkerClientFactory fallback,
                                                 std::shared_ptr<PushRoutes> routes = nullptr);

/// Remembers the clients a factory makes, by endpoint, so that those to a process
/// announced gone can be aborted. Thread-safe; the factory Wrap returns may outlive it.
class WorkerClientRegistry {
 public:
  /// A factory that makes clients with `factory` and remembers them.
  WorkerClientFactory Wrap(WorkerClientFactory factory);
  /// Aborts the live clients to `endpoint`, and forgets them.
  void Abort(const std::string& endpoint);

 private:
  struct Clients {
    Mutex mutex;
    absl::flat_hash_map<std::string, std::vector<std::weak_ptr<WorkerClient>>> by_endpoint
        ABSL_GUARDED_BY(mutex);
    uint64_t made ABSL_GUARDED_BY(mutex) = 0;
  };
  std::shared_ptr<Clients> clients_ = std::make_shared<Clients>();
};

/// gRPC implementations, over lumen's channels.
std::unique_ptr<RayletClient> MakeGrpcRayletClient(const std::string& endpoint);
RayletFactory MakeGrpcRayletFactory();
WorkerClientFactory MakeGrpcWorkerClientFactory();
std::unique_ptr<GcsActorClient> MakeGrpcGcsActorClient(const std::string& endpoint);

}  // namespace lumen::core
