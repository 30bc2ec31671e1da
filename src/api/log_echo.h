// Worker output on the driver's terminal: the job's lines from the GCS's log channel.
#pragma once

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "gcs.grpc.pb.h"

namespace lumen::api {

/// One thread long-polling the GCS for the lines of one job and printing them: stdout
/// lines to stdout, stderr lines to stderr, as "(pid=N) text", or "(pid=N, node=IP) text"
/// for workers on another node than the driver's.
class LogEcho {
 public:
  LogEcho(const std::string& gcs_endpoint, std::string job_id, std::string local_node_id);
  ~LogEcho();
  /// Prints what the GCS already holds, then stops. Idempotent.
  void Stop();

 private:
  void Run();
  /// One GetLogs; prints its lines. False when the call failed.
  bool PollOnce(int64_t wait_ms, bool cancellable);

  std::unique_ptr<rpc::GcsService::Stub> gcs_;
  std::string job_id_;
  std::string local_node_id_;
  int64_t after_seq_ = 0;  // touched by the polling thread, then by Stop after joining it
  std::atomic<bool> stopping_{false};
  std::mutex mutex_;
  grpc::ClientContext* current_ = nullptr;  // the poll in flight, guarded by mutex_
  std::thread thread_;
};

}  // namespace lumen::api
