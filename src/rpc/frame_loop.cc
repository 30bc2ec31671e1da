#include "rpc/frame_loop.h"

#include <arpa/inet.h>
#include <endian.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "common/logging.h"
#include "rpc/rpc.h"
#include "rpc/socket.h"

namespace lumen::rpc {
namespace {

// Per wake-up and connection, so that one busy peer cannot starve the others.
constexpr size_t kReadBudget = 1 << 20;

absl::StatusOr<sockaddr_un> UnixAddress(const std::string& path) {
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof(address.sun_path)) {
    return absl::InvalidArgumentError("unix socket path '" + path + "' is empty or longer than " +
                                      std::to_string(sizeof(address.sun_path) - 1) + " bytes");
  }
  std::memcpy(address.sun_path, path.c_str(), path.size() + 1);
  return address;
}

}  // namespace

void FrameConnection::Call(std::string_view payload, ReplyCallback callback) {
  if (payload.size() > size_t(kMaxMessageBytes)) {
    return FailLater(std::move(callback),
                     absl::ResourceExhaustedError("a message of " +
                                                  std::to_string(payload.size()) +
                                                  " bytes exceeds lumen's limit of " +
                                                  std::to_string(kMaxMessageBytes)));
  }
  uint64_t id = 0;
  {
    MutexLock lock(&calls_mutex_);
    if (!failed_) {
      id = next_id_++;
      calls_.emplace(id, std::move(callback));
    }
  }
  if (id != 0) {
    if (Send(Header{uint32_t(payload.size()), kRequest, 0, id}, payload)) return;
    MutexLock lock(&calls_mutex_);
    auto it = calls_.find(id);
    if (it == calls_.end()) return;  // the connection failed it meanwhile
    callback = std::move(it->second);
    calls_.erase(it);
  }
  FailLater(std::move(callback),
            MarkNotDelivered(absl::UnavailableError("the connection to the peer is closed")));
}

void FrameConnection::FailLater(ReplyCallback callback, absl::Status status) {
  loop_->Post([callback = std::move(callback), status = std::move(status)] {
    callback(status, std::string());
  });
}

bool FrameConnection::Reply(uint64_t id, const absl::Status& status, std::string_view payload) {
  if (status.ok() && payload.size() > size_t(kMaxMessageBytes)) {
    return Reply(id,
                 absl::ResourceExhaustedError("a reply of " + std::to_string(payload.size()) +
                                              " bytes exceeds lumen's message limit"),
                 "");
  }
  if (!status.ok()) payload = std::string_view(status.message().data(), status.message().size());
  return Send(Header{uint32_t(payload.size()), kReply, uint16_t(status.code()), id}, payload);
}

void FrameConnection::Close() {
  MutexLock lock(&send_mutex_);
  // Its reader sees the end of the stream and finishes the connection.
  if (!closed_) ::shutdown(fd_, SHUT_RDWR);
}

FrameConnection::Borrow::Borrow(std::shared_ptr<FrameConnection> connection)
    : connection_(std::move(connection)) {
  MutexLock lock(&connection_->send_mutex_);
  if (connection_->borrowers_++ == 0 && !connection_->closed_) connection_->Rearm();
}

FrameConnection::Borrow::~Borrow() {
  FrameConnection& c = *connection_;
  MutexLock lock(&c.send_mutex_);
  if (--c.borrowers_ > 0) return;
  if (!c.closed_) {
    c.Rearm();
  } else if (c.fd_open_) {  // Finish left the closing to the last borrower
    ::close(c.fd_);
    c.fd_open_ = false;
  }
}

bool FrameConnection::Borrow::Wait(const Waker& waker,
                                   std::chrono::steady_clock::time_point deadline) {
  FrameConnection& c = *connection_;
  {
    MutexLock lock(&c.send_mutex_);
    if (c.closed_) return false;
  }
  // The descriptor stays open while this borrow lives (Finish defers closing it).
  pollfd fds[2] = {{c.fd_, POLLIN, 0}, {waker.fd(), POLLIN, 0}};
  int n = ::poll(fds, 2, PollTimeoutMs(deadline));
  if (n < 0) return errno == EINTR;  // the caller looks again (and recomputes its timeout)
  if (n == 0) return true;
  if (fds[1].revents != 0) waker.Drain();
  if (fds[0].revents == 0) return true;
  absl::Status why;
  if (c.Read(&why)) return true;
  c.loop_->Drop(connection_, why);
  return false;
}

