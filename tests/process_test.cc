// Process hygiene: no orphan workers and no leftover files after Shutdown, SIGTERM,
// SIGINT or even SIGKILL of the driver.
#include <gtest/gtest.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <set>
#include <sstream>
#include <thread>

#include "lumen/lumen.h"
#include "test_util.h"

int Pid() {
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  return getpid();
}
LUMEN_REMOTE(Pid);

namespace {

bool Alive(pid_t pid) { return kill(pid, 0) == 0; }

// Waits (bounded, generous) until none of `pids` is alive.
bool AllGone(const std::set<int>& pids, double seconds = 10) {
  auto start = std::chrono::steady_clock::now();
  while (lumen::test::SecondsSince(start) < seconds) {
    bool any = false;
    for (int pid : pids) any = any || Alive(pid);
    if (!any) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

struct Fixture {
  pid_t pid = -1;
  std::set<int> workers;
};

// Starts driver_fixture with `session_dir` (and `mode`), reads its worker pids until
// "ready".
Fixture StartFixture(const std::string& session_dir, const std::string& mode = "") {
  const char* path = std::getenv("LUMEN_DRIVER_FIXTURE");
  EXPECT_NE(path, nullptr) << "LUMEN_DRIVER_FIXTURE is set by ctest";
  Fixture fixture;
  if (path == nullptr) return fixture;
  int out[2];
  EXPECT_EQ(pipe(out), 0);
  fixture.pid = fork();
  if (fixture.pid == 0) {
    dup2(out[1], 1);
    close(out[0]);
    if (mode.empty()) {
      execl(path, path, session_dir.c_str(), nullptr);
    } else {
      execl(path, path, session_dir.c_str(), mode.c_str(), nullptr);
    }
    _exit(127);
  }
  close(out[1]);
  std::string text;
  char buf[256];
  while (text.find("ready") == std::string::npos) {
    ssize_t n = read(out[0], buf, sizeof(buf));
    if (n <= 0) break;
    text.append(buf, size_t(n));
  }
  close(out[0]);
  std::istringstream lines(text);
  for (std::string word; lines >> word;) {
    if (word == "worker") {
      int pid = 0;
      lines >> pid;
      fixture.workers.insert(pid);
    }
  }
  return fixture;
}

int WaitExit(pid_t pid) {
  int status = 0;
  waitpid(pid, &status, 0);
  return status;
}

TEST(ProcessTest, ShutdownStopsEveryWorkerAndRemovesFiles) {
  lumen::Config config;
  config.num_cpus = 2;
  config.session_dir = "/tmp/lumen/session_process_test_" + std::to_string(getpid());
  lumen::Init(config);
  std::vector<lumen::ObjectRef<int>> refs;
  for (int i = 0; i < 6; ++i) refs.push_back(lumen::Task(Pid).Remote());
  std::set<int> workers;
  for (const auto& pid : lumen::Get(refs)) workers.insert(*pid);
  EXPECT_GE(workers.size(), 2u);
  lumen::Shutdown();
  EXPECT_TRUE(AllGone(workers, 1.0));  // Shutdown waits for them
  EXPECT_FALSE(std::filesystem::exists(config.session_dir));
}

class SignalTest : public ::testing::TestWithParam<int> {};

TEST_P(SignalTest, SignalledDriverCleansUp) {
  int signo = GetParam();
  std::string dir = "/tmp/lumen/session_signal_test_" + std::to_string(getpid());
  Fixture fixture = StartFixture(dir);
  ASSERT_GT(fixture.pid, 0);
  ASSERT_FALSE(fixture.workers.empty());
  EXPECT_TRUE(std::filesystem::exists(dir + "/sockets/raylet.sock"));
  kill(fixture.pid, signo);
  int status = WaitExit(fixture.pid);
  EXPECT_TRUE(WIFSIGNALED(status));
  EXPECT_EQ(WTERMSIG(status), signo);
  EXPECT_TRUE(AllGone(fixture.workers));
  EXPECT_FALSE(std::filesystem::exists(dir));
}

// Ctrl-C while main is blocked in Get: the program ends by the signal (130 in a shell),
// not by std::terminate on an exception thrown into main, and leaves nothing behind.
TEST_P(SignalTest, ASignalWhileBlockedInGetEndsTheProgramCleanly) {
  int signo = GetParam();
  std::string dir = "/tmp/lumen/session_signal_get_test_" + std::to_string(getpid());
  Fixture fixture = StartFixture(dir, "get");
  ASSERT_GT(fixture.pid, 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // into the Get
  kill(fixture.pid, signo);
  int status = WaitExit(fixture.pid);
  ASSERT_TRUE(WIFSIGNALED(status)) << "exit status " << WEXITSTATUS(status);
  EXPECT_EQ(WTERMSIG(status), signo) << "SIGABRT means std::terminate";
  EXPECT_TRUE(AllGone(fixture.workers));
  EXPECT_FALSE(std::filesystem::exists(dir));
  std::string segments;
  for (const auto& entry : std::filesystem::directory_iterator("/dev/shm")) {
    std::string name = entry.path().filename();
    if (name.starts_with("lumen_" + std::to_string(fixture.pid) + "_")) segments += name + " ";
  }
  EXPECT_EQ(segments, "") << "the store's segment outlived the program";
}

INSTANTIATE_TEST_SUITE_P(TermAndInt, SignalTest, ::testing::Values(SIGTERM, SIGINT));

TEST(ProcessTest, KilledDriverLeavesNoOrphans) {
  std::string dir = "/tmp/lumen/session_killed_test_" + std::to_string(getpid());
  Fixture fixture = StartFixture(dir);
  ASSERT_GT(fixture.pid, 0);
  ASSERT_FALSE(fixture.workers.empty());
  kill(fixture.pid, SIGKILL);
  WaitExit(fixture.pid);
  // Workers notice through their lifeline pipe and exit on their own.
  EXPECT_TRUE(AllGone(fixture.workers));
  // The dead driver's session is swept by the next driver that starts.
  EXPECT_TRUE(std::filesystem::exists(dir));
  lumen::Config config;
  config.num_cpus = 1;
  lumen::Init(config);
  EXPECT_FALSE(std::filesystem::exists(dir));
  lumen::Shutdown();
}

}  // namespace
