// What the object-store tests share: byte patterns that show misplaced or mixed-up data,
// waiting for the node store to empty, and a cluster fixture that checks that Shutdown
// leaves no process and no shared-memory segment behind.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "lumen/lumen.h"
#include "lumen/memory.h"
#include "test_util.h"

namespace lumen::test {

constexpr uint64_t kKiB = 1024;
constexpr uint64_t kMiB = 1024 * kKiB;
constexpr uint64_t kGiB = 1024 * kMiB;

// The byte at `i` of pattern `seed`: differs between seeds and (with the high bits of
// `i` mixed in) between far-apart positions, so a misplaced page or a mixed-up object
// shows.
inline uint8_t PatternByte(uint64_t seed, uint64_t i) {
  return uint8_t(i * 131 + seed * 17 + (i >> 8) * 7 + (i >> 16) * 13 + (i >> 24) * 3 +
                 seed * (i >> 20));
}

inline std::vector<uint8_t> MakePattern(uint64_t size, uint64_t seed) {
  std::vector<uint8_t> out(size);
  for (uint64_t i = 0; i < size; ++i) out[i] = PatternByte(seed, i);
  return out;
}

// "<size> bytes, pattern <seed> ok" or where the first byte differs. A readable
// one-liner, so that a failure does not dump megabytes.
template <typename Bytes>
std::string Describe(const Bytes& bytes, uint64_t seed) {
  const uint64_t size = bytes.size();
  for (uint64_t i = 0; i < size; ++i) {
    if (uint8_t(bytes[i]) != PatternByte(seed, i)) {
      return std::to_string(size) + " bytes, pattern " + std::to_string(seed) +
             " differs at byte " + std::to_string(i) + " (got " +
             std::to_string(int(uint8_t(bytes[i]))) + ", want " +
             std::to_string(int(PatternByte(seed, i))) + ")";
    }
  }
  return std::to_string(size) + " bytes, pattern " + std::to_string(seed) + " ok";
}

inline std::string Expected(uint64_t size, uint64_t seed) {
  return std::to_string(size) + " bytes, pattern " + std::to_string(seed) + " ok";
}

// A hang guard for every Get: a broken runtime fails the test instead of stalling it.
constexpr std::chrono::seconds kGuard(120);

template <typename T>
auto Value(const lumen::ObjectRef<T>& ref) {
  return lumen::Get(ref, kGuard);
}

inline bool StoreEmpty() {
  lumen::MemoryInfo info = lumen::GetMemoryInfo(false);
  return info.used == 0 && info.num_objects == 0;
}

// Waits (bounded, generous) until the store holds nothing; the summary for the message.
inline ::testing::AssertionResult StoreBecomesEmpty(double seconds = 60) {
  if (WaitUntil(StoreEmpty, seconds)) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "the store still holds objects:\n"
                                       << lumen::MemorySummary();
}

// Shared-memory segments of this process's clusters (/dev/shm/lumen_<pid>_...).
inline std::vector<std::string> OurSegments() {
  std::vector<std::string> found;
  std::error_code error;
  const std::string prefix = "lumen_" + std::to_string(getpid()) + "_";
  for (const auto& entry : std::filesystem::directory_iterator("/dev/shm", error)) {
    std::string name = entry.path().filename().string();
    if (name.rfind(prefix, 0) == 0) found.push_back(name);
  }
  return found;
}

inline std::string Join(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& name : names) out += (out.empty() ? "" : " ") + name;
  return out;
}

// A cluster with a store of store_bytes(); Shutdown must leave no worker process and no
// shared-memory segment behind.
class StoreTest : public ClusterTest {
 protected:
  virtual int64_t store_bytes() const { return int64_t(256 * kMiB); }
  lumen::Config MakeConfig() override {
    lumen::Config config = ClusterTest::MakeConfig();
    config.object_store_memory = store_bytes();
    return config;
  }
  void TearDown() override {
    ClusterTest::TearDown();
    std::vector<int> left = WaitForNoChildren(30);
    EXPECT_TRUE(left.empty()) << "processes left after Shutdown: " << JoinPids(left);
    std::vector<std::string> segments = OurSegments();
    EXPECT_TRUE(segments.empty()) << "shared-memory segments left after Shutdown: "
                                  << Join(segments);
  }
};

}  // namespace lumen::test
