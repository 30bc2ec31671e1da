// gRPC plumbing shared by every service and client: status mapping, channels, servers,
// and one generic helper for unary calls on gRPC's callback API.
#pragma once

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "rpc/fault_injection.h"

namespace lumen::rpc {

/// The largest message any lumen service accepts (values travel inline until the
/// shared-memory store carries large ones).
constexpr int kMaxMessageBytes = 1024 * 1024 * 1024;

inline grpc::Status ToGrpc(const absl::Status& s) {
  return grpc::Status(static_cast<grpc::StatusCode>(s.code()), std::string(s.message()));
}
inline absl::Status FromGrpc(const grpc::Status& s) {
  return absl::Status(static_cast<absl::StatusCode>(s.error_code()), s.error_message());
}

/// True when a failed call surely never reached its peer (the connection was already
/// gone when it was sent): resending it cannot run anything twice.
bool NotDelivered(const absl::Status& status);
/// Marks a failed call's status as NotDelivered.
absl::Status MarkNotDelivered(absl::Status status);

/// Completion of a handler: the handler fills the reply, then calls this once.
using Done = std::function<void(absl::Status)>;

/// A channel to `endpoint` ("unix:/path" or "host:port") with lumen's limits.
std::shared_ptr<grpc::Channel> MakeChannel(const std::string& endpoint);

/// A gRPC server hosting callback services on one listening address.
class Server {
 public:
  Server() = default;
  ~Server() { Shutdown(); }
  /// `address` is "unix:/path" or "host:port" (port 0 picks a free one). Returns the
  /// endpoint clients should use.
  absl::StatusOr<std::string> Start(const std::string& address,
                                    const std::vector<grpc::Service*>& services);
  /// The same services on several addresses (a local Unix socket and a TCP port, say);
  /// the endpoints in the same order.
  absl::StatusOr<std::vector<std::string>> Start(const std::vector<std::string>& addresses,
                                                 const std::vector<grpc::Service*>& services);
  /// Cancels in-flight calls after `deadline_ms` and stops. Idempotent.
  void Shutdown(int deadline_ms = 200);

 private:
  std::unique_ptr<grpc::Server> server_;
};

/// The RPC's name ("PushTasks") from its request type, for fault injection.
template <typename Request>
const std::string& MethodOf() {
  static const std::string name = [] {
    std::string type(Request::descriptor()->name());
    constexpr std::string_view kSuffix = "Request";
    if (type.ends_with(kSuffix)) type.resize(type.size() - kSuffix.size());
    return type;
  }();
  return name;
}

/// One unary call on the callback API. `start(ctx, req, reply, on_done)` is the stub's
/// async method (e.g. `stub->async()->PushTasks`); `callback` runs on a gRPC thread with
/// the status and reply. timeout_ms < 0: no deadline. The returned context may be used to
/// TryCancel the call (harmless once it has completed); ignoring it is fine. `context`,
/// when given, is the one the call uses (made by a caller that must know it beforehand).
template <typename Request, typename Reply, typename Start>
std::shared_ptr<grpc::ClientContext> CallUnary(
    Start&& start, Request request, std::function<void(absl::Status, Reply&&)> callback,
    int64_t timeout_ms = -1, std::shared_ptr<grpc::ClientContext> context = nullptr) {
  struct Call {
    std::shared_ptr<grpc::ClientContext> context;
    Request request;
    Reply reply;
    std::function<void(absl::Status, Reply&&)> callback;
    // Publishes everything the starting thread wrote (the call, and gRPC's own state made
    // in start()) to the thread that completes it. gRPC synchronises this itself; the
    // explicit edge lets ThreadSanitizer see it too.
    std::atomic<bool> started{false};
  };
  if (!context) context = std::make_shared<grpc::ClientContext>();
  if (!faults::Intercept(MethodOf<Request>(), &callback)) return context;
  auto* call = new Call();
  call->context = std::move(context);
  call->request = std::move(request);
  call->callback = std::move(callback);
  if (timeout_ms >= 0) {
    call->context->set_deadline(std::chrono::system_clock::now() +
                                std::chrono::milliseconds(timeout_ms));
  }
  std::shared_ptr<grpc::ClientContext> used = call->context;
  start(used.get(), &call->request, &call->reply, [call](grpc::Status status) {
    // Completion can race the end of start(); it is at most a few instructions away.
    while (!call->started.load(std::memory_order_acquire)) std::this_thread::yield();
    std::unique_ptr<Call> owned(call);
    owned->callback(FromGrpc(status), std::move(owned->reply));
  });
  call->started.store(true, std::memory_order_release);
  return used;
}

/// A blocking unary call (for start-up and shutdown paths, never on an event loop).
template <typename Request, typename Reply, typename Method>
absl::StatusOr<Reply> CallBlocking(Method&& method, const Request& request,
                                   int64_t timeout_ms) {
  faults::Injection injection = faults::Draw(MethodOf<Request>());
  if (injection.delay_ms > 0) {
    std::this_thread::sleep_for(std::chrono::milliseconds(injection.delay_ms));
  }
  if (injection.fault == faults::Fault::kRequest) {
    return faults::Error(MethodOf<Request>(), injection.fault);
  }
  grpc::ClientContext context;
  if (timeout_ms >= 0) {
    context.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::milliseconds(timeout_ms));
  }
  Reply reply;
  grpc::Status status = method(&context, request, &reply);
  if (!status.ok()) return FromGrpc(status);
  if (injection.fault == faults::Fault::kReply) {
    return faults::Error(MethodOf<Request>(), injection.fault);
  }
  return reply;
}

}  // namespace lumen::rpc

/// Inside a CallbackService adapter: forwards `Method` to `handler->HandleMethod(request,
/// reply, done)`; the handler replies by calling done (on any thread).
#define LUMEN_RPC_FORWARD(handler, Method)                                          \
  grpc::ServerUnaryReactor* Method(grpc::CallbackServerContext* context,            \
                                   const ::lumen::rpc::Method##Request* request,                \
                                   ::lumen::rpc::Method##Reply* reply) override {    \
    auto* reactor = context->DefaultReactor();                                      \
    (handler)->Handle##Method(*request, reply, [reactor](absl::Status status) {     \
      reactor->Finish(::lumen::rpc::ToGrpc(status));                                \
    });                                                                             \
    return reactor;                                                                 \
  }
