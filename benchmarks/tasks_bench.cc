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
#include <memory>
#include <stdexcept>
#include <vector>

#include "bench_util.h"
#include "lumen/lumen.h"

namespace {

// The no-op task: Ray's ray_perf.py uses `small_value`, which returns b"ok".
int SmallValue() { return 0; }
LUMEN_REMOTE(SmallValue);

constexpr int kAsyncBatch = 10000;  // single_client_tasks_async
constexpr int kGetBatch = 1000;     // single_client_tasks_and_get_batch
constexpr int kWaitRefs = 1000;     // single_client_wait_1k_refs

void SyncTask() {
  std::shared_ptr<int> value = lumen::Get(lumen::Task(SmallValue).Remote());
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
  });
}
