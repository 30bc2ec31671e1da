// Serves this node's store to the other nodes' object managers over the chunk channel
// (chunk_wire.h): a thread accepts, a thread per connection answers its requests in
// order, sending each chunk straight from the store's mapping while the object is pinned.
// Connections are few (a reader keeps at most one per thread per node) and idle ones
// close after a while.
#pragma once

#include <list>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "common/mutex.h"
#include "object_manager/local_store.h"

namespace lumen::object_manager {

class ChunkServer {
 public:
  /// `send_timeout_ms`: how long one reply may take to go out (a stuck reader).
  ChunkServer(LocalStore* store, int64_t send_timeout_ms);
  ~ChunkServer();  // Stop()

  /// Listens on `ip` (a port the kernel picks) and gives "ip:port".
  absl::StatusOr<std::string> Listen(const std::string& ip);
  /// Closes the listener and every connection (requests in progress fail at their
  /// readers) and waits for the threads. Idempotent.
  void Stop();

 private:
  struct Connection {
    int fd;
    bool finished = false;
    std::thread thread;
  };
  void AcceptLoop();
  void Serve(Connection* connection);
  /// Answers one request; false when the connection should close.
  bool Answer(int fd);
  /// Joins and drops connections whose threads have ended.
  void Reap();

  LocalStore* const store_;
  const int64_t send_timeout_ms_;
  int listen_fd_ = -1;
  int wake_fd_ = -1;  // an eventfd: Stop wakes the accept loop
  std::thread acceptor_;
  Mutex mutex_;
  bool stopped_ ABSL_GUARDED_BY(mutex_) = false;
  std::list<Connection> connections_ ABSL_GUARDED_BY(mutex_);
};

}  // namespace lumen::object_manager
