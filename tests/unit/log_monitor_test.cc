// The raylet's log monitor: every line each worker prints reaches its log file and the
// sink, however quickly workers come and go.
#include "raylet/log_monitor.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>
#include <string>

namespace lumen::raylet {
namespace {

class LogMonitorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir[] = "/tmp/lumen_log_monitor_XXXXXX";
    ASSERT_NE(mkdtemp(dir), nullptr);
    dir_ = dir;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string LogPath(int i) const { return dir_ + "/worker-" + std::to_string(i) + ".out"; }
  static std::string Read(const std::string& path) {
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
  }

  std::string dir_;
  std::mutex mutex_;
  std::map<pid_t, std::string> lines_;  // by pid: what the sink got
  LogMonitor monitor_{[this](const std::string& tag, pid_t pid, const std::string& line, bool) {
    std::lock_guard<std::mutex> lock(mutex_);
    lines_[pid] += tag + ":" + line + ";";
  }};
};

// Each "worker" prints a line and exits at once, and the next one's pipe usually gets
// the descriptor number the monitor has just closed. A stream finished before it left
// the monitor's map used to take the next one's entry with it: that worker's output was
// lost (and, past 64 KiB, it blocked).
TEST_F(LogMonitorTest, EveryShortLivedWorkersOutputArrivesThoughDescriptorsAreReused) {
  constexpr int kWorkers = 400;
  for (int i = 1; i <= kWorkers; ++i) {
    int fds[2];
    ASSERT_EQ(pipe2(fds, O_CLOEXEC | O_NONBLOCK), 0);
    monitor_.Add(fds[0], i, LogPath(i), false, "job");
    std::string line = "worker " + std::to_string(i) + " says hi\n";
    ASSERT_EQ(write(fds[1], line.data(), line.size()), ssize_t(line.size()));
    close(fds[1]);
  }
  monitor_.Stop();
  std::lock_guard<std::mutex> lock(mutex_);
  int missing = 0;
  for (int i = 1; i <= kWorkers; ++i) {
    std::string line = "worker " + std::to_string(i) + " says hi";
    if (lines_[i] != "job:" + line + ";" || Read(LogPath(i)) != line + "\n") ++missing;
  }
  EXPECT_EQ(missing, 0) << "workers whose output was lost, of " << kWorkers;
}

TEST_F(LogMonitorTest, APartialLastLineArrivesAndAnAddAfterStopClosesTheDescriptor) {
  int fds[2];
  ASSERT_EQ(pipe2(fds, O_CLOEXEC | O_NONBLOCK), 0);
  monitor_.Add(fds[0], 7, LogPath(7), true, "job");
  ASSERT_EQ(write(fds[1], "one\ntwo", 7), 7);
  close(fds[1]);
  monitor_.Stop();
  {
    std::lock_guard<std::mutex> lock(mutex_);
    EXPECT_EQ(lines_[7], "job:one;job:two;");
  }
  EXPECT_EQ(Read(LogPath(7)), "one\ntwo");

  ASSERT_EQ(pipe2(fds, O_CLOEXEC), 0);
  monitor_.Add(fds[0], 8, LogPath(8), false, "job");
  EXPECT_EQ(fcntl(fds[0], F_GETFD), -1) << "a stream added after Stop was left open";
  close(fds[1]);
}

}  // namespace
}  // namespace lumen::raylet