bool FrameConnection::Send(const Header& host_header, std::string_view payload) {
  const Header header{htole32(host_header.size), htole16(host_header.kind),
                      htole16(host_header.code), htole64(host_header.id)};
  MutexLock lock(&send_mutex_);
  if (closed_) return false;
  const char* head = reinterpret_cast<const char*>(&header);
  if (out_sent_ < out_.size()) {  // behind bytes the loop still has to write
    out_.append(head, sizeof header);
    out_.append(payload);
    return true;
  }
  out_.clear();  // everything in it was written
  out_sent_ = 0;
  iovec parts[2] = {{const_cast<char*>(head), sizeof header},
                    {const_cast<char*>(payload.data()), payload.size()}};
  msghdr message{};
  message.msg_iov = parts;
  message.msg_iovlen = 2;
  ssize_t sent;
  do {
    sent = ::sendmsg(fd_, &message, MSG_NOSIGNAL | MSG_DONTWAIT);
  } while (sent < 0 && errno == EINTR);
  size_t total = sizeof header + payload.size();
  if (sent == ssize_t(total)) return true;
  if (sent < 0) {
    if (errno != EAGAIN && errno != EWOULDBLOCK) {
      ::shutdown(fd_, SHUT_RDWR);  // the loop closes it
      return false;
    }
    sent = 0;
  }
  // The socket's buffer is full: the loop writes the rest when it drains.
  size_t done = size_t(sent);
  if (done < sizeof header) out_.append(head + done, sizeof header - done);
  size_t from = done > sizeof header ? done - sizeof header : 0;
  out_.append(payload.substr(from));
  WantWrite(true);
  return true;
}

void FrameConnection::WantWrite(bool on) {
  if (want_write_ == on) return;
  want_write_ = on;
  Rearm();
}

void FrameConnection::Rearm() {
  loop_->Modify(fd_, key_, (borrowers_ == 0 ? uint32_t(EPOLLIN) : 0u) |
                               (want_write_ ? uint32_t(EPOLLOUT) : 0u));
}

bool FrameConnection::Flush() {
  MutexLock lock(&send_mutex_);
  if (closed_) return true;
  while (out_sent_ < out_.size()) {
    ssize_t n = ::send(fd_, out_.data() + out_sent_, out_.size() - out_sent_,
                       MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      out_sent_ += size_t(n);
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      break;
    } else {
      return false;
    }
  }
  if (out_sent_ == out_.size()) {
    out_.clear();
    out_sent_ = 0;
    WantWrite(false);
  } else if (out_sent_ > kReadBudget && out_sent_ > out_.size() / 2) {
    out_.erase(0, out_sent_);  // now and then, so a large message is not moved per write
    out_sent_ = 0;
  }
  return true;
}

void FrameConnection::FlushUntil(std::chrono::steady_clock::time_point deadline) {
  Borrow hold(shared_from_this());  // a borrower may finish it meanwhile: keeps fd_ open
  while (true) {
    {
      MutexLock lock(&send_mutex_);
      if (closed_ || out_sent_ == out_.size()) return;
    }
    if (std::chrono::steady_clock::now() >= deadline || !Flush()) return;
    pollfd writable{fd_, POLLOUT, 0};
    ::poll(&writable, 1, PollTimeoutMs(deadline));
  }
}

bool FrameConnection::Read(absl::Status* why) {
  MutexLock lock(&read_mutex_);
  if (read_failed_) {  // another reader failed it and is about to drop it
    *why = absl::UnavailableError("the connection failed");
    return false;
  }
  {
    MutexLock send_lock(&send_mutex_);
    if (closed_) return true;  // finished meanwhile (by another reader, or Stop)
  }
  read_failed_ = !ReadAvailable(why);
  return !read_failed_;
}

