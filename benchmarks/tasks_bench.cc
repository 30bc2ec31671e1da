// tasks_bench: lumen's task microbenchmarks, after Ray's `ray microbenchmark`
// (python/ray/_private/ray_perf.py and ray_microbenchmark_helpers.timeit).
//
// Starts an embedded one-node cluster with the default Config (num_cpus = the machine's
// cores) and measures, for a no-op remote function:
//   single_client_tasks_sync           submit one task, Get it, repeat
//   single_client_tasks_async          submit 10,000 tasks, then Get them all
//   single_client_tasks_and_get_batch  submit 1,000 tasks, Get them in one vector call
//   single_client_wait_1k_refs         submit 1,000 tasks, then Wait(refs, 1) on the
//                                      unready rest until none is left (1,000 Waits)
//   single_client_task_latency_p50/p99 round trip of one task (submit + Get), in us
//   multi_client_tasks_async           m = 4 client actors, each submitting n = 10,000
//                                      tasks and Getting them all, called at once by the
//                                      driver (Ray's Actor.small_value_batch); tasks/s of
//                                      all m * n tasks (--quick: n = 1,000)
//   single_client_get_object_containing_10k_refs
//                                      Get of a Put vector of 10,000 ObjectRef<int>s, each
//                                      Put once beforehand; calls/s (each deserializes 10k
//                                      refs). Ray makes the refs in a task; here the driver
//                                      Puts them
// and, only with --sweep or a --filter naming "inflight", the sweep of throughput against
// the number of tasks in flight:
//   tasks_async_inflight_<k>           submit k tasks, then Get them all; tasks/s, for k in
//                                      1, 4, 16, ..., 16384 (--quick: 1 and 64)
//
// Each metric gets a warm-up, then --runs measured runs of at least --seconds each; a
// run's figure is (tasks done) / (elapsed), or a latency percentile of the run's samples.
// stdout holds one JSON object per metric and nothing else (format in bench_util.h);
// human-readable notes go to stderr.
//
// Workers are this program re-executed, so lumen::Init comes first in main (in
// RunBenchmarks); lumen reads its own --lumen-* flags (e.g. --lumen-num-cpus=4) and this
// program ignores them.

#include <chrono>
#include <cstdio>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "bench_util.h"
#include "lumen/lumen.h"

namespace {

// The no-op task: Ray's ray_perf.py uses `small_value`, which returns b"ok".
int SmallValue() { return 0; }
LUMEN_REMOTE(SmallValue);

constexpr int kAsyncBatch = 10000;       // single_client_tasks_async
constexpr int kGetBatch = 1000;          // single_client_tasks_and_get_batch
constexpr int kWaitRefs = 1000;          // single_client_wait_1k_refs
constexpr int kClients = 4;              // multi_client_tasks_async: Ray's m
constexpr int kClientTasks = 10000;      // multi_client_tasks_async: Ray's n, per client
constexpr int kQuickClientTasks = 1000;  // the same with --quick
constexpr int kContainedRefs = 10000;    // single_client_get_object_containing_10k_refs

void SyncTask() {
  std::shared_ptr<const int> value = lumen::Get(lumen::Task(SmallValue).Remote());
  if (value == nullptr || *value != 0) throw std::runtime_error("wrong task result");
}

void SubmitAndGet(int n) {
  std::vector<lumen::ObjectRef<int>> refs;
  refs.reserve(n);
  for (int i = 0; i < n; ++i) refs.push_back(lumen::Task(SmallValue).Remote());
  if (lumen::Get(refs).size() != size_t(n)) throw std::runtime_error("Get lost values");
}

// Ray's wait_multiple_refs: Wait for one ready ref at a time until none is left.
void WaitOneByOne(int n) {
  std::vector<lumen::ObjectRef<int>> unready;
  unready.reserve(n);
  for (int i = 0; i < n; ++i) unready.push_back(lumen::Task(SmallValue).Remote());
  int waits = 0;
  while (!unready.empty()) {
    lumen::WaitResult<int> result = lumen::Wait(unready, 1, std::chrono::milliseconds(-1));
    if (result.ready.size() != 1) throw std::runtime_error("Wait returned no ready ref");
    unready = std::move(result.unready);
    ++waits;
  }
  if (waits != n) throw std::runtime_error("wrong number of Waits");
}

// Ray's Actor.small_value_batch: an actor that submits n tasks and Gets them all.
class TaskClient {
 public:
  static TaskClient* Create() { return new TaskClient(); }
  int SmallValueBatch(int n) {
    SubmitAndGet(n);
    return n;
  }
};
LUMEN_REMOTE(TaskClient::Create, &TaskClient::SmallValueBatch);

void MeasureMultiClient(lumen::bench::Bench& bench) {
  const std::string name = "multi_client_tasks_async";
  if (!bench.Selected(name)) return;
  const int n = bench.quick() ? kQuickClientTasks : kClientTasks;
  std::fprintf(stderr, "tasks_bench: %s: m = %d client actors, n = %d tasks each\n",
               name.c_str(), kClients, n);
  auto clients = lumen::bench::NewClients(kClients, TaskClient::Create);
  bench.Throughput(name, "tasks/s", double(kClients) * n, [&] {
    lumen::bench::CallAllAndCheck(clients, &TaskClient::SmallValueBatch, n, n);
  });
  lumen::bench::KillAll(clients);
}

// Ray's "single client get object containing 10k refs".
void MeasureGetContainingRefs(lumen::bench::Bench& bench) {
  const std::string name = "single_client_get_object_containing_10k_refs";
  if (!bench.Selected(name)) return;
  std::vector<lumen::ObjectRef<int>> inner;
  inner.reserve(kContainedRefs);
  for (int i = 0; i < kContainedRefs; ++i) inner.push_back(lumen::Put(1));
  lumen::ObjectRef<std::vector<lumen::ObjectRef<int>>> outer = lumen::Put(inner);
  bench.Throughput(name, "calls/s", 1, [&] {
    if (lumen::Get(outer)->size() != size_t(kContainedRefs)) {
      throw std::runtime_error("wrong number of refs");
    }
  });
}

// Throughput against tasks in flight: k submitted, then one Get of all k.
void MeasureInflightSweep(lumen::bench::Bench& bench) {
  std::vector<int> ks = {1, 64};
  if (!bench.quick()) ks = {1, 4, 16, 64, 256, 1024, 4096, 16384};
  for (int k : ks) {
    const std::string name = "tasks_async_inflight_" + std::to_string(k);
    if (!bench.SelectedSweep(name, "inflight")) continue;
    bench.Throughput(name, "tasks/s", k, [k] { SubmitAndGet(k); });
  }
}

}  // namespace

int main(int argc, char** argv) {
  using lumen::bench::Bench;
  using lumen::bench::Machine;
  return lumen::bench::RunBenchmarks("tasks_bench", argc, argv, [](Bench& bench, const Machine&) {
    bench.Throughput("single_client_tasks_sync", "tasks/s", 1, SyncTask);
    bench.Throughput("single_client_tasks_async", "tasks/s", kAsyncBatch,
                     [] { SubmitAndGet(kAsyncBatch); });
    bench.Throughput("single_client_tasks_and_get_batch", "tasks/s", kGetBatch,
                     [] { SubmitAndGet(kGetBatch); });
    bench.Throughput("single_client_wait_1k_refs", "tasks/s", kWaitRefs,
                     [] { WaitOneByOne(kWaitRefs); });
    bench.Latency("single_client_task_latency", SyncTask);
    MeasureMultiClient(bench);
    MeasureGetContainingRefs(bench);
    MeasureInflightSweep(bench);
  });
}
