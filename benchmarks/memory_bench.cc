// Memory over time: does lumen give back what its users drop? Two loops on an embedded
// one-node cluster, sampling the driver's resident memory (RSS), the node store's use
// and the objects the driver still tracks at checkpoints:
//
//   tasks_loop_driver_rss   1,000,000 no-op tasks, submitted 1,000 at a time, each batch
//                           Get and dropped
//   puts_loop_driver_rss    10,000 Puts of 1 MiB (node store), each ref dropped at once
//
// Each prints one JSON line whose runs are the samples (10 checkpoints after a warm-up
// batch): median/min/max show how far RSS moved over the loop, and "series" lists
// [done, rss MiB, store used MiB, objects tracked] per checkpoint. --quick shrinks the
// loops 50x. Flat memory means max - min stays small and the store ends empty.
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "bench_util.h"
#include "lumen/memory.h"

namespace {

using lumen::bench::Bench;
using lumen::bench::JsonNumber;
using lumen::bench::Machine;

constexpr double kMiB = 1024.0 * 1024.0;
constexpr int kCheckpoints = 10;

int Noop() { return 0; }
LUMEN_REMOTE(Noop);

double ResidentMiB() {
  std::ifstream in("/proc/self/statm");
  long size = 0, resident = 0;
  in >> size >> resident;
  return double(resident) * double(sysconf(_SC_PAGE_SIZE)) / kMiB;
}

struct Sample {
  long done = 0;
  double rss_mib = 0;
  double store_mib = 0;
  uint64_t tracked = 0;
};

Sample Take(long done) {
  lumen::MemoryInfo info = lumen::GetMemoryInfo(false);
  return {done, ResidentMiB(), double(info.used) / kMiB, info.tracked_in_process};
}

// One JSON line: the RSS samples as the runs, the whole series beside them.
void EmitSeries(const Bench& bench, const std::string& name, const std::vector<Sample>& samples) {
  std::vector<double> rss;
  std::string series;
  for (const Sample& s : samples) {
    rss.push_back(s.rss_mib);
    series += std::string(series.empty() ? "" : ", ") + "[" + std::to_string(s.done) + ", " +
              JsonNumber(s.rss_mib) + ", " + JsonNumber(s.store_mib) + ", " +
              std::to_string(s.tracked) + "]";
    std::fprintf(stderr, "%s: %9ld done, rss %8.1f MiB, store %8.1f MiB, tracked %llu\n",
                 name.c_str(), s.done, s.rss_mib, s.store_mib,
                 static_cast<unsigned long long>(s.tracked));
  }
  bench.Emit(name, "MiB", rss, "\"series\": [" + series + "]");
}

// Runs `step` (which does `per_step` items) until `total` items are done; samples after
// a warm-up step and then at kCheckpoints even intervals.
std::vector<Sample> Loop(long total, long per_step, const std::function<void()>& step) {
  step();  // warm-up: connections, worker start, allocator pools
  std::vector<Sample> samples{Take(0)};
  const long every = std::max(per_step, total / kCheckpoints);
  for (long done = 0; done < total;) {
    step();
    done += per_step;
    if (done % every == 0 || done >= total) samples.push_back(Take(done));
  }
  return samples;
}

}  // namespace

int main(int argc, char** argv) {
  return lumen::bench::RunBenchmarks("memory_bench", argc, argv, [](Bench& bench, const Machine&) {
    const long scale = bench.quick() ? 50 : 1;
    if (bench.Selected("tasks_loop_driver_rss")) {
      constexpr long kBatch = 1000;
      auto samples = Loop(1000000 / scale, kBatch, [] {
        std::vector<lumen::ObjectRef<int>> refs;
        refs.reserve(kBatch);
        for (long i = 0; i < kBatch; ++i) refs.push_back(lumen::Task(Noop).Remote());
        for (const auto& value : lumen::Get(refs)) {
          if (*value != 0) throw std::runtime_error("wrong result");
        }
      });
      EmitSeries(bench, "tasks_loop_driver_rss", samples);
    }
    if (bench.Selected("puts_loop_driver_rss")) {
      const std::vector<uint8_t> payload(1 << 20, 7);
      auto samples = Loop(10000 / scale, 1, [&] { (void)lumen::Put(payload); });
      EmitSeries(bench, "puts_loop_driver_rss", samples);
    }
  });
}
