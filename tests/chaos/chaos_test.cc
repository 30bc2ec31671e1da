// Chaos: a workload of tasks (some nested, some reading a 10 MiB argument) and actor
// calls runs on a 4-node loopback cluster of real daemons while a killer SIGKILLs a random
// worker every LUMEN_CHAOS_WORKER_KILL_MS (500) and a random non-head node every
// LUMEN_CHAOS_NODE_KILL_MS (10000), starting a new node in its place. Every task result
// is checked against the same function run here; every actor's answers against a serial
// replay of the calls each of its incarnations ran. Then every node's CPUs are free
// again, the driver's store is empty, and no process the run saw is left.
//
// Sizes come from the environment; CI runs the defaults (about a minute), and
// scripts/chaos.sh runs it longer (LUMEN_CHAOS_SECONDS, _TASKS_PER_S, _ACTORS,
// _CALLS_PER_S). What the run survived is printed as one JSON line.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <map>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "cluster_util.h"
#include "lumen/lumen.h"
#include "lumen/memory.h"
#include "test_util.h"

namespace {

using Block = std::vector<uint8_t>;
constexpr size_t kBlockBytes = 10 << 20;

uint64_t MixValue(uint64_t seed) {
  uint64_t x = seed * 0x9E3779B97F4A7C15ull;
  return x ^ (x >> 29);
}
uint64_t Mix(uint64_t seed) {
  std::this_thread::sleep_for(std::chrono::milliseconds(seed % 20));
  return MixValue(seed);
}
// A task that runs two tasks of its own and waits for them.
uint64_t Nested(uint64_t seed) {
  auto a = lumen::Task(Mix).SetMaxRetries(-1).Remote(seed * 2);
  auto b = lumen::Task(Mix).SetMaxRetries(-1).Remote(seed * 2 + 1);
  return *lumen::Get(a) + *lumen::Get(b);
}
// Reads a 10 MiB argument (pulled to its node when it was made elsewhere).
uint64_t Checksum(const Block& block, uint64_t seed) {
  uint64_t sum = seed;
  for (size_t i = 0; i < block.size(); i += 4096) sum += block[i];
  return sum;
}
Block MakeBlock(uint64_t seed) {
  Block block(kBlockBytes);
  for (size_t i = 0; i < block.size(); i += 4096) block[i] = uint8_t(seed + i / 4096);
  return block;
}

// Each incarnation has an id of its own; a call returns it with the running sum of the
// calls this incarnation ran.
class Counter {
 public:
  static Counter* Create() { return new Counter(); }
  std::vector<uint64_t> Add(uint64_t x) {
    sum_ += x;
    return {instance_, sum_};
  }

 private:
  uint64_t instance_ = std::random_device{}() * uint64_t(getpid());
  uint64_t sum_ = 0;
};

}  // namespace

LUMEN_REMOTE(Mix, Nested, Checksum, MakeBlock, Counter::Create, &Counter::Add);

namespace lumen::test {
namespace {

int64_t EnvInt(const char* name, int64_t fallback) {
  const char* value = std::getenv(name);
  return value ? std::atoll(value) : fallback;
}

class ChaosTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!CanIsolateShm()) GTEST_SKIP() << "no mount namespaces here: killed nodes would "
                                          "leave their stores in /dev/shm";
    ASSERT_TRUE(cluster_.StartHead("127.0.0.2", "--num-cpus=1 --health-check-period-ms=200 "
                                                "--health-check-failure-threshold=5"))
        << cluster_.last_output();
    for (const char* ip : {"127.0.0.3", "127.0.0.4", "127.0.0.5"}) {
      ASSERT_TRUE(cluster_.AddNode(ip, "--num-cpus=2", /*isolated=*/true))
          << cluster_.last_output();
    }
    cluster_.Join();
    ASSERT_TRUE(WaitForFreeCpus(7));
  }
  void TearDown() override {
    lumen::Shutdown();
    cluster_.Stop();
  }
  LocalCluster cluster_;
};

