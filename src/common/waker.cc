#include "common/waker.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cstdint>

namespace lumen {

std::shared_ptr<Waker> Waker::ForThisThread() {
  thread_local std::shared_ptr<Waker> waker = []() -> std::shared_ptr<Waker> {
    int fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    return fd < 0 ? nullptr : std::shared_ptr<Waker>(new Waker(fd));
  }();
  return waker;
}

Waker::~Waker() { ::close(fd_); }

void Waker::Wake() const {
  if (std::this_thread::get_id() == owner_) return;
  uint64_t one = 1;
  [[maybe_unused]] ssize_t n = ::write(fd_, &one, sizeof one);
}

void Waker::Drain() const {
  uint64_t count;
  [[maybe_unused]] ssize_t n = ::read(fd_, &count, sizeof count);
}

}  // namespace lumen
