// Counts RPCs in flight so that an owner can wait for their callbacks before it dies.
#pragma once

#include <chrono>

#include "common/mutex.h"

namespace lumen::core {

class RpcTracker {
 public:
  void Begin() {
    MutexLock lock(&mutex_);
    ++in_flight_;
  }
  /// Call as the last thing a callback does with its owner.
  void End() {
    MutexLock lock(&mutex_);
    if (--in_flight_ == 0) idle_.SignalAll();
  }
  /// True when every callback has run before the timeout.
  bool WaitIdle(std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    MutexLock lock(&mutex_);
    while (in_flight_ > 0) {
      if (!idle_.WaitUntil(&mutex_, deadline) && in_flight_ > 0) return false;
    }
    return true;
  }

 private:
  Mutex mutex_;
  CondVar idle_;
  int64_t in_flight_ ABSL_GUARDED_BY(mutex_) = 0;
};

}  // namespace lumen::core
