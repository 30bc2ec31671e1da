// This node's copies of the jobs' executables: fetched from the GCS by content digest
// into <dir>/<digest> (mode 0755) and run from there, on every node, the driver's own
// included. One fetch per digest however many jobs wait for it; the bytes are checked
// against the digest before the file appears under its name.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/digest.h"
#include "common/mutex.h"
#include "gcs.pb.h"

namespace lumen::raylet {

/// Reads one chunk from the GCS. `done` may run on any thread, exactly once; the
/// returned function cancels the read (then `done` runs with an error).
using ReadExecutableChunk = std::function<std::function<void()>(
    const rpc::ReadExecutableRequest& request,
    std::function<void(absl::Status, rpc::ReadExecutableReply&&)> done)>;

class ExecutableCache {
 public:
  /// `post` runs a function on the owner's event loop.
  ExecutableCache(std::string dir, ReadExecutableChunk read,
                  std::function<void(std::function<void()>)> post);
  ~ExecutableCache();  // Stop()
  ExecutableCache(const ExecutableCache&) = delete;
  ExecutableCache& operator=(const ExecutableCache&) = delete;

  using Done = std::function<void(absl::StatusOr<std::string>)>;
  /// Loop-only. Calls `done` on the loop (at once when cached) with the path of the
  /// executable with this digest and size, or why it cannot be had: INVALID_ARGUMENT
  /// (malformed digest), the GCS's error (NOT_FOUND: never uploaded), DATA_LOSS (the
  /// bytes do not match the digest), INTERNAL (this node's file system). A failure is not
  /// remembered: the next Ensure tries again.
  void Ensure(const std::string& digest, uint64_t size, Done done);
  /// Not on the loop. Cancels the reads in flight and waits until their callbacks have
  /// run; no read starts after it. Idempotent.
  void Stop();

 private:
  struct Fetch {
    uint64_t size = 0;
    uint64_t offset = 0;
    int fd = -1;
    std::string part_path;
    Sha256 sha;
    std::vector<Done> waiters;
  };
  std::string PathOf(const std::string& digest) const { return dir_ + "/" + digest; }
  void ReadNext(const std::string& digest);
  void OnChunk(const std::string& digest, absl::Status status, rpc::ReadExecutableReply reply);
  void Finish(const std::string& digest, absl::StatusOr<std::string> result);

  std::string dir_;
  ReadExecutableChunk read_;
  std::function<void(std::function<void()>)> post_;
  std::map<std::string, std::unique_ptr<Fetch>> fetches_;  // loop-only, by digest
  Mutex mutex_;
  CondVar idle_;
  bool stopped_ ABSL_GUARDED_BY(mutex_) = false;
  int outstanding_ ABSL_GUARDED_BY(mutex_) = 0;
  std::map<uint64_t, std::function<void()>> cancels_ ABSL_GUARDED_BY(mutex_);
  uint64_t next_read_ ABSL_GUARDED_BY(mutex_) = 0;
};

}  // namespace lumen::raylet
