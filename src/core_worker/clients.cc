#include "core_worker/clients.h"

#include <atomic>

#include "absl/strings/match.h"

#include "core_worker.grpc.pb.h"
#include "gcs.grpc.pb.h"
#include "raylet.grpc.pb.h"
#include "rpc/rpc.h"

namespace lumen::core {
namespace {

class GrpcRayletClient final : public RayletClient {
 public:
  explicit GrpcRayletClient(const std::string& endpoint)
      : stub_(rpc::RayletService::NewStub(rpc::MakeChannel(endpoint))) {}

  void RequestWorkerLease(rpc::RequestWorkerLeaseRequest request,
                          ReplyCallback<rpc::RequestWorkerLeaseReply> callback) override {
    rpc::CallUnary<rpc::RequestWorkerLeaseRequest, rpc::RequestWorkerLeaseReply>(
        [this](auto... args) { stub_->async()->RequestWorkerLease(args...); },
        std::move(request), std::move(callback));
  }
  void ReturnWorkerLease(rpc::ReturnWorkerLeaseRequest request,
                         ReplyCallback<rpc::ReturnWorkerLeaseReply> callback) override {
    rpc::CallUnary<rpc::ReturnWorkerLeaseRequest, rpc::ReturnWorkerLeaseReply>(
        [this](auto... args) { stub_->async()->ReturnWorkerLease(args...); },
        std::move(request), std::move(callback), kQuickCallMs);
  }
  void CancelWorkerLeases(rpc::CancelWorkerLeasesRequest request,
                          ReplyCallback<rpc::CancelWorkerLeasesReply> callback) override {
    rpc::CallUnary<rpc::CancelWorkerLeasesRequest, rpc::CancelWorkerLeasesReply>(
        [this](auto... args) { stub_->async()->CancelWorkerLeases(args...); },
        std::move(request), std::move(callback), kQuickCallMs);
  }

 private:
  // Calls a raylet answers at once: bounded, in case its node froze.
  static constexpr int64_t kQuickCallMs = 10000;
  std::unique_ptr<rpc::RayletService::Stub> stub_;
};

class GrpcWorkerClient final : public WorkerClient {
 public:
  explicit GrpcWorkerClient(const std::string& endpoint)
      : channel_(rpc::MakeChannel(endpoint)), stub_(rpc::CoreWorkerService::NewStub(channel_)) {}

  void PushTasks(rpc::PushTasksRequest request,
                 ReplyCallback<rpc::PushTasksReply> callback) override {
    // Once the connection was up, a channel that is not READY any more lost it: the
    // worker's process is gone (its socket path is never reused by another process).
    bool was_connected = connected_.load(std::memory_order_relaxed);
    bool ready = channel_->GetState(/*try_to_connect=*/false) == GRPC_CHANNEL_READY;
    if (ready) connected_.store(true, std::memory_order_relaxed);
    bool gone_before_send = was_connected && !ready;
    rpc::CallUnary<rpc::PushTasksRequest, rpc::PushTasksReply>(
        [this](auto... args) { stub_->async()->PushTasks(args...); }, std::move(request),
        [gone_before_send, callback = std::move(callback)](absl::Status status,
                                                           rpc::PushTasksReply&& reply) {
          bool refused = status.code() == absl::StatusCode::kUnavailable &&
                         (gone_before_send ||
                          absl::StrContains(status.message(), "failed to connect") ||
                          absl::StrContains(status.message(), "Connection refused"));
          callback(refused ? MarkNotDelivered(status) : status, std::move(reply));
        });
  }

 private:
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<rpc::CoreWorkerService::Stub> stub_;
  std::atomic<bool> connected_{false};
};

class GrpcGcsActorClient final : public GcsActorClient {
 public:
  explicit GrpcGcsActorClient(const std::string& endpoint)
      : stub_(rpc::GcsService::NewStub(rpc::MakeChannel(endpoint))) {}

  std::function<void()> GetActorInfo(rpc::GetActorInfoRequest request,
                                     ReplyCallback<rpc::GetActorInfoReply> callback) override {
    auto context = rpc::CallUnary<rpc::GetActorInfoRequest, rpc::GetActorInfoReply>(
        [this](auto... args) { stub_->async()->GetActorInfo(args...); }, std::move(request),
        std::move(callback));
    return [context] { context->TryCancel(); };
  }

 private:
  std::unique_ptr<rpc::GcsService::Stub> stub_;
};

// Pushes over a frame connection: the caller's thread writes the request, the reply
// comes back on the frame loop's thread.
class FrameWorkerClient final : public WorkerClient {
 public:
  FrameWorkerClient(std::shared_ptr<rpc::FrameConnection> connection,
                    std::shared_ptr<PushRoutes> routes)
      : connection_(std::move(connection)), routes_(std::move(routes)) {}
  ~FrameWorkerClient() override { connection_->Close(); }
  void Abort() override { connection_->Close(); }
  bool Broken() const override { return connection_->Closed(); }

  void PushTasks(rpc::PushTasksRequest request,
                 ReplyCallback<rpc::PushTasksReply> callback) override {
    std::vector<TaskId> tasks;
    if (routes_) {
      tasks.reserve(size_t(request.tasks_size()));
      for (const rpc::TaskSpec& task : request.tasks()) {
        tasks.push_back(TaskId::FromBinary(task.task_id()));
      }
      routes_->Add(tasks, connection_);
    }
    rpc::FrameConnection::ReplyCallback on_reply =
        [callback = std::move(callback), tasks = std::move(tasks), routes = routes_,
         connection = std::weak_ptr(connection_)](absl::Status status, std::string bytes) {
          if (routes) routes->Remove(tasks, connection);
          rpc::PushTasksReply reply;
          if (status.ok() && !reply.ParseFromString(bytes)) {
            status = absl::DataLossError("the worker sent a malformed PushTasks reply");
          }
          callback(status, std::move(reply));
        };
    if (!rpc::faults::Intercept(rpc::MethodOf<rpc::PushTasksRequest>(), &on_reply)) return;
    connection_->Call(request.SerializeAsString(), std::move(on_reply));
  }

