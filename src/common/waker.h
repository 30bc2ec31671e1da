// A thread's wake-up descriptor: an eventfd that the thread polls beside the sockets it
// reads while it waits, so that another thread can end that wait (where a condition
// variable cannot: the waiter sleeps in poll, not on the variable).
#pragma once

#include <memory>
#include <thread>

namespace lumen {

class Waker {
 public:
  /// The calling thread's (made on first use; nullptr if no eventfd can be had).
  static std::shared_ptr<Waker> ForThisThread();

  ~Waker();
  Waker(const Waker&) = delete;
  Waker& operator=(const Waker&) = delete;

  /// Ends the owner thread's current or next wait. Any thread; a no-op on the owner's
  /// own thread (it is not waiting: it is the one storing what it waits for).
  void Wake() const;
  /// The descriptor to poll for POLLIN.
  int fd() const { return fd_; }
  /// After the descriptor polled readable: resets it.
  void Drain() const;

 private:
  explicit Waker(int fd) : fd_(fd), owner_(std::this_thread::get_id()) {}
  const int fd_;
  const std::thread::id owner_;
};

}  // namespace lumen
