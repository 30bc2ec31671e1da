// Object benchmarks after Ray's `ray microbenchmark` (python/ray/_private/ray_perf.py):
// small Put/Get calls, and large puts and gets through the node's shared-memory store,
// beside the memcpy bandwidth of this machine measured in the same run. One JSON object
// per metric on stdout; notes on stderr. Usage: objects_bench [--runs N] [--seconds S]
// [--quick] [--filter NAME]; --quick skips the 800 MiB and 1 GiB values.

#include <cmath>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <vector>

#include "bench_util.h"
#include "lumen/lumen.h"

namespace {

using lumen::bench::Bench;
using lumen::bench::Machine;

constexpr double kGB = 1e9;
constexpr size_t kMiB = size_t(1) << 20;

// One memcpy of `bytes` between two buffers touched beforehand (no page faults timed).
double MeasureMemcpy(Bench& bench, const std::string& name, size_t bytes) {
  std::vector<uint8_t> from(bytes, 1), to(bytes, 0);
  return bench.Throughput(name, "GB/s", double(bytes) / kGB,
                          [&] { std::memcpy(to.data(), from.data(), bytes); });
}

// Ray's put_gigabytes: put a large value and let its ref go, over and over; then the
// put's share of this run's memcpy bandwidth, in percent.
void MeasurePut(Bench& bench, const std::string& name, size_t bytes, double memcpy_gbps) {
  std::vector<uint8_t> value(bytes, 7);
  double put = bench.Throughput(name, "GB/s", double(bytes) / kGB,
                                [&] { (void)lumen::Put(value); });
  if (std::isfinite(put) && std::isfinite(memcpy_gbps) && memcpy_gbps > 0) {
    bench.Emit(name + "_vs_memcpy", "%", {100.0 * put / memcpy_gbps});
  }
}

// Get of a stored large value: a view of shared memory, so its cost does not grow with
// the size (reported as nominal GB/s and as latency).
void MeasureGet(Bench& bench, const std::string& name, size_t bytes) {
  auto ref = lumen::Put(std::vector<uint8_t>(bytes, 9));
  bench.Throughput(name, "GB/s", double(bytes) / kGB, [&] {
    if (lumen::Get(ref)->size() != bytes) throw std::runtime_error("wrong size");
  });
  bench.Latency(name + "_latency", [&] { (void)lumen::Get(ref); });
}

}  // namespace

int main(int argc, char** argv) {
  return lumen::bench::RunBenchmarks("objects_bench", argc, argv, [](Bench& bench,
                                                                       const Machine&) {
    // Small objects (inline in the owner's process), as Ray's put_calls / get_calls.
    bench.Throughput("single_client_put_calls", "calls/s", 1, [] { (void)lumen::Put(0); });
    auto small = lumen::Put(0);
    bench.Throughput("single_client_get_calls", "calls/s", 1, [&] { (void)lumen::Get(small); });

    std::vector<size_t> sizes = {100 * kMiB};
    if (!bench.quick()) sizes.push_back(1024 * kMiB);
    for (size_t size : sizes) {
      std::string label = size >= 1024 * kMiB ? "1gib" : "100mib";
      double copy = MeasureMemcpy(bench, "memcpy_gigabytes_" + label, size);
      MeasurePut(bench, "put_gigabytes_" + label, size, copy);
      MeasureGet(bench, "get_gigabytes_" + label, size);
    }
    if (!bench.quick()) {
      // Ray's single_client_put_gigabytes uses an 800 MiB value.
      double copy = MeasureMemcpy(bench, "memcpy_gigabytes_800mib", 800 * kMiB);
      MeasurePut(bench, "single_client_put_gigabytes", 800 * kMiB, copy);
    }
    std::fprintf(stderr, "objects_bench: %s\n", lumen::MemorySummary().c_str());
  });
}
