#include "object_manager/chunk_server.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <future>

#include "common/logging.h"
#include "object_manager/chunk_wire.h"
#include "rpc/socket.h"

namespace lumen::object_manager {
namespace {

// A connection with no request for this long closes (its reader reconnects when it
// needs to).
constexpr auto kIdleTimeout = std::chrono::minutes(5);

}  // namespace

ChunkServer::ChunkServer(LocalStore* store, int64_t send_timeout_ms)
    : store_(store), send_timeout_ms_(send_timeout_ms) {}

ChunkServer::~ChunkServer() { Stop(); }

absl::StatusOr<std::string> ChunkServer::Listen(const std::string& ip) {
  if (listen_fd_ >= 0) return absl::FailedPreconditionError("ChunkServer: Listen twice");
  auto listener = rpc::ListenTcp(ip);
  if (!listener.ok()) return listener.status();
  wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake_fd_ < 0) {
    ::close(listener->fd);
    return absl::InternalError(rpc::ErrnoText("eventfd"));
  }
  listen_fd_ = listener->fd;
  acceptor_ = std::thread([this] { AcceptLoop(); });
  return listener->address;
}

void ChunkServer::AcceptLoop() {
  while (true) {
    pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {wake_fd_, POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0 && errno != EINTR) {
      LUMEN_LOG_ERROR("object manager: {}", rpc::ErrnoText("poll"));
      return;
    }
    if (fds[1].revents != 0) return;  // stopping
    Reap();
    int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) continue;  // EAGAIN, or the peer gave up already
    rpc::TuneTcp(fd);
    MutexLock lock(&mutex_);
    if (stopped_) {
      ::close(fd);
      return;
    }
    Connection& connection = connections_.emplace_back();
    connection.fd = fd;
    connection.thread = std::thread([this, &connection] { Serve(&connection); });
  }
}

void ChunkServer::Serve(Connection* connection) {
  while (Answer(connection->fd)) {
  }
  // The peer sees the end at once; the descriptor closes when the thread is joined.
  ::shutdown(connection->fd, SHUT_RDWR);
  MutexLock lock(&mutex_);
  connection->finished = true;
}

bool ChunkServer::Answer(int fd) {
  std::array<uint8_t, wire::kRequestBytes> raw;
  if (!rpc::RecvAll(fd, raw.data(), raw.size(), rpc::Deadline::clock::now() + kIdleTimeout)
           .ok()) {
    return false;  // closed, idle too long, or stopping
  }
  std::optional<wire::Request> request = wire::DecodeRequest(raw);
  if (!request) {
    LUMEN_LOG_WARN("object manager: a peer sent something that is not a chunk request of "
                   "version {}; closing its connection", wire::kVersion);
    return false;
  }
  std::promise<absl::StatusOr<PinnedObject>> pinned;
  store_->Pin(request->id,
              [&pinned](absl::StatusOr<PinnedObject> object) { pinned.set_value(object); });
  absl::StatusOr<PinnedObject> object = pinned.get_future().get();
  auto deadline = rpc::Deadline::clock::now() + std::chrono::milliseconds(send_timeout_ms_);
  wire::Reply reply;
  std::string error;
  const uint8_t* body = nullptr;
  if (object.ok()) {
    reply.object_size = object->size;
    if (request->offset < object->size) {
      reply.body = std::min({request->length, object->size - request->offset,
                             wire::kMaxChunkBytes});
      body = object->data + request->offset;
    }
  } else {
    reply.status = wire::kNotHere;
    error = std::string(object.status().message());
    reply.body = error.size();
    body = reinterpret_cast<const uint8_t*>(error.data());
  }
  auto header = wire::Encode(reply);
  absl::Status sent = rpc::SendAll(fd, header.data(), header.size(), deadline);
  if (sent.ok()) sent = rpc::SendAll(fd, body, reply.body, deadline);
  if (object.ok()) store_->Unpin(request->id);
  return sent.ok();
}

void ChunkServer::Reap() {
  std::list<Connection> finished;
  {
    MutexLock lock(&mutex_);
    for (auto it = connections_.begin(); it != connections_.end();) {
      auto next = std::next(it);
      if (it->finished) finished.splice(finished.end(), connections_, it);
      it = next;
    }
  }
  for (Connection& connection : finished) {
    connection.thread.join();
    ::close(connection.fd);
  }
}

void ChunkServer::Stop() {
  {
    MutexLock lock(&mutex_);
    if (stopped_) return;
    stopped_ = true;
    // Every wait of a connection's thread ends: its socket reads as closed.
    for (Connection& connection : connections_) ::shutdown(connection.fd, SHUT_RDWR);
  }
  if (acceptor_.joinable()) {
    uint64_t one = 1;
    [[maybe_unused]] ssize_t n = ::write(wake_fd_, &one, sizeof one);
    acceptor_.join();
  }
  std::list<Connection> all;
  {
    MutexLock lock(&mutex_);
    all.swap(connections_);
  }
  for (Connection& connection : all) {
    connection.thread.join();
    ::close(connection.fd);
  }
  if (listen_fd_ >= 0) ::close(listen_fd_);
  if (wake_fd_ >= 0) ::close(wake_fd_);
  listen_fd_ = wake_fd_ = -1;
}

}  // namespace lumen::object_manager
