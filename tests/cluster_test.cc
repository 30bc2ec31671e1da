// Clusters of real `lumen start` daemons on loopback addresses of their own, and drivers
// that join them: the node's lifecycle, bad input, tasks and actors on the daemons, a
// second node (in its own mount namespace where one can be made).
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <optional>
#include <set>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include "cluster_util.h"
#include "tally.h"
#include "lumen/lumen.h"

namespace {

int Twice(int x) { return 2 * x; }
std::string WhereAmI() { return lumen::GetRuntimeContext().NodeId(); }
int Shout(int x) {
  std::printf("shout-from-daemon-worker %d\n", x);
  std::fflush(stdout);
  return x;
}

std::string SleepThenWhere(int ms) {
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));
  return lumen::GetRuntimeContext().NodeId();
}
// The file this worker runs, then "|hidden" when `driver_path` does not exist here.
std::string ExecutableSeen(std::string driver_path) {
  std::string self = std::filesystem::read_symlink("/proc/self/exe");
  return self + (access(driver_path.c_str(), F_OK) == 0 ? "|visible" : "|hidden");
}
using lumen::test::Ramp;
using lumen::test::Total;

using lumen::test::Tally;

}  // namespace

LUMEN_REMOTE(Twice, WhereAmI, Shout, SleepThenWhere, ExecutableSeen, Ramp, Total,
             Tally::Create, &Tally::Add, &Tally::Where);

namespace {

using lumen::test::LocalCluster;
using lumen::test::RunCommand;

namespace fs = std::filesystem;

bool HasSegmentOf(int pid) {
  std::error_code ec;
  std::string prefix = "lumen_" + std::to_string(pid) + "_";
  for (const auto& entry : fs::directory_iterator("/dev/shm", ec)) {
    if (entry.path().filename().string().rfind(prefix, 0) == 0) return true;
  }
  return false;
}

bool HasSession(const std::string& temp_dir) {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(temp_dir, ec)) {
    if (entry.path().filename().string().rfind("session_", 0) == 0) return true;
  }
  return false;
}

// Free for a new server, which binds with SO_REUSEADDR (as gRPC does) past the closed
// connections' TIME_WAIT.
bool PortFree(const std::string& address) {
  size_t colon = address.rfind(':');
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(uint16_t(std::stoi(address.substr(colon + 1))));
  inet_pton(AF_INET, address.substr(0, colon).c_str(), &addr.sin_addr);
  bool free = bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  close(fd);
  return free;
}

TEST(LumenCliTest, StartStatusStopLeavesNothingBehind) {
  LocalCluster cluster;
  ASSERT_TRUE(cluster.StartHead("127.0.0.2", "--num-cpus=2 --resources='{\"ssd\": 1}'"))
      << cluster.last_output();
  EXPECT_NE(cluster.last_output().find("lumen start --address=" + cluster.address()),
            std::string::npos)
      << cluster.last_output();
  int pid = cluster.pids().at(0);
  EXPECT_TRUE(fs::is_symlink(cluster.temp_dir() + "/session_latest"));
  EXPECT_TRUE(fs::exists(cluster.temp_dir() + "/session_latest/logs/raylet.log"));
  EXPECT_TRUE(fs::exists(cluster.temp_dir() + "/session_latest/logs/gcs.log"));

  std::string status;
  ASSERT_EQ(RunCommand(lumen::test::LumenCli() + " status --address=" + cluster.address(), &status), 0)
      << status;
  EXPECT_NE(status.find(cluster.node_ids().at(0)), std::string::npos) << status;
  EXPECT_NE(status.find("head"), std::string::npos) << status;
  EXPECT_NE(status.find("CPU          0 / 2 used"), std::string::npos) << status;
  EXPECT_NE(status.find("ssd          0 / 1 used"), std::string::npos) << status;

  std::string stopped;
  ASSERT_EQ(RunCommand(lumen::test::LumenCli() + " stop", &stopped), 0) << stopped;
  EXPECT_NE(stopped.find("stopped 1 lumen daemon"), std::string::npos) << stopped;
  EXPECT_TRUE(lumen::test::ProcessGone(pid));
  EXPECT_FALSE(HasSession(cluster.temp_dir()));
  EXPECT_FALSE(fs::exists(cluster.temp_dir() + "/session_latest"));
  EXPECT_FALSE(HasSegmentOf(pid));
  EXPECT_TRUE(PortFree(cluster.address()));
  std::ifstream current("/tmp/lumen/current_cluster");
  std::string named;
  current >> named;
  EXPECT_NE(named, cluster.address());
  // And nobody answers any more.
  EXPECT_NE(RunCommand(lumen::test::LumenCli() + " status --address=" + cluster.address(), &status), 0);
  EXPECT_NE(status.find("no lumen cluster answers at " + cluster.address()), std::string::npos)
      << status;
}