bool FrameConnection::ReadAvailable(absl::Status* why) {
  size_t budget = kReadBudget;
  bool open = true;
  // Per thread: the loop's and any borrower's read at once (different connections).
  thread_local std::vector<char> buffer(FrameLoop::kReadChunk);
  char* chunk = buffer.data();
  while (budget > 0) {
    ssize_t n = ::recv(fd_, chunk, FrameLoop::kReadChunk, MSG_DONTWAIT);
    if (n > 0) {
      in_.append(chunk, size_t(n));
      budget -= std::min(budget, size_t(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    *why = absl::UnavailableError(n == 0 ? "the peer closed the connection"
                                         : ErrnoText("cannot read from the peer"));
    open = false;
    break;
  }
  while (in_.size() - in_pos_ >= sizeof(Header)) {
    Header header;
    std::memcpy(&header, in_.data() + in_pos_, sizeof header);
    header = Header{le32toh(header.size), le16toh(header.kind), le16toh(header.code),
                    le64toh(header.id)};
    bool valid_kind = header.kind == (server_ ? kRequest : kReply);
    if (header.size > uint32_t(kMaxMessageBytes) || !valid_kind ||
        header.code > uint16_t(absl::StatusCode::kUnauthenticated)) {
      *why = absl::UnavailableError("the peer sent a malformed frame (kind " +
                                    std::to_string(header.kind) + ", " +
                                    std::to_string(header.size) + " bytes)");
      LUMEN_LOG_ERROR("frame connection: {}; closing it", std::string(why->message()));
      return false;
    }
    if (in_.size() - in_pos_ - sizeof header < header.size) break;
    std::string payload = in_.substr(in_pos_ + sizeof header, header.size);
    in_pos_ += sizeof header + header.size;
    if (!Dispatch(header, std::move(payload), why)) return false;
  }
  if (in_pos_ == in_.size()) {
    in_.clear();
    in_pos_ = 0;
  } else if (in_pos_ > kReadBudget) {
    in_.erase(0, in_pos_);
    in_pos_ = 0;
  }
  return open;
}

bool FrameConnection::Dispatch(const Header& header, std::string payload, absl::Status* why) {
  if (server_) {
    handler_(shared_from_this(), header.id, std::move(payload));
    return true;
  }
  ReplyCallback callback;
  {
    MutexLock lock(&calls_mutex_);
    auto it = calls_.find(header.id);
    if (it != calls_.end()) {
      callback = std::move(it->second);
      calls_.erase(it);
    }
  }
  if (callback == nullptr) {
    *why = absl::UnavailableError("the peer answered a call that was never made (id " +
                                  std::to_string(header.id) + ")");
    LUMEN_LOG_ERROR("frame connection: {}; closing it", std::string(why->message()));
    return false;
  }
  if (header.code == 0) {
    callback(absl::OkStatus(), std::move(payload));
  } else {
    callback(absl::Status(absl::StatusCode(header.code), payload), std::string());
  }
  return true;
}

void FrameConnection::Finish(const absl::Status& why) {
  {
    MutexLock read_lock(&read_mutex_);  // no reader is inside recv()
    MutexLock lock(&send_mutex_);
    if (closed_) return;
    closed_ = true;
    ::epoll_ctl(loop_->epoll_fd_, EPOLL_CTL_DEL, fd_, nullptr);
    if (borrowers_ == 0) {
      ::close(fd_);
      fd_open_ = false;
    } else {
      ::shutdown(fd_, SHUT_RDWR);  // wakes the borrowers' polls; the last one closes it
    }
    out_.clear();
    out_sent_ = 0;
  }
  absl::flat_hash_map<uint64_t, ReplyCallback> calls;
  {
    MutexLock lock(&calls_mutex_);
    failed_ = true;
    calls.swap(calls_);
  }
  for (auto& [id, callback] : calls) {
    callback(absl::UnavailableError("lost the connection to the peer: " +
                                    std::string(why.message())),
             std::string());
  }
}

absl::Status FrameLoop::Start() {
  epoll_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
  wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (epoll_fd_ < 0 || wake_fd_ < 0) return absl::InternalError(ErrnoText("frame loop"));
  epoll_event event{};
  event.events = EPOLLIN;
  event.data.u64 = kWakeKey;
  if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, wake_fd_, &event) != 0) {
    return absl::InternalError(ErrnoText("frame loop: epoll_ctl"));
  }
  {
    MutexLock lock(&mutex_);
    running_ = true;
  }
  thread_ = std::thread([this] { Run(); });
  return absl::OkStatus();
}

absl::Status FrameLoop::Listen(const std::string& path, Handler handler) {
  {
    MutexLock lock(&mutex_);
    if (!running_ || listen_fd_ >= 0) {
      return absl::FailedPreconditionError("Listen: the frame loop is not running or listens");
    }
  }
  auto address = UnixAddress(path);
  if (!address.ok()) return address.status();
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::InternalError(ErrnoText("socket"));
  ::unlink(path.c_str());
  if (::bind(fd, reinterpret_cast<sockaddr*>(&*address), sizeof *address) != 0 ||
      ::listen(fd, 128) != 0) {
    absl::Status error = absl::UnavailableError(ErrnoText(("cannot listen on " + path).c_str()));
    ::close(fd);
    return error;
  }
  epoll_event event{};
  event.events = EPOLLIN;
  event.data.u64 = kListenKey;
  MutexLock lock(&mutex_);
  handler_ = std::move(handler);
  listen_fd_ = fd;
  listen_path_ = path;
  if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &event) != 0) {
    return absl::InternalError(ErrnoText("frame loop: epoll_ctl"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<FrameConnection>> FrameLoop::Connect(const std::string& path) {
  auto address = UnixAddress(path);
  if (!address.ok()) return address.status();
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::InternalError(ErrnoText("socket"));
  int rc;
  do {
    rc = ::connect(fd, reinterpret_cast<sockaddr*>(&*address), sizeof *address);
  } while (rc != 0 && errno == EINTR);
  if (rc != 0 || ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK) != 0) {
    absl::Status error = absl::UnavailableError(ErrnoText(("cannot connect to " + path).c_str()));
    ::close(fd);
    return error;
  }
  return Register(fd, /*server=*/false);
}

absl::StatusOr<std::string> FrameLoop::ListenTcp(const std::string& ip) {
  {
    MutexLock lock(&mutex_);
    if (!running_ || listen_fd_ < 0 || tcp_listen_fd_ >= 0) {
      return absl::FailedPreconditionError("ListenTcp: call once, after Listen");
    }
  }
  auto listener = rpc::ListenTcp(ip);
  if (!listener.ok()) return listener.status();
  int fd = listener->fd;
  epoll_event event{};
  event.events = EPOLLIN;
  event.data.u64 = kTcpListenKey;
  MutexLock lock(&mutex_);
  tcp_listen_fd_ = fd;
  if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &event) != 0) {
    return absl::InternalError(ErrnoText("frame loop: epoll_ctl"));
  }
  return listener->address;
}

