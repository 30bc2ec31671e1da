// Monotonic time in milliseconds, for timeouts and ages; wall-clock time for what users
// read as dates (job start times, task events).
#pragma once

#include <chrono>
#include <cstdint>

namespace lumen {

inline int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

/// Wall clock, microseconds since the Unix epoch.
inline int64_t WallMicros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}
inline int64_t WallMs() { return WallMicros() / 1000; }

}  // namespace lumen
