// Follows the GCS's list of processes gone — drivers and workers that exited, and every
// process of a node declared dead — so that a core worker stops waiting for them and
// forgets them as borrowers.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "common/event_loop.h"
#include "common/mutex.h"
#include "gcs.grpc.pb.h"

namespace lumen::core {

/// A long poll of GetAllNodes (gone_owners_only) that starts with the processes gone in
/// the last minute, then follows new ones: `on_gone` runs on a gRPC thread with each batch of TCP addresses, oldest first,
/// before they are remembered as gone. A failed poll is retried every second. The last
/// kRemembered addresses are remembered (a process gone long ago may have left its port
/// to a new one). Thread-safe.
class PeerWatch {
 public:
  static constexpr size_t kRemembered = 10000;
  static constexpr int64_t kPollWaitMs = 30000;
  using OnGone = std::function<void(const std::vector<std::string>& addresses)>;

  PeerWatch(rpc::GcsService::Stub* gcs, EventLoop* timers, OnGone on_gone)
      : gcs_(gcs), timers_(timers), on_gone_(std::move(on_gone)) {}
  ~PeerWatch() { Stop(); }

  /// Asks the GCS for the processes gone so far, then polls for more.
  void Start();
  /// Cancels the poll and waits for its callback (and a retry's timer). Idempotent.
  void Stop();
  /// Whether `address` was announced gone.
  bool IsGone(const std::string& address);

 private:
  /// Sends the next poll (unless stopped: then it ends the watch).
  void Poll();
  void OnReply(absl::Status status, rpc::GetAllNodesReply&& reply);

  rpc::GcsService::Stub* gcs_;
  EventLoop* timers_;
  OnGone on_gone_;
  Mutex mutex_;
  CondVar idle_;
  bool stopped_ ABSL_GUARDED_BY(mutex_) = false;
  bool started_ ABSL_GUARDED_BY(mutex_) = false;
  bool busy_ ABSL_GUARDED_BY(mutex_) = false;  // a poll or a retry timer is out
  std::shared_ptr<grpc::ClientContext> call_ ABSL_GUARDED_BY(mutex_);
  uint64_t cursor_ ABSL_GUARDED_BY(mutex_) = 0;
  bool have_cursor_ ABSL_GUARDED_BY(mutex_) = false;
  std::deque<std::string> order_ ABSL_GUARDED_BY(mutex_);
  absl::flat_hash_set<std::string> gone_ ABSL_GUARDED_BY(mutex_);
};

}  // namespace lumen::core
