#include "core_worker/clients.h"

#include "core_worker.grpc.pb.h"
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
        std::move(request), std::move(callback));
  }

 private:
  std::unique_ptr<rpc::RayletService::Stub> stub_;
};

class GrpcWorkerClient final : public WorkerClient {
 public:
  explicit GrpcWorkerClient(const std::string& endpoint)
      : stub_(rpc::CoreWorkerService::NewStub(rpc::MakeChannel(endpoint))) {}

  void PushTasks(rpc::PushTasksRequest request,
                 ReplyCallback<rpc::PushTasksReply> callback) override {
    rpc::CallUnary<rpc::PushTasksRequest, rpc::PushTasksReply>(
        [this](auto... args) { stub_->async()->PushTasks(args...); }, std::move(request),
        std::move(callback));
  }

 private:
  std::unique_ptr<rpc::CoreWorkerService::Stub> stub_;
};

}  // namespace

std::unique_ptr<RayletClient> MakeGrpcRayletClient(const std::string& endpoint) {
  return std::make_unique<GrpcRayletClient>(endpoint);
}

WorkerClientFactory MakeGrpcWorkerClientFactory() {
  return [](const std::string& endpoint) -> std::shared_ptr<WorkerClient> {
    return std::make_shared<GrpcWorkerClient>(endpoint);
  };
}

}  // namespace lumen::core