TEST(LumenCliTest, ASecondHeadOnABusyPortFailsClearly) {
  LocalCluster cluster;
  ASSERT_TRUE(cluster.StartHead("127.0.0.2", "--num-cpus=1")) << cluster.last_output();
  std::string port = cluster.address().substr(cluster.address().rfind(':') + 1);
  std::string out;
  EXPECT_EQ(RunCommand(lumen::test::LumenCli() + " start --head --node-ip-address=127.0.0.2 --port=" +
                    port + " --temp-dir=" + cluster.temp_dir(),
                &out),
            1);
  EXPECT_NE(out.find("cannot listen on " + cluster.address()), std::string::npos) << out;
  EXPECT_NE(out.find("in use"), std::string::npos) << out;
  // The first head still serves.
  EXPECT_EQ(RunCommand(lumen::test::LumenCli() + " status --address=" + cluster.address(), &out), 0)
      << out;
}

// A TCP server that is not lumen: it answers anything with an HTTP error and hangs up.
class NotLumen {
 public:
  NotLumen() {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    inet_pton(AF_INET, "127.0.0.4", &addr.sin_addr);
    bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
    listen(fd_, 16);
    socklen_t len = sizeof(addr);
    getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    address_ = "127.0.0.4:" + std::to_string(ntohs(addr.sin_port));
    thread_ = std::thread([this] {
      while (!stop_) {
        int client = accept(fd_, nullptr, nullptr);
        if (client < 0) return;
        const char reply[] = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n";
        (void)!write(client, reply, sizeof(reply) - 1);
        close(client);
      }
    });
  }
  ~NotLumen() {
    stop_ = true;
    shutdown(fd_, SHUT_RDWR);
    close(fd_);
    thread_.join();
  }
  const std::string& address() const { return address_; }

 private:
  int fd_;
  std::string address_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

TEST(LumenCliTest, BadAddressesFailClearlyAndNothingHangs) {
  std::string temp = "/tmp/lumen-test-bad-" + std::to_string(getpid());
  std::string out;
  std::string start = lumen::test::LumenCli() + " start --node-ip-address=127.0.0.3 --temp-dir=" +
                      temp + " --address=";
  EXPECT_EQ(RunCommand(start + "not-an-address", &out), 1);
  EXPECT_NE(out.find("--address takes HOST:PORT"), std::string::npos) << out;
  std::string nobody = "127.0.0.2:" + std::to_string(lumen::test::FreePort("127.0.0.2"));
  EXPECT_EQ(RunCommand(start + nobody, &out), 1);
  EXPECT_NE(out.find("no lumen head answers at " + nobody), std::string::npos) << out;
  NotLumen not_lumen;
  EXPECT_EQ(RunCommand(start + not_lumen.address(), &out), 1);
  EXPECT_NE(out.find("no lumen head answers at " + not_lumen.address()), std::string::npos)
      << out;

  for (const std::string& address : {std::string("localhost"), std::string("host:port"),
                                     std::string("127.0.0.1:70000"), nobody,
                                     not_lumen.address()}) {
    lumen::Config config;
    config.address = address;
    try {
      lumen::Init(config);
      lumen::Shutdown();
      ADD_FAILURE() << "Init joined " << address;
    } catch (const lumen::ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find(address), std::string::npos) << e.what();
    }
  }
  EXPECT_FALSE(lumen::IsInitialized());
  std::error_code ec;
  fs::remove_all(temp, ec);
}

class JoinedDriverTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(cluster_.StartHead("127.0.0.2", "--num-cpus=2 --resources='{\"ssd\": 1}'"))
        << cluster_.last_output();
  }
  void TearDown() override {
    lumen::Shutdown();
    cluster_.Stop();
  }
  void Join() { cluster_.Join(); }
  LocalCluster cluster_;
};

TEST_F(JoinedDriverTest, TasksAndActorsRunOnTheDaemons) {
  Join();
  std::vector<lumen::ObjectRef<int>> refs;
  for (int i = 0; i < 20; ++i) refs.push_back(lumen::Task(Twice).Remote(i));
  int sum = 0;
  for (const auto& value : lumen::Get(refs, std::chrono::seconds(60))) sum += *value;
  EXPECT_EQ(sum, 2 * (19 * 20 / 2));

  auto tally = lumen::Actor(Tally::Create).Remote(10);
  lumen::Get(tally.Task(&Tally::Add).Remote(5));
  EXPECT_EQ(*lumen::Get(tally.Task(&Tally::Add).Remote(1), std::chrono::seconds(60)), 16);

  // Code runs on the daemon's node, and the driver sits on it too.
  std::string head = cluster_.node_ids().at(0);
  EXPECT_EQ(*lumen::Get(lumen::Task(WhereAmI).Remote(), std::chrono::seconds(60)), head);
  EXPECT_EQ(lumen::GetRuntimeContext().NodeId(), head);
  // The workers are the daemon's children, not this driver's.
  EXPECT_TRUE(lumen::test::WaitForNoChildren(1).empty());
}

TEST_F(JoinedDriverTest, WorkerOutputReachesTheJoinedDriver) {
  Join();
  testing::internal::CaptureStdout();
  lumen::Get(lumen::Task(Shout).Remote(77), std::chrono::seconds(60));
  std::string out;
  for (int i = 0; i < 250 && out.find("shout-from-daemon-worker 77") == std::string::npos; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    out += testing::internal::GetCapturedStdout();
    testing::internal::CaptureStdout();
  }
  out += testing::internal::GetCapturedStdout();
  EXPECT_NE(out.find(") shout-from-daemon-worker 77"), std::string::npos) << out;
  EXPECT_NE(out.find("(pid="), std::string::npos) << out;
}

TEST_F(JoinedDriverTest, NodesAndResourcesShowTheCluster) {
  Join();
  std::vector<lumen::NodeInfo> nodes = lumen::Nodes();
  ASSERT_EQ(nodes.size(), 1u);
  EXPECT_EQ(nodes[0].node_id, cluster_.node_ids().at(0));
  EXPECT_EQ(nodes[0].address, "127.0.0.2");
  EXPECT_TRUE(nodes[0].alive);
  EXPECT_TRUE(nodes[0].is_head);
  EXPECT_EQ(nodes[0].total.at("CPU"), 2);
  EXPECT_EQ(nodes[0].total.at("ssd"), 1);
  auto total = lumen::ClusterResources();
  EXPECT_EQ(total.at("CPU"), 2);
  EXPECT_EQ(total.at("ssd"), 1);
  EXPECT_EQ(total.count("GPU"), 0u);  // none here: not listed
  // A second node joins at its own address (and /dev/shm, where that can be had).
  bool isolated = lumen::test::CanIsolateShm();
  if (!isolated) std::printf("note: no mount namespaces here; the second node shares /dev/shm\n");
  ASSERT_TRUE(cluster_.AddNode("127.0.0.3", "--num-cpus=3", isolated)) << cluster_.last_output();
  nodes = lumen::Nodes();
  ASSERT_EQ(nodes.size(), 2u);
  int alive = 0;
  for (const auto& node : nodes) {
    alive += node.alive;
    if (node.node_id == cluster_.node_ids().at(1)) {
      EXPECT_EQ(node.address, "127.0.0.3");
      EXPECT_FALSE(node.is_head);
    }
  }
  EXPECT_EQ(alive, 2);
  EXPECT_EQ(lumen::ClusterResources().at("CPU"), 5);
  EXPECT_TRUE(lumen::test::WaitForFreeCpus(5));
  std::string status;
  ASSERT_EQ(RunCommand(lumen::test::LumenCli() + " status --address=" + cluster_.address(), &status), 0);
  EXPECT_NE(status.find("2 nodes alive"), std::string::npos) << status;
  EXPECT_NE(status.find(cluster_.node_ids().at(1) + "  127.0.0.3"), std::string::npos) << status;
  EXPECT_NE(status.find("CPU          0 / 5 used"), std::string::npos) << status;
  // Work still runs, on the node the job's workers can start on (placing it on other
  // nodes is the next step): actors the GCS places, tasks the local raylet leases.
  std::vector<lumen::ActorHandle<Tally>> tallies;
  for (int i = 0; i < 4; ++i) {
    tallies.push_back(lumen::Actor(Tally::Create).SetResource("CPU", 0.25).Remote(i));
  }
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(*lumen::Get(tallies[i].Task(&Tally::Add).Remote(100), std::chrono::seconds(60)),
              100 + i);
  }
  EXPECT_EQ(*lumen::Get(lumen::Task(Twice).Remote(4), std::chrono::seconds(60)), 8);
}

