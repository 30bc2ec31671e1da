// Helpers shared by the lumen tests.
#pragma once

#include <gtest/gtest.h>

#include <errno.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "lumen/lumen.h"

namespace lumen::test {

/// Starts an embedded cluster for one test and shuts it down after.
class ClusterTest : public ::testing::Test {
 protected:
  virtual Config MakeConfig() {
    Config config;
    config.num_cpus = 2;
    return config;
  }
  void SetUp() override { lumen::Init(MakeConfig()); }
  void TearDown() override { lumen::Shutdown(); }
};

inline double SecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

/// Polls `done` every 20 ms until it returns true (-> true) or `seconds` pass (-> false).
/// A hang guard: pass a generous bound, never a performance threshold.
inline bool WaitUntil(const std::function<bool()>& done, double seconds = 30) {
  auto start = std::chrono::steady_clock::now();
  while (!done()) {
    if (SecondsSince(start) >= seconds) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return true;
}

/// The state letter and parent pid of `pid` from /proc/<pid>/stat; false when it is gone.
inline bool ReadProcStat(int pid, char* state, int* ppid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text;
  if (!std::getline(in, text)) return false;
  size_t paren = text.rfind(')');  // the command name may hold spaces and parentheses
  if (paren == std::string::npos) return false;
  std::istringstream rest(text.substr(paren + 1));
  return static_cast<bool>(rest >> *state >> *ppid);
}

/// True when `pid` has exited: no such process, or a zombie not yet reaped.
inline bool ProcessGone(int pid) {
  char state = 0;
  int ppid = 0;
  if (kill(pid, 0) != 0) return true;
  return !ReadProcStat(pid, &state, &ppid) || state == 'Z' || state == 'X';
}

/// Waits (bounded, generous) until `pid` has exited.
inline bool WaitProcessGone(int pid, double seconds = 30) {
  return WaitUntil([pid] { return ProcessGone(pid); }, seconds);
}

/// Pids of the child processes of `parent` (zombies included). The embedded raylet starts
/// every worker, actors' workers included, as a child of the driver.
inline std::vector<int> ChildPids(int parent = getpid()) {
  std::vector<int> children;
  std::error_code error;
  for (const auto& entry : std::filesystem::directory_iterator("/proc", error)) {
    const std::string name = entry.path().filename().string();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    char state = 0;
    int ppid = 0;
    if (ReadProcStat(std::stoi(name), &state, &ppid) && ppid == parent) {
      children.push_back(std::stoi(name));
    }
  }
  return children;
}

/// `root` and every process below it (a node's daemon and its workers).
inline std::vector<int> ProcessTree(int root) {
  std::vector<int> tree{root};
  for (size_t i = 0; i < tree.size(); ++i) {
    for (int child : ChildPids(tree[i])) tree.push_back(child);
  }
  return tree;
}

/// After Shutdown: waits (bounded) until this process has no children left and returns
/// the pids of those that remain, for the failure message.
inline std::vector<int> WaitForNoChildren(double seconds = 10) {
  std::vector<int> left;
  WaitUntil(
      [&] {
        left = ChildPids();
        return left.empty();
      },
      seconds);
  return left;
}

inline std::string JoinPids(const std::vector<int>& pids) {
  std::string out;
  for (int pid : pids) out += (out.empty() ? "" : " ") + std::to_string(pid);
  return out;
}

/// Lines in the file at `path` (0 when it does not exist).
inline int AttemptsIn(const std::string& path) {
  std::ifstream in(path);
  int lines = 0;
  for (std::string line; std::getline(in, line);) ++lines;
  return lines;
}

/// Appends one line per attempt to `path`; returns the number of attempts so far.
inline int CountAttempt(const std::string& path) {
  std::ofstream(path, std::ios::app) << "attempt\n";
  return AttemptsIn(path);
}

/// A fresh (removed) path in /tmp, unique to this test program, process and `name`.
inline std::string TempPath(const std::string& name) {
  std::string path = std::string("/tmp/lumen_") + program_invocation_short_name + "_" + name +
                     "_" + std::to_string(getpid());
  std::remove(path.c_str());
  return path;
}

}  // namespace lumen::test
