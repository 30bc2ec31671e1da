#include "api/executable_upload.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <random>

#include "common/digest.h"
#include "common/process.h"
#include "rpc/rpc.h"

namespace lumen::api {
namespace {

constexpr uint64_t kChunkBytes = uint64_t(4) << 20;
constexpr int64_t kChunkTimeoutMs = 60000;
constexpr char kSelf[] = "/proc/self/exe";  // the running file, even if since replaced

absl::StatusOr<FileDigest> SelfDigest() {
  static std::mutex mutex;
  static absl::StatusOr<FileDigest> digest = absl::UnknownError("not computed");
  std::lock_guard<std::mutex> lock(mutex);
  if (!digest.ok()) digest = DigestFile(kSelf);
  return digest;
}

std::string RandomId() {
  std::random_device random;
  std::string id(16, '\0');
  for (char& c : id) c = char(random());
  return id;
}

absl::StatusOr<bool> SendChunk(rpc::GcsService::Stub& gcs,
                               const rpc::UploadExecutableRequest& request) {
  auto reply = rpc::CallBlocking<rpc::UploadExecutableRequest, rpc::UploadExecutableReply>(
      [&](auto* ctx, const auto& req, auto* rep) { return gcs.UploadExecutable(ctx, req, rep); },
      request, kChunkTimeoutMs);
  if (!reply.ok()) return reply.status();
  return reply->stored();
}

}  // namespace

absl::StatusOr<rpc::JobLaunchInfo> UploadExecutable(rpc::GcsService::Stub& gcs) {
  auto digest = SelfDigest();
  if (!digest.ok()) return digest.status();
  rpc::JobLaunchInfo launch;
  launch.set_executable(SelfExecutable());
  for (const auto& arg : SelfCommandLine()) launch.add_argv(arg);
  launch.set_executable_digest(digest->hex);
  launch.set_executable_size(digest->size);

  rpc::UploadExecutableRequest request;
  request.set_digest(digest->hex);
  request.set_size(digest->size);
  request.set_upload_id(RandomId());
  // An empty first chunk asks whether the GCS has it already (a job of the same program).
  auto stored = SendChunk(gcs, request);
  if (!stored.ok()) return stored.status();
  if (*stored) return launch;
  int fd = open(kSelf, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return absl::InternalError(std::string("cannot read ") + kSelf + ": " + strerror(errno));
  }
  std::string* data = request.mutable_data();
  for (uint64_t offset = 0; offset < digest->size && !*stored;) {
    data->resize(std::min(kChunkBytes, digest->size - offset));
    ssize_t n = pread(fd, data->data(), data->size(), off_t(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      close(fd);
      return absl::InternalError(std::string("cannot read ") + kSelf + ": " +
                                 (n < 0 ? strerror(errno) : "it shrank"));
    }
    data->resize(size_t(n));
    request.set_offset(offset);
    stored = SendChunk(gcs, request);
    if (!stored.ok()) break;
    offset += uint64_t(n);
  }
  close(fd);
  if (!stored.ok()) return stored.status();
  if (!*stored) return absl::InternalError("the GCS did not store the executable");
  return launch;
}

}  // namespace lumen::api