// Another program's driver (tests/cluster_driver.cc) makes the actors and its process
// exits without shutting down; this test's driver comes next.
TEST_F(JoinedDriverTest, ADetachedActorOutlivesItsDriverAndTheNextDriverFindsIt) {
  const char* driver = std::getenv("LUMEN_CLUSTER_DRIVER");
  ASSERT_NE(driver, nullptr) << "set by tests/CMakeLists.txt";
  std::string out;
  ASSERT_EQ(RunCommand(std::string(driver) + " --lumen-address=" + cluster_.address(), &out, 120),
            0)
      << out;
  ASSERT_NE(out.find("ready"), std::string::npos) << out;
  Join();
  // The driver's node saw its process go (and stopped the job's other workers).
  EXPECT_TRUE(lumen::test::WaitUntil(
      [] { return !lumen::GetActor<Tally>("plain", "shared").has_value(); }, 30))
      << "an actor that is not detached dies with its driver";
  std::optional<lumen::ActorHandle<Tally>> found = lumen::GetActor<Tally>("keeper", "shared");
  ASSERT_TRUE(found.has_value()) << "the detached actor died with its driver";
  EXPECT_EQ(*lumen::Get(found->Task(&Tally::Add).Remote(1), std::chrono::seconds(60)), 16)
      << "its state is the one the first driver left";
  found->Kill();
  EXPECT_TRUE(lumen::test::WaitUntil(
      [] { return !lumen::GetActor<Tally>("keeper", "shared").has_value(); }, 30));
}

TEST_F(JoinedDriverTest, AutoFindsTheClusterStartedOnThisMachine) {
  lumen::Config config;
  config.address = "auto";
  lumen::Init(config);
  EXPECT_EQ(lumen::Nodes().at(0).node_id, cluster_.node_ids().at(0));
  EXPECT_EQ(*lumen::Get(lumen::Task(Twice).Remote(21), std::chrono::seconds(60)), 42);
}

TEST_F(JoinedDriverTest, NodeOptionsAreRefusedWhenJoining) {
  lumen::Config config;
  config.address = cluster_.address();
  config.num_cpus = 4;
  EXPECT_THROW(lumen::Init(config), lumen::ConfigError);
  config.num_cpus = -1;
  config.node_ip_address = "127.0.0.9";  // no node there
  try {
    lumen::Init(config);
    ADD_FAILURE() << "joined through a node that does not exist";
  } catch (const lumen::ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("no node with IP 127.0.0.9"), std::string::npos)
        << e.what();
  }
  EXPECT_FALSE(lumen::IsInitialized());
}