 private:
  std::shared_ptr<rpc::FrameConnection> connection_;
  std::shared_ptr<PushRoutes> routes_;
};

}  // namespace

void PushRoutes::Add(const std::vector<TaskId>& tasks,
                     const std::shared_ptr<rpc::FrameConnection>& connection) {
  MutexLock lock(&mutex_);
  for (const TaskId& task : tasks) routes_[task] = connection;
}

void PushRoutes::Remove(const std::vector<TaskId>& tasks,
                        const std::weak_ptr<rpc::FrameConnection>& connection) {
  MutexLock lock(&mutex_);
  for (const TaskId& task : tasks) {
    auto it = routes_.find(task);
    // Not a later push of the same task, on another connection (a retry).
    bool same = it != routes_.end() && !it->second.owner_before(connection) &&
                !connection.owner_before(it->second);
    if (same) routes_.erase(it);
  }
}

std::shared_ptr<rpc::FrameConnection> PushRoutes::Find(const TaskId& task) {
  MutexLock lock(&mutex_);
  auto it = routes_.find(task);
  return it == routes_.end() ? nullptr : it->second.lock();
}

std::string PushSocketPath(const std::string& endpoint) {
  const std::string scheme = "unix:", suffix = ".sock";
  if (!absl::StartsWith(endpoint, scheme) || !absl::EndsWith(endpoint, suffix)) return "";
  return endpoint.substr(scheme.size(), endpoint.size() - scheme.size() - suffix.size()) +
         ".push";
}

WorkerClientFactory MakeFrameWorkerClientFactory(rpc::FrameLoop* loop,
                                                 WorkerClientFactory fallback,
                                                 std::shared_ptr<PushRoutes> routes) {
  return [loop, fallback = std::move(fallback), routes = std::move(routes)](
             const std::string& endpoint,
             const std::string& frame_address) -> std::shared_ptr<WorkerClient> {
    std::string path = PushSocketPath(endpoint);
    absl::StatusOr<std::shared_ptr<rpc::FrameConnection>> connection =
        absl::NotFoundError("no frame listener");
    if (!path.empty()) {
      connection = loop->Connect(path);
    } else if (!frame_address.empty()) {
      connection = loop->ConnectTcp(frame_address);
    }
    if (connection.ok()) {
      return std::make_shared<FrameWorkerClient>(std::move(*connection), routes);
    }
    return fallback(endpoint, frame_address);
  };
}

WorkerClientFactory WorkerClientRegistry::Wrap(WorkerClientFactory factory) {
  return [clients = clients_, factory = std::move(factory)](
             const std::string& endpoint,
             const std::string& frame_address) -> std::shared_ptr<WorkerClient> {
    std::shared_ptr<WorkerClient> client = factory(endpoint, frame_address);
    MutexLock lock(&clients->mutex);
    std::vector<std::weak_ptr<WorkerClient>>& list = clients->by_endpoint[endpoint];
    std::erase_if(list, [](const auto& weak) { return weak.expired(); });
    list.push_back(client);
    if (++clients->made % 1024 == 0) {  // now and then, forget endpoints with none alive
      absl::erase_if(clients->by_endpoint, [](auto& entry) {
        std::erase_if(entry.second, [](const auto& weak) { return weak.expired(); });
        return entry.second.empty();
      });
    }
    return client;
  };
}

void WorkerClientRegistry::Abort(const std::string& endpoint) {
  std::vector<std::weak_ptr<WorkerClient>> list;
  {
    MutexLock lock(&clients_->mutex);
    auto it = clients_->by_endpoint.find(endpoint);
    if (it == clients_->by_endpoint.end()) return;
    list = std::move(it->second);
    clients_->by_endpoint.erase(it);
  }
  for (const auto& weak : list) {
    if (std::shared_ptr<WorkerClient> client = weak.lock()) client->Abort();
  }
}

std::unique_ptr<GcsActorClient> MakeGrpcGcsActorClient(const std::string& endpoint) {
  return std::make_unique<GrpcGcsActorClient>(endpoint);
}

std::unique_ptr<RayletClient> MakeGrpcRayletClient(const std::string& endpoint) {
  return std::make_unique<GrpcRayletClient>(endpoint);
}

RayletFactory MakeGrpcRayletFactory() {
  struct Cache {
    Mutex mutex;
    absl::flat_hash_map<std::string, std::shared_ptr<RayletClient>> clients
        ABSL_GUARDED_BY(mutex);
  };
  auto cache = std::make_shared<Cache>();
  return [cache](const std::string& address) {
    MutexLock lock(&cache->mutex);
    auto& client = cache->clients[address];
    if (client == nullptr) client = std::make_shared<GrpcRayletClient>(address);
    return client;
  };
}

WorkerClientFactory MakeGrpcWorkerClientFactory() {
  return [](const std::string& endpoint, const std::string&) -> std::shared_ptr<WorkerClient> {
    return std::make_shared<GrpcWorkerClient>(endpoint);
  };
}

}  // namespace lumen::core
