// The executables of the cluster's jobs, kept by the GCS as files named by their SHA-256
// digest. A driver uploads its own once (chunks in order; nothing when the GCS already
// has that content); raylets read them in chunks into their caches and run workers from
// there, so a node needs nothing of the driver's files but the shared libraries.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "common/digest.h"
#include "gcs.pb.h"

namespace lumen::gcs {

/// Loop-only: every method runs on the GCS event loop.
class ExecutableStore {
 public:
  /// The largest executable accepted, and the largest chunk read or written at once.
  static constexpr uint64_t kMaxSize = uint64_t(4) << 30;
  static constexpr uint64_t kMaxChunk = uint64_t(8) << 20;

  /// Files go in `dir` (created on first use). Empty: this GCS stores no executables,
  /// and uploads fail with FAILED_PRECONDITION.
  explicit ExecutableStore(std::string dir);
  /// Removes the parts of unfinished uploads; whole files stay with the directory.
  ~ExecutableStore();
  ExecutableStore(const ExecutableStore&) = delete;
  ExecutableStore& operator=(const ExecutableStore&) = delete;

  /// Takes one chunk. True when the whole file is stored (before this chunk, or with it:
  /// then its digest was checked). Errors: INVALID_ARGUMENT (a malformed digest, a size
  /// over kMaxSize, a chunk past the announced size, content whose digest differs: that
  /// upload is dropped), FAILED_PRECONDITION (a chunk out of order: it names the offset
  /// expected), INTERNAL (the file system).
  absl::StatusOr<bool> Upload(const rpc::UploadExecutableRequest& request);
  /// Reads up to `length` bytes at `offset`. Errors: INVALID_ARGUMENT, NOT_FOUND (no file
  /// with that digest), OUT_OF_RANGE (offset past the end), INTERNAL.
  absl::Status Read(const rpc::ReadExecutableRequest& request, rpc::ReadExecutableReply* reply);

 private:
  struct PartialUpload {
    int fd = -1;
    std::string part_path;
    uint64_t size = 0;
    uint64_t written = 0;
    int64_t last_ms = 0;
    Sha256 sha;
  };
  std::string PathOf(const std::string& digest) const { return dir_ + "/" + digest; }
  void Drop(const std::string& key);
  /// Uploads nobody added to for a minute are dropped (their uploader is gone).
  void DropAbandoned();

  std::string dir_;
  bool dir_made_ = false;
  std::map<std::string, std::unique_ptr<PartialUpload>> uploads_;  // by digest + upload id
};

}  // namespace lumen::gcs