absl::StatusOr<std::shared_ptr<FrameConnection>> FrameLoop::ConnectTcp(
    const std::string& address, std::chrono::milliseconds timeout) {
  auto fd = rpc::ConnectTcp(address, timeout);
  if (!fd.ok()) return fd.status();
  return Register(*fd, /*server=*/false);
}

absl::StatusOr<std::shared_ptr<FrameConnection>> FrameLoop::Register(int fd, bool server) {
  MutexLock lock(&mutex_);
  if (!running_ || stopping_) {
    ::close(fd);
    return absl::UnavailableError("the frame loop is stopped");
  }
  uint64_t key = next_key_++;
  std::shared_ptr<FrameConnection> connection(new FrameConnection(this, fd, key, server));
  if (server) connection->handler_ = handler_;
  epoll_event event{};
  event.events = EPOLLIN;
  event.data.u64 = key;
  if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &event) != 0) {
    absl::Status error = absl::InternalError(ErrnoText("frame loop: epoll_ctl"));
    ::close(fd);
    return error;
  }
  connections_.emplace(key, connection);
  return connection;
}

void FrameLoop::Modify(int fd, uint64_t key, uint32_t events) {
  epoll_event event{};
  event.events = events;
  event.data.u64 = key;
  ::epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, fd, &event);
}

void FrameLoop::Drop(const std::shared_ptr<FrameConnection>& connection,
                     const absl::Status& why) {
  {
    MutexLock lock(&mutex_);
    connections_.erase(connection->key_);
  }
  connection->Finish(why);
}

