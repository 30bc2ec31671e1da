#include "rpc/socket.h"

#include <arpa/inet.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace lumen::rpc {
namespace {

// Waits until `fd` is ready for `events` or `deadline`; false with a status when not.
absl::Status WaitFor(int fd, short events, Deadline deadline, const char* what) {
  pollfd p{fd, events, 0};
  int rc;
  do {
    rc = ::poll(&p, 1, PollTimeoutMs(deadline));
  } while (rc < 0 && errno == EINTR);
  if (rc < 0) return absl::UnavailableError(ErrnoText(what));
  if (rc == 0) return absl::DeadlineExceededError(std::string(what) + ": timed out");
  return absl::OkStatus();
}

}  // namespace

std::string ErrnoText(const char* what) { return std::string(what) + ": " + std::strerror(errno); }

int PollTimeoutMs(Deadline deadline) {
  if (deadline == Deadline::max()) return -1;
  auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Deadline::clock::now());
  return int(std::clamp<int64_t>(left.count(), 0, 1 << 30));
}

absl::StatusOr<sockaddr_in> TcpAddress(const std::string& ip, int port) {
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(uint16_t(port));
  if (port < 0 || port > 65535 || ::inet_pton(AF_INET, ip.c_str(), &address.sin_addr) != 1) {
    return absl::InvalidArgumentError("'" + ip + ":" + std::to_string(port) +
                                      "' is not an IPv4 address and port");
  }
  return address;
}

absl::StatusOr<sockaddr_in> ParseTcpAddress(const std::string& address) {
  size_t colon = address.rfind(':');
  int port = -1;
  if (colon != std::string::npos && colon + 1 < address.size() && colon + 6 >= address.size() &&
      address.find_first_not_of("0123456789", colon + 1) == std::string::npos) {
    port = std::stoi(address.substr(colon + 1));
  }
  if (port < 0) {
    return absl::InvalidArgumentError("'" + address + "' is not an IPv4 address and port");
  }
  return TcpAddress(address.substr(0, colon), port);
}

void TuneTcp(int fd) {
  int one = 1, idle = 10, interval = 5, count = 4;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  ::setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
  ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
  ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &interval, sizeof interval);
  ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &count, sizeof count);
}

absl::StatusOr<TcpListener> ListenTcp(const std::string& ip) {
  auto address = TcpAddress(ip, 0);
  if (!address.ok()) return address.status();
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::InternalError(ErrnoText("socket"));
  socklen_t length = sizeof *address;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&*address), sizeof *address) != 0 ||
      ::listen(fd, 128) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&*address), &length) != 0) {
    absl::Status error = absl::UnavailableError(ErrnoText(("cannot listen on " + ip).c_str()));
    ::close(fd);
    return error;
  }
  return TcpListener{fd, ip + ":" + std::to_string(ntohs(address->sin_port))};
}

absl::StatusOr<int> ConnectTcp(const std::string& address, std::chrono::milliseconds timeout) {
  auto peer = ParseTcpAddress(address);
  if (!peer.ok()) return peer.status();
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::InternalError(ErrnoText("socket"));
  int rc = ::connect(fd, reinterpret_cast<sockaddr*>(&*peer), sizeof *peer);
  if (rc != 0 && errno == EINPROGRESS) {
    absl::Status ready =
        WaitFor(fd, POLLOUT, Deadline::clock::now() + timeout, "connect");
    int error = ETIMEDOUT;
    socklen_t length = sizeof error;
    if (ready.ok()) ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length);
    errno = error;
    rc = error == 0 ? 0 : -1;
  }
  if (rc != 0) {
    absl::Status error =
        absl::UnavailableError(ErrnoText(("cannot connect to " + address).c_str()));
    ::close(fd);
    return error;
  }
  TuneTcp(fd);
  return fd;
}

absl::Status SendAll(int fd, const void* data, size_t size, Deadline deadline) {
  auto* p = static_cast<const char*>(data);
  while (size > 0) {
    ssize_t n = ::send(fd, p, size, MSG_NOSIGNAL);
    if (n > 0) {
      p += n;
      size -= size_t(n);
    } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
      if (absl::Status ready = WaitFor(fd, POLLOUT, deadline, "send"); !ready.ok()) return ready;
    } else if (errno != EINTR) {
      return absl::UnavailableError(ErrnoText("send"));
    }
  }
  return absl::OkStatus();
}

absl::Status RecvAll(int fd, void* data, size_t size, Deadline deadline) {
  auto* p = static_cast<char*>(data);
  while (size > 0) {
    ssize_t n = ::recv(fd, p, size, 0);
    if (n > 0) {
      p += n;
      size -= size_t(n);
    } else if (n == 0) {
      return absl::UnavailableError("the peer closed the connection");
    } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
      if (absl::Status ready = WaitFor(fd, POLLIN, deadline, "recv"); !ready.ok()) return ready;
    } else if (errno != EINTR) {
      return absl::UnavailableError(ErrnoText("recv"));
    }
  }
  return absl::OkStatus();
}

}  // namespace lumen::rpc
