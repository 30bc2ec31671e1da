// Real lumen clusters for tests: `lumen start` daemons on loopback addresses of their own
// (127.0.0.2, 127.0.0.3, ...), optionally in a mount namespace with a private /dev/shm.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <regex>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "lumen/lumen.h"
#include "test_util.h"

namespace lumen::test {

/// The `lumen` executable under test (set by tests/CMakeLists.txt).
inline std::string LumenCli() {
  const char* path = std::getenv("LUMEN_CLI");
  return path ? path : "lumen";
}

/// Runs a shell command (bounded by `timeout_s`), returns its exit code and, in `output`,
/// what it printed on stdout and stderr.
inline int RunCommand(const std::string& command, std::string* output, int timeout_s = 90) {
  std::string full = "timeout -k 5 " + std::to_string(timeout_s) + " " + command + " 2>&1";
  FILE* pipe = popen(full.c_str(), "r");
  if (pipe == nullptr) return -1;
  char buf[4096];
  output->clear();
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), pipe)) > 0) output->append(buf, n);
  int status = pclose(pipe);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/// A TCP port nobody listens on at `ip` right now.
inline int FreePort(const std::string& ip) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  inet_pton(AF_INET, ip.c_str(), &addr.sin_addr);
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return ntohs(addr.sin_port);
}

/// The running test executable, and its folder (hidden from isolated nodes).
inline std::string TestExecutable() { return std::filesystem::read_symlink("/proc/self/exe"); }
inline std::string TestExecutableDir() {
  return std::filesystem::path(TestExecutable()).parent_path();
}

/// True when this machine lets us make a mount namespace with its own /dev/shm.
inline bool CanIsolateShm() {
  std::string out;
  return RunCommand("unshare -m --propagation private sh -c 'mount -t tmpfs tmpfs /dev/shm'", &out,
             10) == 0;
}

/// A cluster of `lumen start` daemons in a temp dir of its own. Stop (or the destructor)
/// sends each daemon SIGTERM and waits for it to be gone.
class LocalCluster {
 public:
  LocalCluster() {
    temp_dir_ = "/tmp/lumen-test-" + std::to_string(getpid()) + "-" + std::to_string(serial_++);
  }
  ~LocalCluster() { Stop(); }

  /// Starts the head at `ip`; extra flags like "--num-cpus=2". False (with the output in
  /// `last_output()`) when `lumen start` failed.
  bool StartHead(const std::string& ip, const std::string& flags) {
    port_ = FreePort(ip);
    address_ = ip + ":" + std::to_string(port_);
    // The state API on a port of its own: clusters of tests never share 8265.
    dashboard_address_ = "127.0.0.1:" + std::to_string(FreePort("127.0.0.1"));
    return StartNode("--head --port=" + std::to_string(port_) + " --node-ip-address=" + ip +
                     " --dashboard-port=" +
                     dashboard_address_.substr(dashboard_address_.rfind(':') + 1) + " " + flags,
                     /*isolated=*/false);
  }
  /// Starts a node at `ip` that joins the head; `isolated`: in its own mount namespace
  /// with a private /dev/shm.
  bool AddNode(const std::string& ip, const std::string& flags, bool isolated) {
    return StartNode("--address=" + address_ + " --node-ip-address=" + ip + " " + flags,
                     isolated);
  }
  /// SIGKILLs node `i`'s daemon and every process below it, waits for them, then starts
  /// a node in its place (same address and flags; it joins with a new id).
  bool ReplaceNode(size_t i) {
    std::vector<int> tree = ProcessTree(pids_.at(i));
    for (int pid : tree) kill(pid, SIGKILL);
    for (int pid : tree) {
      if (!WaitProcessGone(pid, 30)) return false;
    }
    auto [flags, isolated] = starts_.at(i);
    if (!StartNode(flags, isolated)) return false;
    // StartNode appended the new node: it takes slot i.
    pids_[i] = pids_.back();
    node_ids_[i] = node_ids_.back();
    pids_.pop_back();
    node_ids_.pop_back();
    starts_.pop_back();
    return true;
  }
  void Stop() {
    for (int pid : pids_) kill(pid, SIGTERM);
    for (int pid : pids_) {
      if (!WaitProcessGone(pid, 30)) kill(pid, SIGKILL);
    }
    pids_.clear();
    std::error_code ec;
    std::filesystem::remove_all(temp_dir_, ec);
  }

