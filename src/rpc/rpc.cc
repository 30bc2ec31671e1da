#include "rpc/rpc.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>

#include "absl/strings/cord.h"

namespace lumen::rpc {
namespace {
constexpr char kNotDelivered[] = "lumen.not_delivered";

// gRPC says only that a port could not be added; a bind of our own says why (in use, no
// such address here, permission). OK when `address` is not "a.b.c.d:port" (unix sockets,
// names), whose errors gRPC's own message covers.
absl::Status CheckBindable(const std::string& address) {
  size_t colon = address.rfind(':');
  if (address.rfind("unix:", 0) == 0 || colon == std::string::npos) return absl::OkStatus();
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  int port = std::atoi(address.c_str() + colon + 1);
  if (inet_pton(AF_INET, address.substr(0, colon).c_str(), &addr.sin_addr) != 1 || port <= 0 ||
      port > 65535) {
    return absl::OkStatus();
  }
  addr.sin_port = htons(uint16_t(port));
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::OkStatus();
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));  // as gRPC does
  int rc = bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  int err = errno;
  close(fd);
  if (rc == 0) return absl::OkStatus();
  return absl::UnavailableError("cannot listen on " + address + ": " + std::strerror(err) +
                                (err == EADDRINUSE ? " (another process uses the port)" : ""));
}
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
  // Across nodes a peer can vanish without closing its connection (a host that is off,
  // a cable): pings find out, so a long poll to a dead host fails instead of hanging.
  if (endpoint.rfind("unix:", 0) != 0) {
    args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 10000);
    args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 5000);
    args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
    args.SetInt(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
  }
  return grpc::CreateCustomChannel(endpoint, grpc::InsecureChannelCredentials(), args);
}

absl::StatusOr<std::string> Server::Start(const std::string& address,
                                          const std::vector<grpc::Service*>& services) {
  auto endpoints = Start(std::vector<std::string>{address}, services);
  if (!endpoints.ok()) return endpoints.status();
  return endpoints->front();
}

absl::StatusOr<std::vector<std::string>> Server::Start(
    const std::vector<std::string>& addresses, const std::vector<grpc::Service*>& services) {
  for (const std::string& address : addresses) {
    if (absl::Status bindable = CheckBindable(address); !bindable.ok()) return bindable;
  }
  grpc::ServerBuilder builder;
  // One listener per port: without this gRPC sets SO_REUSEPORT, and a second server on a
  // busy port would start and share its connections.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  // Accept the clients' keepalive pings (MakeChannel), also between calls.
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 5000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  std::vector<int> selected_ports(addresses.size(), 0);
  for (size_t i = 0; i < addresses.size(); ++i) {
    builder.AddListeningPort(addresses[i], grpc::InsecureServerCredentials(), &selected_ports[i]);
  }
  builder.SetMaxReceiveMessageSize(kMaxMessageBytes);
  builder.SetMaxSendMessageSize(kMaxMessageBytes);
  for (grpc::Service* service : services) builder.RegisterService(service);
  server_ = builder.BuildAndStart();
  std::string all;
  for (const std::string& address : addresses) all += (all.empty() ? "" : ", ") + address;
  if (!server_) return absl::UnavailableError("cannot listen on " + all);
  std::vector<std::string> endpoints;
  for (size_t i = 0; i < addresses.size(); ++i) {
    const std::string& address = addresses[i];
    if (address.rfind("unix:", 0) == 0) {
      endpoints.push_back(address);
    } else {
      endpoints.push_back(address.substr(0, address.rfind(':')) + ":" +
                          std::to_string(selected_ports[i]));
    }
  }
  return endpoints;
}

void Server::Shutdown(int deadline_ms) {
  if (!server_) return;
  server_->Shutdown(std::chrono::system_clock::now() +
                    std::chrono::milliseconds(deadline_ms));
  server_->Wait();
  server_.reset();
}

}  // namespace lumen::rpc
