#include "rpc/rpc.h"

#include <climits>

#include "absl/strings/cord.h"

namespace lumen::rpc {
namespace {
constexpr char kNotDelivered[] = "lumen.not_delivered";
}  // namespace

bool NotDelivered(const absl::Status& status) {
  return !status.ok() && status.GetPayload(kNotDelivered).has_value();
}

absl::Status MarkNotDelivered(absl::Status status) {
  if (!status.ok()) status.SetPayload(kNotDelivered, absl::Cord("1"));
  return status;
}

std::shared_ptr<grpc::Channel> MakeChannel(const std::string& endpoint) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(kMaxMessageBytes);
  args.SetMaxSendMessageSize(kMaxMessageBytes);
  args.SetInt(GRPC_ARG_ENABLE_HTTP_PROXY, 0);
  // Reconnect quickly: peers are local processes that come and go. (Not the *minimum*
  // backoff: gRPC also uses it as the connect timeout, and a busy peer may take longer
  // than a few milliseconds to finish its handshake.)
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 50);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  // Each channel its own connection, so that peers never share a dead subchannel.
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  // Never drop an idle connection: a connection that goes away means the peer did (the
  // actor submitter relies on it to tell an undelivered push from a lost one).
  args.SetInt(GRPC_ARG_CLIENT_IDLE_TIMEOUT_MS, INT_MAX);
  return grpc::CreateCustomChannel(endpoint, grpc::InsecureChannelCredentials(), args);
}

absl::StatusOr<std::string> Server::Start(const std::string& address,
                                          const std::vector<grpc::Service*>& services) {
  grpc::ServerBuilder builder;
  int selected_port = 0;
  builder.AddListeningPort(address, grpc::InsecureServerCredentials(), &selected_port);
  builder.SetMaxReceiveMessageSize(kMaxMessageBytes);
  builder.SetMaxSendMessageSize(kMaxMessageBytes);
  for (grpc::Service* service : services) builder.RegisterService(service);
  server_ = builder.BuildAndStart();
  if (!server_) {
    return absl::UnavailableError("cannot listen on " + address);
  }
  if (address.rfind("unix:", 0) == 0) return address;
  std::string host = address.substr(0, address.rfind(':'));
  return host + ":" + std::to_string(selected_port);
}

void Server::Shutdown(int deadline_ms) {
  if (!server_) return;
  server_->Shutdown(std::chrono::system_clock::now() +
                    std::chrono::milliseconds(deadline_ms));
  server_->Wait();
  server_.reset();
}

}  // namespace lumen::rpc