  const std::string& address() const { return address_; }
  /// The head's HTTP server (the state API): "127.0.0.1:port".
  const std::string& dashboard_address() const { return dashboard_address_; }
  /// Starts this process's driver (a new job) at the head.
  void Join() const {
    lumen::Config config;
    config.address = address_;
    lumen::Init(config);
  }
  const std::string& temp_dir() const { return temp_dir_; }
  const std::vector<int>& pids() const { return pids_; }
  const std::string& last_output() const { return output_; }
  /// Node ids in start order.
  const std::vector<std::string>& node_ids() const { return node_ids_; }

 private:
  bool StartNode(const std::string& flags, bool isolated) {
    std::string start = LumenCli() + " start --temp-dir=" + temp_dir_ + " " + flags;
    if (isolated) {
      // Nothing passes through shared memory, and the test's own executable is not there:
      // the node's workers must run the copy its raylet fetches from the GCS.
      start = "unshare -m --propagation private sh -c 'mount -t tmpfs tmpfs /dev/shm && "
              "mount -t tmpfs tmpfs " + TestExecutableDir() + " && exec \"$0\" \"$@\"' " +
              start;
    }
    if (RunCommand(start, &output_) != 0) return false;
    std::smatch match;
    if (!std::regex_search(output_, match, std::regex("node ([0-9a-f]{32}) \\(pid ([0-9]+)\\)"))) {
      return false;
    }
    node_ids_.push_back(match[1]);
    pids_.push_back(std::stoi(match[2]));
    starts_.emplace_back(flags, isolated);
    return true;
  }

  static inline int serial_ = 0;
  std::string temp_dir_;
  int port_ = 0;
  std::string address_;
  std::string dashboard_address_;
  std::string output_;
  std::vector<int> pids_;
  std::vector<std::string> node_ids_;
  std::vector<std::pair<std::string, bool>> starts_;  // each node's flags and isolation
};

/// Large values for tasks to make and read: 0, 0.5, 1, ... (n of them), and their sum.
inline std::vector<double> Ramp(int n) {
  std::vector<double> out(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) out[size_t(i)] = i * 0.5;
  return out;
}
inline double Total(const std::vector<double>& values) {
  double sum = 0;
  for (double v : values) sum += v;
  return sum;
}

/// Waits (bounded) until the cluster has `cpus` CPUs free: the head's view of the other
/// nodes' free resources comes with their reports.
inline bool WaitForFreeCpus(double cpus) {
  return WaitUntil([cpus] {
    auto available = lumen::AvailableResources();
    return available.count("CPU") && available.at("CPU") == cpus;
  });
}

/// Three nodes, five CPUs, and a driver joined at the head: node 0 (the head, 1 CPU),
/// node 1 (2 CPUs and a resource "far", in its own mount namespace where one can be
/// made: a private /dev/shm, the test's folder hidden), node 2 (2 CPUs).
class ThreeNodeTest : public ::testing::Test {
 public:
  const std::string& NodeIdOf(size_t i) const { return cluster_.node_ids().at(i); }

 protected:
  /// The head's flags (a subclass may add to them).
  virtual std::string HeadFlags() const { return "--num-cpus=1"; }
  /// Runs before the first daemon starts (it inherits the environment).
  virtual void BeforeStart() {}
  void SetUp() override {
    BeforeStart();
    ASSERT_TRUE(cluster_.StartHead("127.0.0.2", HeadFlags())) << cluster_.last_output();
    isolated_ = CanIsolateShm();
    ASSERT_TRUE(cluster_.AddNode("127.0.0.3", "--num-cpus=2 --resources='{\"far\": 1}'",
                                 isolated_))
        << cluster_.last_output();
    ASSERT_TRUE(cluster_.AddNode("127.0.0.4", "--num-cpus=2", false)) << cluster_.last_output();
    cluster_.Join();
    ASSERT_TRUE(WaitForFreeCpus(5));
  }
  void TearDown() override {
    lumen::Shutdown();
    cluster_.Stop();
  }
  /// Runs on node `i` only.
  lumen::NodeAffinityStrategy On(size_t i) const {
    return lumen::NodeAffinityStrategy{.node_id = cluster_.node_ids().at(i), .soft = false};
  }
  LocalCluster cluster_;
  bool isolated_ = false;  // node 1 is in a mount namespace of its own
};

}  // namespace lumen::test