struct Killer {
  LocalCluster* cluster;
  int64_t worker_ms, node_ms;
  std::atomic<bool> stop{false};
  std::set<int> seen;  // every process of the cluster it saw
  int worker_kills = 0, node_kills = 0;
  std::string failure;

  void Run() {
    std::mt19937 random(12345);
    auto next_node = std::chrono::steady_clock::now() + std::chrono::milliseconds(node_ms);
    while (!stop) {
      std::this_thread::sleep_for(std::chrono::milliseconds(worker_ms));
      std::vector<int> workers;
      for (int daemon : cluster->pids()) {
        for (int pid : ProcessTree(daemon)) {
          seen.insert(pid);
          if (pid != daemon) workers.push_back(pid);
        }
      }
      if (!workers.empty() && kill(workers[random() % workers.size()], SIGKILL) == 0) {
        ++worker_kills;
      }
      if (std::chrono::steady_clock::now() >= next_node) {
        size_t node = 1 + random() % (cluster->pids().size() - 1);  // never the head
        if (!cluster->ReplaceNode(node)) {
          failure = "could not replace node " + std::to_string(node) + ": " +
                    cluster->last_output();
          return;
        }
        ++node_kills;
        next_node = std::chrono::steady_clock::now() + std::chrono::milliseconds(node_ms);
      }
    }
  }
};

