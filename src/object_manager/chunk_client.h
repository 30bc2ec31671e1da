// Reads chunks of objects from other nodes' chunk servers (chunk_wire.h) straight into
// this node's store. A few threads each keep one connection per node they have read
// from and do one read at a time on it; reads wait in a queue for a free thread.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "common/ids.h"
#include "common/mutex.h"

namespace lumen::object_manager {

struct ChunkRead {
  uint64_t object_size = 0;  // the whole object's
  uint64_t bytes = 0;        // written at dest (the asked range clipped to the object)
};

class ChunkClient {
 public:
  /// `timeout_ms` bounds each read (connecting included).
  ChunkClient(int threads, int64_t timeout_ms);
  ~ChunkClient();  // Stop()

  using Done = std::function<void(absl::StatusOr<ChunkRead>)>;
  /// Reads bytes [offset, offset + length) of `id` from the chunk server at `address`
  /// into `dest` (which must stay writable until `done`; null when `length` is 0: only
  /// the size is wanted). `done` runs on a reader thread: NotFound with the server's
  /// reason when the object is not there, Unavailable / DeadlineExceeded when the
  /// server cannot be reached or does not answer in time, Cancelled once stopping.
  void Read(const std::string& address, const ObjectId& id, uint64_t offset, uint64_t length,
            uint8_t* dest, Done done);

  /// Fails queued reads, ends those in progress (their sockets are shut down) and waits
  /// for the threads. Idempotent.
  void Stop();

 private:
  struct Job {
    std::string address;
    ObjectId id;
    uint64_t offset;
    uint64_t length;
    uint8_t* dest;
    Done done;
  };
  void Run();
  /// One read on `connections`' socket to its address (made or remade as needed).
  absl::StatusOr<ChunkRead> Perform(const Job& job, std::map<std::string, int>* connections);
  absl::StatusOr<ChunkRead> Exchange(int fd, const Job& job, bool* answered);
  absl::StatusOr<int> Connect(const std::string& address);
  void Close(int fd);

  const int64_t timeout_ms_;
  std::vector<std::thread> threads_;
  Mutex mutex_;
  CondVar wake_;
  bool stopped_ ABSL_GUARDED_BY(mutex_) = false;
  std::deque<Job> queue_ ABSL_GUARDED_BY(mutex_);
  std::set<int> sockets_ ABSL_GUARDED_BY(mutex_);  // every open one, for Stop
};

}  // namespace lumen::object_manager
