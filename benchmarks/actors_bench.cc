// actors_bench: lumen's actor microbenchmarks, after Ray's `ray microbenchmark`
// (python/ray/_private/ray_perf.py and ray_microbenchmark_helpers.timeit).
//
// Starts an embedded one-node cluster with the default Config (num_cpus = the machine's
// cores) and measures calls of a no-op actor method (BenchActor::SmallValue, Ray's
// Actor.small_value). Actors hold no resources, like Ray's `num_cpus=0` actors. n is the
// number of server actors: Ray uses cores / 2; we use at least 2 so that "n" means more
// than one on a 2-core machine (printed on stderr).
//   1_1_actor_calls_sync            one actor: call, Get, repeat
//   1_1_actor_calls_async           one actor: 1,000 calls, then Get them all
//   1_1_actor_calls_concurrent      the same on an actor with max_concurrency 16
//   1_n_actor_calls_async           one Client actor holding n actors calls each 5,000
//                                   times, then Gets all (Ray's actor_async_direct)
//   n_n_actor_calls_async           4 tasks, each calling the n actors round-robin 5,000
//                                   times, then Getting all (Ray's actor_multi2)
//   n_n_actor_calls_with_arg_async  n Client actors, each calling its own actor 1,000
//                                   times with an ObjectRef argument it Put
//                                   (Ray's actor_multi2_direct_arg)
//   1_1_actor_calls_with_1kib_arg   one actor: 1,000 calls with a 1 KiB string argument,
//                                   then Get them all (not in Ray's set)
//   actor_call_latency_p50/p99      round trip of one call (submit + Get), in us
//
// Method, output (one JSON object per metric on stdout, unit "calls/s" or "us") and flags
// are those of tasks_bench; see bench_util.h. Each metric creates its actors before its
// warm-up and kills them after its runs.

#include <algorithm>
#include <cstdio>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "bench_util.h"
#include "lumen/lumen.h"

class BenchActor {
 public:
  static BenchActor* Create() { return new BenchActor(); }
  int SmallValue() { return 0; }
  int SmallValueArg(int x) { return x; }
  int SmallValueBytes(std::string bytes) { return int(bytes.size()); }
};

using lumen::bench::CheckValues;

// Ray's Client: an actor that calls other actors.
class Client {
 public:
  explicit Client(std::vector<lumen::ActorHandle<BenchActor>> servers)
      : servers_(std::move(servers)) {}
  static Client* Create(std::vector<lumen::ActorHandle<BenchActor>> servers) {
    return new Client(std::move(servers));
  }
  // n calls to each server, then Get them all; returns the number of calls.
  int SmallValueBatch(int n) {
    std::vector<lumen::ObjectRef<int>> refs;
    refs.reserve(servers_.size() * size_t(n));
    for (auto& server : servers_) {
      for (int i = 0; i < n; ++i) refs.push_back(server.Task(&BenchActor::SmallValue).Remote());
    }
    CheckValues(lumen::Get(refs), refs.size(), 0);
    return int(refs.size());
  }
  // The same with an argument: one Put ref, passed to every call.
  int SmallValueBatchArg(int n) {
    lumen::ObjectRef<int> x = lumen::Put(0);
    std::vector<lumen::ObjectRef<int>> refs;
    refs.reserve(servers_.size() * size_t(n));
    for (auto& server : servers_) {
      for (int i = 0; i < n; ++i) refs.push_back(server.Task(&BenchActor::SmallValueArg).Remote(x));
    }
    CheckValues(lumen::Get(refs), refs.size(), 0);
    return int(refs.size());
  }

 private:
  std::vector<lumen::ActorHandle<BenchActor>> servers_;
};

// Ray's `work` task of "n:n actor calls async": n calls spread round-robin over `actors`.
int Work(std::vector<lumen::ActorHandle<BenchActor>> actors, int n) {
  std::vector<lumen::ObjectRef<int>> refs;
  refs.reserve(size_t(n));
  for (int i = 0; i < n; ++i) {
    refs.push_back(actors[size_t(i) % actors.size()].Task(&BenchActor::SmallValue).Remote());
  }
  CheckValues(lumen::Get(refs), refs.size(), 0);
  return n;
}

LUMEN_REMOTE(BenchActor::Create, &BenchActor::SmallValue, &BenchActor::SmallValueArg,
             &BenchActor::SmallValueBytes, Client::Create, &Client::SmallValueBatch,
             &Client::SmallValueBatchArg, Work);

