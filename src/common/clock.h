// Monotonic time in milliseconds, for timeouts and ages.
#pragma once

#include <chrono>
#include <cstdint>

namespace lumen {

inline int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace lumen
