#include "raylet/executable_cache.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "common/logging.h"

namespace lumen::raylet {
namespace {

constexpr uint64_t kChunkBytes = uint64_t(8) << 20;

}  // namespace

ExecutableCache::ExecutableCache(std::string dir, ReadExecutableChunk read,
                                 std::function<void(std::function<void()>)> post)
    : dir_(std::move(dir)), read_(std::move(read)), post_(std::move(post)) {}

ExecutableCache::~ExecutableCache() {
  Stop();
  for (auto& [digest, fetch] : fetches_) {
    close(fetch->fd);
    unlink(fetch->part_path.c_str());
  }
}

void ExecutableCache::Stop() {
  std::vector<std::function<void()>> cancels;
  {
    MutexLock lock(&mutex_);
    stopped_ = true;
    for (auto& [id, cancel] : cancels_) {
      if (cancel) cancels.push_back(cancel);
    }
  }
  for (auto& cancel : cancels) cancel();
  MutexLock lock(&mutex_);
  while (outstanding_ > 0) idle_.Wait(&mutex_);
}

void ExecutableCache::Ensure(const std::string& digest, uint64_t size, Done done) {
  if (!IsHexDigest(digest)) {
    return done(absl::InvalidArgumentError("the job's executable digest '" + digest +
                                           "' is not 64 lowercase hex digits"));
  }
  const std::string path = PathOf(digest);
  struct stat st;
  if (stat(path.c_str(), &st) == 0 && uint64_t(st.st_size) == size) return done(path);
  auto running = fetches_.find(digest);
  if (running != fetches_.end()) {
    running->second->waiters.push_back(std::move(done));
    return;
  }
  std::error_code ec;
  std::filesystem::create_directories(dir_, ec);
  if (ec) return done(absl::InternalError("cannot make '" + dir_ + "': " + ec.message()));
  auto fetch = std::make_unique<Fetch>();
  fetch->size = size;
  fetch->part_path = path + ".part";
  fetch->fd = open(fetch->part_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0700);
  if (fetch->fd < 0) {
    return done(absl::InternalError("cannot write '" + fetch->part_path + "': " +
                                    strerror(errno)));
  }
  fetch->waiters.push_back(std::move(done));
  fetches_[digest] = std::move(fetch);
  LUMEN_LOG_DEBUG("raylet: fetching executable {} ({} bytes) from the GCS", digest, size);
  ReadNext(digest);
}

void ExecutableCache::ReadNext(const std::string& digest) {
  Fetch& fetch = *fetches_.at(digest);
  rpc::ReadExecutableRequest request;
  request.set_digest(digest);
  request.set_offset(fetch.offset);
  request.set_length(std::min(kChunkBytes, fetch.size - fetch.offset));
  uint64_t id = 0;
  bool stopped;
  {
    MutexLock lock(&mutex_);
    stopped = stopped_;
    if (!stopped) {
      id = next_read_++;
      ++outstanding_;
      cancels_[id] = nullptr;
    }
  }
  if (stopped) return Finish(digest, absl::UnavailableError("raylet stopping"));
  auto cancel = read_(request, [this, digest, id](absl::Status status,
                                                  rpc::ReadExecutableReply&& reply) {
    post_([this, digest, status, reply = std::move(reply)]() mutable {
      OnChunk(digest, status, std::move(reply));
    });
    MutexLock lock(&mutex_);
    cancels_.erase(id);
    if (--outstanding_ == 0) idle_.SignalAll();
  });
  MutexLock lock(&mutex_);
  auto it = cancels_.find(id);
  if (it != cancels_.end()) it->second = std::move(cancel);
}

void ExecutableCache::OnChunk(const std::string& digest, absl::Status status,
                              rpc::ReadExecutableReply reply) {
  auto it = fetches_.find(digest);
  if (it == fetches_.end()) return;
  Fetch& fetch = *it->second;
  if (!status.ok()) {
    return Finish(digest, absl::Status(status.code(), "cannot fetch the job's executable " +
                                                          digest + " from the GCS: " +
                                                          std::string(status.message())));
  }
  if (reply.size() != fetch.size) {
    return Finish(digest, absl::DataLossError(
                              "the GCS's executable " + digest + " has " +
                              std::to_string(reply.size()) + " bytes, the job says " +
                              std::to_string(fetch.size)));
  }
  const std::string& data = reply.data();
  if (data.empty() && fetch.offset < fetch.size) {
    return Finish(digest, absl::DataLossError("the GCS sent no bytes of executable " + digest));
  }
  size_t written = 0;
  while (written < data.size()) {
    ssize_t n = pwrite(fetch.fd, data.data() + written, data.size() - written,
                       off_t(fetch.offset + written));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      return Finish(digest, absl::InternalError("cannot write '" + fetch.part_path + "': " +
                                                strerror(errno)));
    }
    written += size_t(n);
  }
  fetch.sha.Update(data);
  fetch.offset += data.size();
  if (fetch.offset < fetch.size) return ReadNext(digest);
  std::string actual = fetch.sha.HexDigest();
  if (actual != digest) {
    return Finish(digest, absl::DataLossError("the executable fetched as " + digest +
                                              " has SHA-256 " + actual));
  }
  close(fetch.fd);
  fetch.fd = -1;
  const std::string path = PathOf(digest);
  if (rename(fetch.part_path.c_str(), path.c_str()) != 0) {
    return Finish(digest, absl::InternalError("cannot store '" + path + "': " +
                                              strerror(errno)));
  }
  LUMEN_LOG_INFO("raylet: cached executable {} ({} bytes)", digest, fetch.size);
  Finish(digest, path);
}

void ExecutableCache::Finish(const std::string& digest, absl::StatusOr<std::string> result) {
  auto it = fetches_.find(digest);
  std::vector<Done> waiters = std::move(it->second->waiters);
  if (it->second->fd >= 0) {
    close(it->second->fd);
    unlink(it->second->part_path.c_str());
  }
  fetches_.erase(it);
  bool stopped;
  {
    MutexLock lock(&mutex_);
    stopped = stopped_;
  }
  if (!result.ok() && !stopped) LUMEN_LOG_WARN("raylet: {}", result.status().ToString());
  for (auto& done : waiters) done(result);
}

}  // namespace lumen::raylet
