#include "core_worker/peer_watch.h"

#include <chrono>

#include "common/logging.h"
#include "rpc/rpc.h"

namespace lumen::core {

void PeerWatch::Start() {
  {
    MutexLock lock(&mutex_);
    if (stopped_ || started_) return;
    started_ = true;
    busy_ = true;
  }
  Poll();
}

void PeerWatch::Poll() {
  auto context = std::make_shared<grpc::ClientContext>();
  rpc::GetAllNodesRequest request;
  request.set_gone_owners_only(true);
  {
    MutexLock lock(&mutex_);
    if (stopped_) {
      busy_ = false;
      idle_.SignalAll();
      return;
    }
    call_ = context;  // Stop may cancel it before it starts: it then fails at once
    // The first call takes, at once, the processes gone in the last minute (a process
    // that starts after a node died may be handed refs owned there).
    request.set_gone_owners_after(cursor_);
    request.set_wait_ms(have_cursor_ ? kPollWaitMs : 0);
  }
  rpc::CallUnary<rpc::GetAllNodesRequest, rpc::GetAllNodesReply>(
      [this](auto... args) { gcs_->async()->GetAllNodes(args...); }, std::move(request),
      [this](absl::Status status, rpc::GetAllNodesReply&& reply) {
        OnReply(std::move(status), std::move(reply));
      },
      kPollWaitMs + 10000, std::move(context));
}

void PeerWatch::OnReply(absl::Status status, rpc::GetAllNodesReply&& reply) {
  std::vector<std::string> gone(reply.gone_owners().begin(), reply.gone_owners().end());
  bool stopped;
  {
    MutexLock lock(&mutex_);
    stopped = stopped_;
  }
  if (status.ok() && !gone.empty() && !stopped) on_gone_(gone);
  {
    MutexLock lock(&mutex_);
    call_ = nullptr;
    if (status.ok()) {
      cursor_ = reply.gone_owners_last();
      have_cursor_ = true;
      for (std::string& address : gone) {
        if (!gone_.insert(address).second) continue;
        order_.push_back(std::move(address));
        if (order_.size() > kRemembered) {
          gone_.erase(order_.front());
          order_.pop_front();
        }
      }
    }
  }
  if (status.ok()) return Poll();
  LUMEN_LOG_DEBUG("core worker: watching for processes gone: {}; retrying", status.ToString());
  timers_->RunAfter(std::chrono::seconds(1), [this] { Poll(); });
}

void PeerWatch::Stop() {
  std::shared_ptr<grpc::ClientContext> call;
  {
    MutexLock lock(&mutex_);
    stopped_ = true;
    call = call_;
  }
  if (call) call->TryCancel();  // its callback may run on this thread
  MutexLock lock(&mutex_);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (busy_) {
    if (!idle_.WaitUntil(&mutex_, deadline)) {
      LUMEN_LOG_WARN("core worker: the watch for processes gone did not stop in time");
      return;
    }
  }
}

bool PeerWatch::IsGone(const std::string& address) {
  MutexLock lock(&mutex_);
  return gone_.contains(address);
}

}  // namespace lumen::core
