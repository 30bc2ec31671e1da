#include "object_manager/chunk_client.h"

#include <sys/socket.h>
#include <unistd.h>

#include "object_manager/chunk_wire.h"
#include "rpc/socket.h"

namespace lumen::object_manager {

ChunkClient::ChunkClient(int threads, int64_t timeout_ms) : timeout_ms_(timeout_ms) {
  for (int i = 0; i < std::max(threads, 1); ++i) threads_.emplace_back([this] { Run(); });
}

ChunkClient::~ChunkClient() { Stop(); }

void ChunkClient::Read(const std::string& address, const ObjectId& id, uint64_t offset,
                       uint64_t length, uint8_t* dest, Done done) {
  {
    MutexLock lock(&mutex_);
    if (!stopped_) {
      queue_.push_back(Job{address, id, offset, length, dest, std::move(done)});
      wake_.Signal();
      return;
    }
  }
  done(absl::CancelledError("the raylet is stopping"));
}

void ChunkClient::Run() {
  std::map<std::string, int> connections;  // this thread's, by address
  while (true) {
    Job job;
    {
      MutexLock lock(&mutex_);
      while (!stopped_ && queue_.empty()) wake_.Wait(&mutex_);
      if (stopped_) break;
      job = std::move(queue_.front());
      queue_.pop_front();
    }
    absl::StatusOr<ChunkRead> result = Perform(job, &connections);
    job.done(std::move(result));
  }
  for (const auto& [address, fd] : connections) Close(fd);
}

absl::StatusOr<ChunkRead> ChunkClient::Perform(const Job& job,
                                               std::map<std::string, int>* connections) {
  auto it = connections->find(job.address);
  bool reused = it != connections->end();
  for (int attempt = 0; attempt < 2; ++attempt) {
    if (it == connections->end()) {
      absl::StatusOr<int> fd = Connect(job.address);
      if (!fd.ok()) return fd.status();
      it = connections->emplace(job.address, *fd).first;
    }
    bool answered = false;
    absl::StatusOr<ChunkRead> result = Exchange(it->second, job, &answered);
    if (result.ok() || absl::IsNotFound(result.status())) return result;
    Close(it->second);  // its stream is out of step now
    connections->erase(it);
    it = connections->end();
    // A kept connection the server closed meanwhile (idle, restarted): once more on a
    // new one. Anything else is the answer.
    if (!reused || answered) return result;
    reused = false;
  }
  return absl::UnavailableError("unreachable");
}

absl::StatusOr<ChunkRead> ChunkClient::Exchange(int fd, const Job& job, bool* answered) {
  auto deadline = rpc::Deadline::clock::now() + std::chrono::milliseconds(timeout_ms_);
  auto fail = [&](const absl::Status& status) {
    std::string what = "reading object " + job.id.Hex() + " from the node at " + job.address +
                       ": " + std::string(status.message());
    return absl::IsDeadlineExceeded(status) ? absl::DeadlineExceededError(what)
                                            : absl::UnavailableError(what);
  };
  auto request = wire::Encode(wire::Request{job.id, job.offset, job.length});
  if (absl::Status sent = rpc::SendAll(fd, request.data(), request.size(), deadline);
      !sent.ok()) {
    return fail(sent);
  }
  std::array<uint8_t, wire::kReplyBytes> raw;
  if (absl::Status got = rpc::RecvAll(fd, raw.data(), raw.size(), deadline); !got.ok()) {
    return fail(got);
  }
  *answered = true;
  std::optional<wire::Reply> reply = wire::DecodeReply(raw);
  if (!reply) {
    return fail(absl::DataLossError("it is not a lumen object manager of this version"));
  }
  if (reply->status == wire::kNotHere) {
    if (reply->body > 4096) return fail(absl::DataLossError("it sent an overlong error"));
    std::string error(reply->body, '\0');
    if (absl::Status got = rpc::RecvAll(fd, error.data(), error.size(), deadline); !got.ok()) {
      return fail(got);
    }
    return absl::NotFoundError(error);
  }
  if (reply->body > job.length) {
    return fail(absl::DataLossError("it sent more than was asked"));
  }
  if (absl::Status got = rpc::RecvAll(fd, job.dest, reply->body, deadline); !got.ok()) {
    return fail(got);
  }
  return ChunkRead{reply->object_size, reply->body};
}

absl::StatusOr<int> ChunkClient::Connect(const std::string& address) {
  absl::StatusOr<int> fd = rpc::ConnectTcp(address, std::chrono::milliseconds(
                                                        std::min<int64_t>(timeout_ms_, 5000)));
  if (!fd.ok()) return fd.status();
  MutexLock lock(&mutex_);
  if (stopped_) {
    ::close(*fd);
    return absl::CancelledError("the raylet is stopping");
  }
  sockets_.insert(*fd);
  return fd;
}

void ChunkClient::Close(int fd) {
  {
    MutexLock lock(&mutex_);
    sockets_.erase(fd);
  }
  ::close(fd);
}

void ChunkClient::Stop() {
  std::deque<Job> queued;
  {
    MutexLock lock(&mutex_);
    if (stopped_) return;
    stopped_ = true;
    queued.swap(queue_);
    for (int fd : sockets_) ::shutdown(fd, SHUT_RDWR);  // reads in progress end now
    wake_.SignalAll();
  }
  for (Job& job : queued) job.done(absl::CancelledError("the raylet is stopping"));
  for (std::thread& thread : threads_) thread.join();
}

}  // namespace lumen::object_manager
