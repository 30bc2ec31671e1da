// SHA-256 content digests (OpenSSL), for things identified by what they hold: the job's
// executable, which the GCS stores and every raylet caches by digest.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace lumen {

/// An incremental SHA-256. Not thread-safe; one per stream of bytes.
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  void Update(std::string_view bytes);
  /// The digest of everything given so far, as 64 lowercase hex digits. Call once.
  std::string HexDigest();

 private:
  struct State;
  std::unique_ptr<State> state_;
};

/// A file's digest and size, read in one pass. Errors: NOT_FOUND / PERMISSION_DENIED /
/// INTERNAL with the path and the system's reason.
struct FileDigest {
  std::string hex;
  uint64_t size = 0;
};
absl::StatusOr<FileDigest> DigestFile(const std::string& path);

/// True for 64 lowercase hex digits (what HexDigest returns): safe as a file name.
bool IsHexDigest(std::string_view text);

}  // namespace lumen
