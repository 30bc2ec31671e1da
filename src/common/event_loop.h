// One thread running an asio io_context: the owner of a component's mutable state.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>
#include <string>
#include <thread>

namespace lumen {

/// Runs posted work in order on one thread. Start() and Stop() are called by the owner;
/// Post() and the timers are thread-safe.
class EventLoop {
 public:
  explicit EventLoop(std::string name);
  ~EventLoop();
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  void Start();
  /// Runs what is already posted, then joins the thread. Idempotent.
  void Stop();

  void Post(std::function<void()> fn) { boost::asio::post(io_, std::move(fn)); }
  /// Runs `fn` on the loop every `period` until Stop.
  void RunEvery(std::chrono::milliseconds period, std::function<void()> fn);
  /// Runs `fn` on the loop once after `delay` (dropped if the loop stops first).
  void RunAfter(std::chrono::milliseconds delay, std::function<void()> fn);
  boost::asio::io_context& io() { return io_; }

 private:
  std::string name_;
  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_;
  struct Periodic;
  std::mutex periodic_mutex_;
  std::vector<std::unique_ptr<Periodic>> periodic_;  // destroyed after the thread joins
  std::thread thread_;
};

}  // namespace lumen