void FrameLoop::Accept(uint64_t key) {
  int listen_fd;
  {
    MutexLock lock(&mutex_);
    listen_fd = key == kTcpListenKey ? tcp_listen_fd_ : listen_fd_;
  }
  while (true) {
    int fd = ::accept4(listen_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) {
        LUMEN_LOG_WARN("frame loop: {}", ErrnoText("accept"));
      }
      return;
    }
    if (key == kTcpListenKey) TuneTcp(fd);
    Register(fd, /*server=*/true).IgnoreError();
  }
}

void FrameLoop::Post(std::function<void()> fn) {
  {
    MutexLock lock(&mutex_);
    if (running_ && !stopping_) {
      posted_.push_back(std::move(fn));
      uint64_t one = 1;
      [[maybe_unused]] ssize_t n = ::write(wake_fd_, &one, sizeof one);
      return;
    }
  }
  fn();
}

void FrameLoop::Run() {
  epoll_event events[64];
  while (true) {
    int n = ::epoll_wait(epoll_fd_, events, 64, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      LUMEN_LOG_ERROR("frame loop: {}", ErrnoText("epoll_wait"));
      return;
    }
    for (int i = 0; i < n; ++i) {
      uint64_t key = events[i].data.u64;
      if (key == kWakeKey) {
        uint64_t count;
        [[maybe_unused]] ssize_t r = ::read(wake_fd_, &count, sizeof count);
        std::vector<std::function<void()>> posted;
        bool stopping;
        {
          MutexLock lock(&mutex_);
          posted.swap(posted_);
          stopping = stopping_;
        }
        for (auto& fn : posted) fn();
        if (stopping) return;
        continue;
      }
      if (key == kListenKey || key == kTcpListenKey) {
        Accept(key);
        continue;
      }
      std::shared_ptr<FrameConnection> connection;
      {
        MutexLock lock(&mutex_);
        auto it = connections_.find(key);
        if (it == connections_.end()) continue;
        connection = it->second;
      }
      absl::Status why = absl::UnavailableError("cannot write to the peer");
      bool wrote = !(events[i].events & EPOLLOUT) || connection->Flush();
      bool open = true;
      // Read even after a failed write: replies the peer sent before it went away are
      // still in the socket, and their calls did finish.
      if (!wrote || (events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))) {
        open = connection->Read(&why);
      }
      if (!wrote || !open) Drop(connection, why);
    }
  }
}

void FrameLoop::Stop() {
  {
    MutexLock lock(&mutex_);
    if (!running_ || stopping_) return;
    stopping_ = true;
  }
  uint64_t one = 1;
  [[maybe_unused]] ssize_t n = ::write(wake_fd_, &one, sizeof one);
  if (thread_.joinable()) thread_.join();
  std::map<uint64_t, std::shared_ptr<FrameConnection>> connections;
  std::vector<std::function<void()>> posted;
  {
    MutexLock lock(&mutex_);
    connections.swap(connections_);
    posted.swap(posted_);
    running_ = false;
  }
  for (auto& fn : posted) fn();
  // Replies already given (an ExitActor call's, say) still reach their callers: what a
  // full socket buffer held back gets a moment to drain.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(100);
  for (auto& [key, connection] : connections) connection->FlushUntil(deadline);
  for (auto& [key, connection] : connections) {
    connection->Finish(absl::UnavailableError("this process is shutting down"));
  }
  MutexLock lock(&mutex_);
  if (listen_fd_ >= 0) {
    ::close(listen_fd_);
    ::unlink(listen_path_.c_str());
    listen_fd_ = -1;
  }
  if (tcp_listen_fd_ >= 0) {
    ::close(tcp_listen_fd_);
    tcp_listen_fd_ = -1;
  }
}

FrameLoop::~FrameLoop() {
  Stop();
  // Only now: a borrower that finishes a connection after Stop still deletes its socket
  // from this epoll set, which must not be a reused descriptor by then.
  if (wake_fd_ >= 0) ::close(wake_fd_);
  if (epoll_fd_ >= 0) ::close(epoll_fd_);
}

}  // namespace lumen::rpc
