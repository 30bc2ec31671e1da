#include "gcs/executable_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "common/clock.h"
#include "common/ids.h"
#include "common/logging.h"
#include "common/status.h"

namespace lumen::gcs {
namespace {

constexpr int64_t kAbandonedMs = 60000;

absl::Status CheckDigest(const std::string& digest) {
  if (IsHexDigest(digest)) return absl::OkStatus();
  return absl::InvalidArgumentError("an executable's digest is 64 lowercase hex digits (SHA-256)");
}

absl::Status WriteAll(int fd, const std::string& data, const std::string& path) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return absl::InternalError("cannot write '" + path + "': " + strerror(errno));
    done += size_t(n);
  }
  return absl::OkStatus();
}

}  // namespace

ExecutableStore::ExecutableStore(std::string dir) : dir_(std::move(dir)) {}

ExecutableStore::~ExecutableStore() {
  while (!uploads_.empty()) Drop(uploads_.begin()->first);
}

void ExecutableStore::Drop(const std::string& key) {
  auto it = uploads_.find(key);
  if (it == uploads_.end()) return;
  close(it->second->fd);
  unlink(it->second->part_path.c_str());
  uploads_.erase(it);
}

void ExecutableStore::DropAbandoned() {
  int64_t now = NowMs();
  for (auto it = uploads_.begin(); it != uploads_.end();) {
    auto next = std::next(it);
    if (now - it->second->last_ms > kAbandonedMs) Drop(it->first);
    it = next;
  }
}

absl::StatusOr<bool> ExecutableStore::Upload(const rpc::UploadExecutableRequest& request) {
  if (dir_.empty()) return absl::FailedPreconditionError("this GCS stores no executables");
  LUMEN_RETURN_IF_ERROR(CheckDigest(request.digest()));
  if (request.size() > kMaxSize) {
    return absl::InvalidArgumentError("an executable of " + std::to_string(request.size()) +
                                      " bytes is over the limit of " +
                                      std::to_string(kMaxSize));
  }
  if (request.upload_id().empty() || request.upload_id().size() > 32) {
    return absl::InvalidArgumentError("an upload needs an id of 1 to 32 bytes");
  }
  const std::string final_path = PathOf(request.digest());
  struct stat st;
  if (stat(final_path.c_str(), &st) == 0 && uint64_t(st.st_size) == request.size()) {
    return true;  // stored already: by an earlier job, or another uploader finished first
  }
  const std::string key = request.digest() + request.upload_id();
  auto it = uploads_.find(key);
  if (it == uploads_.end()) {
    if (request.offset() != 0) {
      return absl::FailedPreconditionError("no upload of " + request.digest() +
                                           " under way: send offset 0 first");
    }
    DropAbandoned();
    if (!dir_made_) {
      std::error_code ec;
      std::filesystem::create_directories(dir_, ec);
      if (ec) return absl::InternalError("cannot make '" + dir_ + "': " + ec.message());
      dir_made_ = true;
    }
    auto upload = std::make_unique<PartialUpload>();
    upload->part_path = final_path + "." + HexEncode(request.upload_id()) + ".part";
    upload->size = request.size();
    upload->fd = open(upload->part_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (upload->fd < 0) {
      return absl::InternalError("cannot write '" + upload->part_path + "': " + strerror(errno));
    }
    it = uploads_.emplace(key, std::move(upload)).first;
  }
  PartialUpload& upload = *it->second;
  if (request.size() != upload.size) {
    Drop(key);
    return absl::InvalidArgumentError("the upload's size changed between chunks");
  }
  if (request.offset() != upload.written) {
    return absl::FailedPreconditionError("chunk out of order: expected offset " +
                                         std::to_string(upload.written) + ", got " +
                                         std::to_string(request.offset()));
  }
  if (request.data().size() > upload.size - upload.written) {
    absl::Status past = absl::InvalidArgumentError(
        "a chunk goes past the announced size of " + std::to_string(upload.size) + " bytes");
    Drop(key);  // `upload` is gone with it
    return past;
  }
  absl::Status wrote = WriteAll(upload.fd, request.data(), upload.part_path);
  if (!wrote.ok()) {
    Drop(key);
    return wrote;
  }
  upload.sha.Update(request.data());
  upload.written += request.data().size();
  upload.last_ms = NowMs();
  if (upload.written < upload.size) return false;
  std::string actual = upload.sha.HexDigest();
  if (actual != request.digest()) {
    Drop(key);
    return absl::InvalidArgumentError("the uploaded bytes' SHA-256 is " + actual +
                                      ", not the announced " + request.digest());
  }
  close(upload.fd);
  upload.fd = -1;
  if (rename(upload.part_path.c_str(), final_path.c_str()) != 0) {
    std::string why = strerror(errno);
    unlink(upload.part_path.c_str());
    uploads_.erase(key);
    return absl::InternalError("cannot store '" + final_path + "': " + why);
  }
  uploads_.erase(key);
  LUMEN_LOG_INFO("gcs: stored executable {} ({} bytes)", request.digest(), request.size());
  return true;
}

absl::Status ExecutableStore::Read(const rpc::ReadExecutableRequest& request,
                                   rpc::ReadExecutableReply* reply) {
  LUMEN_RETURN_IF_ERROR(CheckDigest(request.digest()));
  const std::string path = PathOf(request.digest());
  int fd = dir_.empty() ? -1 : open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return absl::NotFoundError("the GCS has no executable " + request.digest() +
                               " (its driver never uploaded it)");
  }
  struct stat st;
  fstat(fd, &st);
  uint64_t size = uint64_t(st.st_size);
  if (request.offset() > size) {
    close(fd);
    return absl::OutOfRangeError("offset " + std::to_string(request.offset()) +
                                 " is past the end of " + std::to_string(size) + " bytes");
  }
  uint64_t length = std::min({request.length(), kMaxChunk, size - request.offset()});
  std::string* data = reply->mutable_data();
  data->resize(length);
  size_t done = 0;
  while (done < length) {
    ssize_t n = pread(fd, data->data() + done, length - done, off_t(request.offset() + done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      std::string why = n < 0 ? strerror(errno) : "file shrank";
      close(fd);
      return absl::InternalError("cannot read '" + path + "': " + why);
    }
    done += size_t(n);
  }
  close(fd);
  reply->set_size(size);
  return absl::OkStatus();
}

}  // namespace lumen::gcs
