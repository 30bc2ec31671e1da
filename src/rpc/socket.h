// Plain socket helpers shared by the transports that bypass gRPC (the frame loop, the
// object managers' chunk channel): addresses, listening and connecting on TCP with the
// options every cross-node socket gets, and whole reads and writes with a deadline.
// Every descriptor made here is close-on-exec and non-blocking.
#pragma once

#include <netinet/in.h>

#include <chrono>
#include <cstddef>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace lumen::rpc {

using Deadline = std::chrono::steady_clock::time_point;

/// "what: strerror(errno)".
std::string ErrnoText(const char* what);

/// poll()'s timeout for `deadline`: -1 (none) for Deadline::max(), else the milliseconds
/// left, rounded up (a wait never ends before its deadline), at least 0.
int PollTimeoutMs(Deadline deadline);

/// `ip` and `port` as a socket address; InvalidArgument naming them when malformed.
absl::StatusOr<sockaddr_in> TcpAddress(const std::string& ip, int port);
/// "ip:port" as a socket address; InvalidArgument naming it when malformed.
absl::StatusOr<sockaddr_in> ParseTcpAddress(const std::string& address);

/// Small messages go out at once; a peer host that vanishes is noticed (~10 s idle, then
/// 4 probes 5 s apart) instead of leaving its reader waiting forever.
void TuneTcp(int fd);

struct TcpListener {
  int fd = -1;
  std::string address;  // "ip:port", the port the kernel chose
};
/// Listens on `ip`, a port the kernel picks.
absl::StatusOr<TcpListener> ListenTcp(const std::string& ip);

/// Connects to "ip:port", waiting at most `timeout`; the socket is tuned (TuneTcp).
/// Unavailable naming the address when it cannot.
absl::StatusOr<int> ConnectTcp(const std::string& address, std::chrono::milliseconds timeout);

/// Writes / reads exactly `size` bytes, waiting for the socket as needed until
/// `deadline`: DeadlineExceeded, or Unavailable when the peer closed or the socket
/// failed (shutdown(2) from another thread ends a wait this way).
absl::Status SendAll(int fd, const void* data, size_t size, Deadline deadline);
absl::Status RecvAll(int fd, void* data, size_t size, Deadline deadline);

}  // namespace lumen::rpc
