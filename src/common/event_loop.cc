#include "common/event_loop.h"

#include <pthread.h>

namespace lumen {

EventLoop::EventLoop(std::string name)
    : name_(std::move(name)), work_(boost::asio::make_work_guard(io_)) {}

EventLoop::~EventLoop() {
  Stop();
  periodic_.clear();
}

void EventLoop::Start() {
  thread_ = std::thread([this] {
    pthread_setname_np(pthread_self(), name_.substr(0, 15).c_str());
    io_.run();
  });
}

void EventLoop::Stop() {
  if (!thread_.joinable()) return;
  Post([this] {
    work_.reset();
    io_.stop();
  });
  thread_.join();
}

struct EventLoop::Periodic {
  Periodic(boost::asio::io_context& io, std::chrono::milliseconds p, std::function<void()> f)
      : timer(io), period(p), fn(std::move(f)) {}
  void Arm() {
    timer.expires_after(period);
    timer.async_wait([this](const boost::system::error_code& ec) {
      if (ec) return;
      fn();
      Arm();
    });
  }
  boost::asio::steady_timer timer;
  std::chrono::milliseconds period;
  std::function<void()> fn;
};

void EventLoop::RunEvery(std::chrono::milliseconds period, std::function<void()> fn) {
  auto periodic = std::make_unique<Periodic>(io_, period, std::move(fn));
  Periodic* raw = periodic.get();
  {
    std::lock_guard<std::mutex> lock(periodic_mutex_);
    periodic_.push_back(std::move(periodic));
  }
  Post([raw] { raw->Arm(); });
}

void EventLoop::RunAfter(std::chrono::milliseconds delay, std::function<void()> fn) {
  auto timer = std::make_shared<boost::asio::steady_timer>(io_, delay);
  timer->async_wait([timer, fn = std::move(fn)](const boost::system::error_code& ec) {
    if (!ec) fn();
  });
}

}  // namespace lumen
