// The GCS's log channel: what workers on every node print, kept per job for its driver.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "gcs.pb.h"
#include "rpc/rpc.h"

namespace lumen::gcs {

/// Raylets publish lines; the job's driver long-polls them in order. Each job keeps its
/// last `max_lines_per_job` lines: a driver that reads slower than its workers print is
/// told how many it missed. Loop-only: every method runs on the GCS event loop.
class LogChannel {
 public:
  using RunAfter = std::function<void(std::chrono::milliseconds, std::function<void()>)>;
  LogChannel(RunAfter run_after, size_t max_lines_per_job = 10000)
      : run_after_(std::move(run_after)), max_lines_(max_lines_per_job) {}

  void Publish(const rpc::PublishLogsRequest& request);
  /// Answers at once when lines after `after_seq` exist (or wait_ms <= 0, or stopped),
  /// else parks the poll until a line comes or wait_ms (at most 30 s) passes.
  void Poll(const rpc::GetLogsRequest& request, rpc::GetLogsReply* reply, rpc::Done done);
  /// Forgets a finished job's lines, answering its parked polls.
  void DropJob(const std::string& job_id);
  /// Answers every parked poll; later polls are answered at once.
  void Stop();

 private:
  struct Parked {
    uint64_t token;
    int64_t after_seq;
    rpc::GetLogsReply* reply;
    rpc::Done done;
  };
  struct Job {
    int64_t first_seq = 1;  // of lines.front()
    std::deque<rpc::LogLine> lines;
    std::vector<Parked> parked;
  };
  void Answer(const Job& job, int64_t after_seq, rpc::GetLogsReply* reply) const;
  void WakeParked(Job& job);

  RunAfter run_after_;
  size_t max_lines_;
  std::map<std::string, Job> jobs_;  // by binary job id
  uint64_t next_token_ = 1;
  bool stopped_ = false;
};

}  // namespace lumen::gcs
