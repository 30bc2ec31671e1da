// Copies what workers print into per-worker log files and, optionally, to the driver.
#pragma once

#include <sys/types.h>

#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>

namespace lumen::raylet {

/// One thread polling the output pipes of workers. Each chunk is appended to the
/// worker's log file; each complete line (without its newline) is passed to the sink with
/// the stream's tag (the raylet's: the worker's job), the worker's pid, and whether it
/// came from the worker's stderr. The sink runs on the monitor's thread.
/// Thread-safe.
class LogMonitor {
 public:
  using Sink = std::function<void(const std::string& tag, pid_t pid, const std::string& line,
                                  bool from_stderr)>;
  /// `sink` may be empty (no echo).
  explicit LogMonitor(Sink sink);
  ~LogMonitor();

  /// Starts following `fd` (takes ownership) into `log_path`. After Stop: closes it.
  void Add(int fd, pid_t pid, const std::string& log_path, bool from_stderr,
           const std::string& tag = "");
  /// Drains what is readable, then stops. Idempotent.
  void Stop();

 private:
  struct Stream {
    pid_t pid = 0;
    bool from_stderr = false;
    std::string tag;
    int log_fd = -1;
    std::string partial;
  };
  void Run();
  bool ReadOnce(int fd, Stream& stream);  // false at EOF
  bool Drain(int fd, Stream& stream);     // false at EOF
  void Emit(Stream& stream, const char* data, size_t size, bool flush_partial);

  Sink sink_;
  int wake_pipe_[2] = {-1, -1};
  std::mutex mutex_;
  // By pipe fd. The map is guarded by mutex_; a Stream's contents are touched only by
  // the monitor thread (and by Stop after joining it).
  std::map<int, Stream> streams_;
  bool stopping_ = false;          // guarded by mutex_
  std::thread thread_;
};

}  // namespace lumen::raylet
