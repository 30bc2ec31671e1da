// Counts RPCs in flight so that an owner can wait for their callbacks before it dies.
#pragma once

#include <chrono>

#include "absl/synchronization/mutex.h"

namespace lumen::core {

class RpcTracker {
 public:
  void Begin() {
    absl::MutexLock lock(&mutex_);
    ++in_flight_;
  }
  /// Call as the last thing a callback does with its owner.
  void End() {
    absl::MutexLock lock(&mutex_);
    --in_flight_;
  }
  /// True when every callback has run before the timeout.
  bool WaitIdle(std::chrono::milliseconds timeout) {
    absl::MutexLock lock(&mutex_);
    auto idle = [this]() ABSL_SHARED_LOCKS_REQUIRED(mutex_) { return in_flight_ == 0; };
    return mutex_.AwaitWithTimeout(absl::Condition(&idle), absl::FromChrono(timeout));
  }

 private:
  absl::Mutex mutex_;
  int64_t in_flight_ ABSL_GUARDED_BY(mutex_) = 0;
};

}  // namespace lumen::core
