// The outgoing calls of a component that must not outlive it: it cancels them and waits
// for their callbacks before it goes away.
#pragma once

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <memory>
#include <set>

#include "common/mutex.h"

namespace lumen::rpc {

/// Thread-safe.
class CallTracker {
 public:
  /// The context for a new call (pass it to CallUnary), or nullptr once stopping: make
  /// no call then.
  std::shared_ptr<grpc::ClientContext> Begin() {
    MutexLock lock(&mutex_);
    if (stopping_) return nullptr;
    auto context = std::make_shared<grpc::ClientContext>();
    calls_.insert(context);
    return context;
  }
  /// The last thing the call's callback does with the component.
  void End(const std::shared_ptr<grpc::ClientContext>& context) {
    MutexLock lock(&mutex_);
    calls_.erase(context);
    if (calls_.empty()) idle_.SignalAll();
  }
  /// Refuses new calls, cancels those in flight (their callbacks run with CANCELLED) and
  /// waits up to `timeout` for their callbacks. True when every one has ended.
  bool CancelAndWait(std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    std::set<std::shared_ptr<grpc::ClientContext>> calls;
    {
      MutexLock lock(&mutex_);
      stopping_ = true;
      calls = calls_;
    }
    // Unlocked: a cancelled call's callback may run (and End) at once.
    for (const auto& context : calls) context->TryCancel();
    MutexLock lock(&mutex_);
    while (!calls_.empty()) {
      if (!idle_.WaitUntil(&mutex_, deadline) && !calls_.empty()) return false;
    }
    return true;
  }

 private:
  Mutex mutex_;
  CondVar idle_;
  std::set<std::shared_ptr<grpc::ClientContext>> calls_ ABSL_GUARDED_BY(mutex_);
  bool stopping_ ABSL_GUARDED_BY(mutex_) = false;
};

}  // namespace lumen::rpc