namespace {

constexpr int kAsyncBatch = 1000;    // 1_1_actor_calls_async, _concurrent, _with_1kib_arg
constexpr int kConcurrency = 16;     // 1_1_actor_calls_concurrent
constexpr int kOneToNCalls = 5000;   // 1_n_actor_calls_async, per server
constexpr int kNToNTasks = 4;        // n_n_actor_calls_async: Ray's m
constexpr int kNToNCalls = 5000;     // n_n_actor_calls_async, per task
constexpr int kWithArgCalls = 1000;  // n_n_actor_calls_with_arg_async, per client
constexpr size_t kArgBytes = 1024;   // 1_1_actor_calls_with_1kib_arg

using Actors = std::vector<lumen::ActorHandle<BenchActor>>;

lumen::ActorHandle<BenchActor> NewActor(int max_concurrency = 1) {
  return lumen::Actor(BenchActor::Create).SetMaxConcurrency(max_concurrency).Remote();
}

Actors NewActors(int n) {
  Actors actors;
  for (int i = 0; i < n; ++i) actors.push_back(NewActor());
  return actors;
}

using lumen::bench::KillAll;

void SyncCall(const lumen::ActorHandle<BenchActor>& actor) {
  std::shared_ptr<const int> value = lumen::Get(actor.Task(&BenchActor::SmallValue).Remote());
  if (value == nullptr || *value != 0) throw std::runtime_error("wrong call result");
}

void AsyncCalls(const lumen::ActorHandle<BenchActor>& actor, int n) {
  std::vector<lumen::ObjectRef<int>> refs;
  refs.reserve(size_t(n));
  for (int i = 0; i < n; ++i) refs.push_back(actor.Task(&BenchActor::SmallValue).Remote());
  CheckValues(lumen::Get(refs), size_t(n), 0);
}

void CallsWithBytes(const lumen::ActorHandle<BenchActor>& actor, const std::string& bytes, int n) {
  std::vector<lumen::ObjectRef<int>> refs;
  refs.reserve(size_t(n));
  for (int i = 0; i < n; ++i) {
    refs.push_back(actor.Task(&BenchActor::SmallValueBytes).Remote(bytes));
  }
  CheckValues(lumen::Get(refs), size_t(n), int(bytes.size()));
}

void CheckCount(const lumen::ObjectRef<int>& ref, int expected) {
  std::shared_ptr<const int> count = lumen::Get(ref);
  if (count == nullptr || *count != expected) throw std::runtime_error("wrong number of calls");
}

void RunAll(lumen::bench::Bench& bench, const lumen::bench::Machine& machine) {
  const int n = std::max(2, int(machine.cores) / 2);
  std::fprintf(stderr, "actors_bench: n = %d server actors for the 1:n and n:n metrics\n", n);

  if (bench.Selected("1_1_actor_calls_sync")) {
    lumen::ActorHandle<BenchActor> actor = NewActor();
    bench.Throughput("1_1_actor_calls_sync", "calls/s", 1, [&] { SyncCall(actor); });
    actor.Kill();
  }
  if (bench.Selected("1_1_actor_calls_async")) {
    lumen::ActorHandle<BenchActor> actor = NewActor();
    bench.Throughput("1_1_actor_calls_async", "calls/s", kAsyncBatch,
                     [&] { AsyncCalls(actor, kAsyncBatch); });
    actor.Kill();
  }
  if (bench.Selected("1_1_actor_calls_concurrent")) {
    lumen::ActorHandle<BenchActor> actor = NewActor(kConcurrency);
    bench.Throughput("1_1_actor_calls_concurrent", "calls/s", kAsyncBatch,
                     [&] { AsyncCalls(actor, kAsyncBatch); });
    actor.Kill();
  }
  if (bench.Selected("1_n_actor_calls_async")) {
    Actors servers = NewActors(n);
    lumen::ActorHandle<Client> client = lumen::Actor(Client::Create).Remote(servers);
    bench.Throughput("1_n_actor_calls_async", "calls/s", kOneToNCalls * n, [&] {
      CheckCount(client.Task(&Client::SmallValueBatch).Remote(kOneToNCalls), kOneToNCalls * n);
    });
    client.Kill();
    KillAll(servers);
  }
  if (bench.Selected("n_n_actor_calls_async")) {
    Actors servers = NewActors(n);
    bench.Throughput("n_n_actor_calls_async", "calls/s", kNToNTasks * kNToNCalls, [&] {
      std::vector<lumen::ObjectRef<int>> tasks;
      for (int t = 0; t < kNToNTasks; ++t) {
        tasks.push_back(lumen::Task(Work).Remote(servers, kNToNCalls));
      }
      CheckValues(lumen::Get(tasks), size_t(kNToNTasks), kNToNCalls);
    });
    KillAll(servers);
  }
  if (bench.Selected("n_n_actor_calls_with_arg_async")) {
    Actors servers = NewActors(n);
    std::vector<lumen::ActorHandle<Client>> clients;
    for (const auto& server : servers) {
      clients.push_back(lumen::Actor(Client::Create).Remote(Actors{server}));
    }
    bench.Throughput("n_n_actor_calls_with_arg_async", "calls/s", kWithArgCalls * n, [&] {
      std::vector<lumen::ObjectRef<int>> batches;
      for (auto& client : clients) {
        batches.push_back(client.Task(&Client::SmallValueBatchArg).Remote(kWithArgCalls));
      }
      CheckValues(lumen::Get(batches), clients.size(), kWithArgCalls);
    });
    KillAll(clients);
    KillAll(servers);
  }
  if (bench.Selected("1_1_actor_calls_with_1kib_arg")) {
    lumen::ActorHandle<BenchActor> actor = NewActor();
    const std::string bytes(kArgBytes, 'x');
    bench.Throughput("1_1_actor_calls_with_1kib_arg", "calls/s", kAsyncBatch,
                     [&] { CallsWithBytes(actor, bytes, kAsyncBatch); });
    actor.Kill();
  }
  if (bench.Selected("actor_call_latency_p50") || bench.Selected("actor_call_latency_p99")) {
    lumen::ActorHandle<BenchActor> actor = NewActor();
    bench.Latency("actor_call_latency", [&] { SyncCall(actor); });
    actor.Kill();
  }
}

}  // namespace

int main(int argc, char** argv) {
  // First thing (inside RunBenchmarks): in a worker process lumen::Init never returns.
  return lumen::bench::RunBenchmarks("actors_bench", argc, argv, RunAll);
}