TEST_F(ChaosTest, EveryResultIsRightAndEverythingIsGivenBackWhileWorkersAndNodesAreKilled) {
  const int64_t seconds = EnvInt("LUMEN_CHAOS_SECONDS", 30);
  const int64_t tasks_per_s = EnvInt("LUMEN_CHAOS_TASKS_PER_S", 20);
  const int64_t num_actors = EnvInt("LUMEN_CHAOS_ACTORS", 4);
  const int64_t calls_per_s = EnvInt("LUMEN_CHAOS_CALLS_PER_S", 60);
  Killer killer{&cluster_, EnvInt("LUMEN_CHAOS_WORKER_KILL_MS", 500),
                EnvInt("LUMEN_CHAOS_NODE_KILL_MS", 10000)};
  auto started = std::chrono::steady_clock::now();

  // The 10 MiB arguments: made by tasks on the other nodes (so their nodes may die).
  std::vector<lumen::ObjectRef<Block>> blocks;
  std::vector<uint64_t> block_sums;
  for (uint64_t i = 0; i < 4; ++i) {
    blocks.push_back(lumen::Task(MakeBlock).SetMaxRetries(-1).Remote(i));
    block_sums.push_back(Checksum(MakeBlock(i), 0));
  }
  std::vector<lumen::ActorHandle<Counter>> actors;
  for (int64_t i = 0; i < num_actors; ++i) {
    actors.push_back(
        lumen::Actor(Counter::Create).SetMaxRestarts(-1).SetMaxTaskRetries(-1).Remote());
  }
  std::thread killing([&killer] { killer.Run(); });
  struct Joiner {  // the killer stops whatever happens below (an exception, a failed ASSERT)
    Killer& killer;
    std::thread& thread;
    ~Joiner() {
      killer.stop = true;
      if (thread.joinable()) thread.join();
    }
  } joiner{killer, killing};

  struct TaskRun {
    lumen::ObjectRef<uint64_t> ref;
    uint64_t expected;
  };
  struct Call {
    lumen::ObjectRef<std::vector<uint64_t>> ref;
    size_t actor;
    uint64_t x;
  };
  std::vector<TaskRun> tasks;
  std::vector<Call> calls;
  uint64_t seed = 0;
  for (int64_t second = 0; second < seconds; ++second) {
    auto tick = std::chrono::steady_clock::now() + std::chrono::seconds(1);
    for (int64_t i = 0; i < tasks_per_s; ++i, ++seed) {
      if (seed % 10 == 0) {
        tasks.push_back({lumen::Task(Nested).SetMaxRetries(-1).Remote(seed),
                         MixValue(seed * 2) + MixValue(seed * 2 + 1)});
      } else if (seed % 10 == 1) {
        size_t b = seed % blocks.size();
        tasks.push_back({lumen::Task(Checksum).SetMaxRetries(-1).Remote(blocks[b], seed),
                         block_sums[b] + seed});
      } else {
        tasks.push_back({lumen::Task(Mix).SetMaxRetries(-1).Remote(seed), MixValue(seed)});
      }
    }
    for (int64_t i = 0; i < calls_per_s; ++i) {
      size_t a = size_t(calls.size()) % actors.size();
      uint64_t x = calls.size() + 1;
      calls.push_back({actors[a].Task(&Counter::Add).Remote(x), a, x});
    }
    std::this_thread::sleep_until(tick);
  }

  // Every task's result is its function's.
  int wrong = 0;
  for (const TaskRun& task : tasks) {
    try {
      if (*lumen::Get(task.ref, std::chrono::seconds(300)) != task.expected) ++wrong;
    } catch (const std::exception& e) {
      ADD_FAILURE() << "a task failed: " << e.what();
      break;
    }
  }
  EXPECT_EQ(wrong, 0) << "of " << tasks.size() << " task results";

  // Per actor incarnation, the calls it answered are consecutive calls to that actor, and
  // each sum is that incarnation's running sum from its first call on.
  std::map<uint64_t, std::vector<std::pair<size_t, uint64_t>>> by_instance;  // call, sum
  std::map<uint64_t, size_t> instance_actor;
  for (size_t c = 0; c < calls.size(); ++c) {
    try {
      auto answer = *lumen::Get(calls[c].ref, std::chrono::seconds(300));
      by_instance[answer.at(0)].emplace_back(c, answer.at(1));
      instance_actor[answer.at(0)] = calls[c].actor;
    } catch (const std::exception& e) {
      ADD_FAILURE() << "an actor call failed: " << e.what();
      break;
    }
  }
  for (const auto& [instance, answered] : by_instance) {
    uint64_t sum = 0;
    for (size_t k = 0; k < answered.size(); ++k) {
      const auto& [c, got] = answered[k];
      if (k > 0) {
        EXPECT_EQ(c, answered[k - 1].first + actors.size())
            << "actor " << instance_actor[instance] << " skipped or repeated a call";
      }
      sum += calls[c].x;
      EXPECT_EQ(got, sum) << "call " << c << " to actor " << calls[c].actor;
    }
  }
  double workload_s = SecondsSince(started);

  killer.stop = true;
  killing.join();
  ASSERT_TRUE(killer.failure.empty()) << killer.failure;

  // Everything is given back: every CPU free, the driver's store empty once its refs go.
  EXPECT_TRUE(WaitForFreeCpus(7)) << "CPUs still held after the workload";
  tasks.clear();
  calls.clear();
  blocks.clear();
  EXPECT_TRUE(WaitUntil([] { return lumen::GetMemoryInfo(false).num_objects == 0; }, 60))
      << lumen::MemorySummary();

  std::printf("{\"chaos\": {\"seconds\": %.1f, \"tasks\": %zu, \"actor_calls\": %zu, "
              "\"worker_kills\": %d, \"node_kills\": %d, \"actor_incarnations\": %zu, "
              "\"actors\": %zu}}\n",
              workload_s, size_t(seed), size_t(seconds * calls_per_s), killer.worker_kills,
              killer.node_kills, by_instance.size(), actors.size());
  for (const auto& actor : actors) actor.Kill();
  actors.clear();
  lumen::Shutdown();
  cluster_.Stop();
  for (int pid : killer.seen) {
    EXPECT_TRUE(WaitProcessGone(pid, 30)) << "pid " << pid << " outlived the cluster";
  }
}

}  // namespace
}  // namespace lumen::test