using lumen::test::ThreeNodeTest;

TEST_F(ThreeNodeTest, TenOneSecondTasksSpreadOverTheNodes) {
  auto start = std::chrono::steady_clock::now();
  std::vector<lumen::ObjectRef<std::string>> refs;
  for (int i = 0; i < 10; ++i) refs.push_back(lumen::Task(SleepThenWhere).Remote(1000));
  std::set<std::string> nodes;
  for (const auto& node : lumen::Get(refs, std::chrono::seconds(120))) nodes.insert(*node);
  double seconds = lumen::test::SecondsSince(start);
  std::printf("ten 1 s tasks on 3 nodes / 5 CPUs: %.2f s, %zu nodes used\n", seconds,
              nodes.size());
  EXPECT_GE(nodes.size(), 2u);
  // On one CPU they would take 10 s; a generous bound that still tells the two apart.
  EXPECT_LT(seconds, 8.0);
}

TEST_F(ThreeNodeTest, EveryNodeRunsTheDriversExecutableFromItsCacheByContent) {
  const std::string self = lumen::test::TestExecutable();
  std::string out;
  ASSERT_EQ(RunCommand("sha256sum " + self, &out), 0) << out;
  const std::string digest = out.substr(0, 64);
  for (size_t i = 0; i < 3; ++i) {
    std::string seen = *lumen::Get(
        lumen::Task(ExecutableSeen).SetSchedulingStrategy(On(i)).Remote(self),
        std::chrono::seconds(60));
    // <temp dir>/session_*/executables/<SHA-256 of this program>, in that node's session.
    EXPECT_EQ(seen.rfind(cluster_.temp_dir() + "/session_", 0), 0u) << seen;
    EXPECT_NE(seen.find("/executables/" + digest + "|"), std::string::npos) << seen;
    // Node 1 does not even have this program's folder: only the fetched copy.
    if (i == 1 && isolated_) EXPECT_NE(seen.find("|hidden"), std::string::npos) << seen;
  }
}

// Another program's driver runs work on every node and finishes its job: its workers stop
// at once on every node, not only on its own (elsewhere they used to idle out after 10 s).
TEST_F(ThreeNodeTest, AFinishedJobsWorkersStopOnEveryNode) {
  const char* driver = std::getenv("LUMEN_CLUSTER_DRIVER");
  ASSERT_NE(driver, nullptr) << "set by tests/CMakeLists.txt";
  std::string out;
  ASSERT_EQ(RunCommand(std::string(driver) + " --lumen-address=" + cluster_.address() +
                           " --tasks-everywhere",
                       &out, 120),
            0)
      << out;
  ASSERT_NE(out.find("ready"), std::string::npos) << out;
  // Its workers run its executable with its command line: pgrep finds them by the path
  // ("[/]..." so that the shell running pgrep, whose command line holds the pattern,
  // does not match it).
  const std::string pattern = "[/]" + std::string(driver + 1) + " --lumen-address";
  // Idle workers exit on their own after 10 s anyway; stopped with their job, they are
  // gone within the second or so the nodes take to hear of it. 6 s tells the two apart.
  std::string left;
  EXPECT_TRUE(lumen::test::WaitUntil(
      [&] { return RunCommand("pgrep -a -f -- '" + pattern + "'", &left) != 0; }, 6))
      << "still running:\n" << left;
}

TEST_F(ThreeNodeTest, ADemandOnlyAnotherNodeHasRunsThereWithLargeValuesBothWays) {
  std::string far_node = cluster_.node_ids().at(1);
  EXPECT_EQ(*lumen::Get(lumen::Task(WhereAmI).SetResource("far", 1).Remote(),
                        std::chrono::seconds(60)),
            far_node);
  // A large result made there (beyond the inline limit) reaches the driver, byte for byte.
  auto ramp = lumen::Get(lumen::Task(Ramp).SetResource("far", 1).Remote(1 << 18),
                         std::chrono::seconds(60));
  ASSERT_EQ(ramp->size(), size_t(1) << 18);
  EXPECT_EQ((*ramp)[12345], 12345 * 0.5);
  // A large value put here is read there.
  std::vector<double> values = Ramp(1 << 18);
  auto put = lumen::Put(values);
  EXPECT_EQ(*lumen::Get(lumen::Task(Total).SetResource("far", 1).Remote(put),
                        std::chrono::seconds(60)),
            Total(values));
}

