#include "raylet/log_monitor.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <vector>

namespace lumen::raylet {

LogMonitor::LogMonitor(Sink sink) : sink_(std::move(sink)) {
  if (pipe2(wake_pipe_, O_CLOEXEC | O_NONBLOCK) != 0) wake_pipe_[0] = wake_pipe_[1] = -1;
  thread_ = std::thread([this] { Run(); });
}

LogMonitor::~LogMonitor() { Stop(); }

void LogMonitor::Add(int fd, pid_t pid, const std::string& log_path, bool from_stderr,
                     const std::string& tag) {
  int log_fd = open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stopping_) {  // nobody would read or close it
      close(fd);
      if (log_fd >= 0) close(log_fd);
      return;
    }
    streams_.emplace(fd, Stream{pid, from_stderr, tag, log_fd, {}});
    char c = 1;
    (void)!write(wake_pipe_[1], &c, 1);  // under the lock: Stop closes the pipe
  }
}

void LogMonitor::Stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stopping_) return;
    stopping_ = true;
  }
  char c = 0;
  (void)!write(wake_pipe_[1], &c, 1);
  if (thread_.joinable()) thread_.join();
  for (auto& [fd, stream] : streams_) {
    Drain(fd, stream);
    Emit(stream, nullptr, 0, true);
    close(fd);
    if (stream.log_fd >= 0) close(stream.log_fd);
  }
  streams_.clear();
  std::lock_guard<std::mutex> lock(mutex_);
  close(wake_pipe_[0]);
  close(wake_pipe_[1]);
  wake_pipe_[0] = wake_pipe_[1] = -1;
}

void LogMonitor::Emit(Stream& stream, const char* data, size_t size, bool flush_partial) {
  if (stream.log_fd >= 0 && size > 0) (void)!write(stream.log_fd, data, size);
  if (!sink_) return;
  stream.partial.append(data ? data : "", size);
  size_t start = 0;
  for (size_t nl; (nl = stream.partial.find('\n', start)) != std::string::npos;
       start = nl + 1) {
    sink_(stream.tag, stream.pid, stream.partial.substr(start, nl - start),
          stream.from_stderr);
  }
  stream.partial.erase(0, start);
  if (flush_partial && !stream.partial.empty()) {
    sink_(stream.tag, stream.pid, stream.partial, stream.from_stderr);
    stream.partial.clear();
  }
}

bool LogMonitor::ReadOnce(int fd, Stream& stream) {
  char buf[65536];
  ssize_t n = read(fd, buf, sizeof(buf));
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) return true;
  if (n <= 0) return false;
  Emit(stream, buf, size_t(n), false);
  return true;
}

bool LogMonitor::Drain(int fd, Stream& stream) {
  // At stop only: the writers are gone, so this ends at EOF.
  while (true) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 0) <= 0) return true;
    if (!ReadOnce(fd, stream)) return false;
  }
}

void LogMonitor::Run() {
  while (true) {
    std::vector<pollfd> fds;
    fds.push_back({wake_pipe_[0], POLLIN, 0});
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (stopping_) return;
      for (const auto& [fd, stream] : streams_) fds.push_back({fd, POLLIN, 0});
    }
    if (poll(fds.data(), fds.size(), 1000) < 0) continue;
    if (fds[0].revents) {
      char buf[64];
      while (read(wake_pipe_[0], buf, sizeof(buf)) > 0) {
      }
    }
    // One bounded read per ready stream per round, so a worker that prints without end
    // cannot starve the others; reads, file writes and the sink run outside the lock
    // (only this thread touches a Stream or erases from the map).
    for (size_t i = 1; i < fds.size(); ++i) {
      if (!fds[i].revents) continue;
      Stream* stream = nullptr;
      {
        std::lock_guard<std::mutex> lock(mutex_);
        auto it = streams_.find(fds[i].fd);
        if (it != streams_.end()) stream = &it->second;
      }
      if (stream == nullptr || ReadOnce(fds[i].fd, *stream)) continue;
      Emit(*stream, nullptr, 0, true);
      // Out of the map before the descriptor is closed: once closed, its number may be
      // handed at once to a new worker's pipe, whose Add must not meet this entry.
      Stream finished;
      {
        std::lock_guard<std::mutex> lock(mutex_);
        auto it = streams_.find(fds[i].fd);
        finished = std::move(it->second);
        streams_.erase(it);
      }
      close(fds[i].fd);
      if (finished.log_fd >= 0) close(finished.log_fd);
    }
  }
}

}  // namespace lumen::raylet