TEST_F(ThreeNodeTest, AnActorLivesOnTheNodeThatFitsItAndIsCalledFromHere) {
  auto tally = lumen::Actor(Tally::Create).SetResource("far", 1).Remote(1);
  EXPECT_EQ(*lumen::Get(tally.Task(&Tally::Where).Remote(), std::chrono::seconds(60)),
            cluster_.node_ids().at(1));
  for (int i = 0; i < 50; ++i) tally.Task(&Tally::Add).Remote(2);
  EXPECT_EQ(*lumen::Get(tally.Task(&Tally::Add).Remote(0), std::chrono::seconds(60)), 101);
}

TEST_F(ThreeNodeTest, StrategiesPlaceWorkWhereTheySay) {
  std::string c = cluster_.node_ids().at(2);
  // Hard affinity: on that node, tasks and actors alike.
  auto pinned = lumen::NodeAffinityStrategy{.node_id = c, .soft = false};
  EXPECT_EQ(*lumen::Get(lumen::Task(WhereAmI).SetSchedulingStrategy(pinned).Remote(),
                        std::chrono::seconds(60)),
            c);
  auto tally = lumen::Actor(Tally::Create).SetSchedulingStrategy(pinned).Remote(0);
  EXPECT_EQ(*lumen::Get(tally.Task(&Tally::Where).Remote(), std::chrono::seconds(60)), c);
  // A node that is not there: hard fails and says why, soft runs elsewhere.
  std::string gone(32, 'f');
  auto lost = lumen::Task(WhereAmI)
                  .SetSchedulingStrategy(lumen::NodeAffinityStrategy{.node_id = gone})
                  .Remote();
  try {
    lumen::Get(lost, std::chrono::seconds(60));
    ADD_FAILURE() << "ran on a node that does not exist";
  } catch (const lumen::WorkerCrashedError& e) {
    EXPECT_NE(std::string(e.what()).find(gone), std::string::npos) << e.what();
  }
  auto soft = lumen::NodeAffinityStrategy{.node_id = gone, .soft = true};
  EXPECT_EQ(lumen::Get(lumen::Task(WhereAmI).SetSchedulingStrategy(soft).Remote(),
                       std::chrono::seconds(60))->size(),
            32u);
  EXPECT_THROW(lumen::Task(WhereAmI).SetSchedulingStrategy(lumen::NodeAffinityStrategy{"x"}),
               lumen::ConfigError);
  // Spread: short tasks go to every node, not first to the local one. Each node has a
  // worker ready first (started, its executable fetched), so that one slow start does not
  // let the other nodes' leases take its share of the tasks.
  for (size_t i = 0; i < 3; ++i) {
    ASSERT_EQ(*lumen::Get(lumen::Task(WhereAmI).SetSchedulingStrategy(On(i)).Remote(),
                          std::chrono::seconds(60)),
              cluster_.node_ids().at(i));
  }
  std::vector<lumen::ObjectRef<std::string>> refs;
  for (int i = 0; i < 6; ++i) {
    refs.push_back(
        lumen::Task(SleepThenWhere).SetSchedulingStrategy(lumen::SpreadStrategy{}).Remote(300));
  }
  std::set<std::string> nodes;
  std::string order;  // node index per task, for the failure message
  for (const auto& node : lumen::Get(refs, std::chrono::seconds(60))) {
    nodes.insert(*node);
    for (size_t i = 0; i < 3; ++i) {
      if (*node == cluster_.node_ids().at(i)) order += std::to_string(i);
    }
  }
  EXPECT_EQ(nodes.size(), 3u) << "nodes of the tasks, in order: " << order;
}

}  // namespace
