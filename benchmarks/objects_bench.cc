// Object benchmarks after Ray's `ray microbenchmark` (python/ray/_private/ray_perf.py):
// small Put/Get calls, and large puts and gets through the node's shared-memory store,
// beside the memcpy bandwidth of this machine measured in the same run. One JSON object
// per metric on stdout; notes on stderr. Usage: objects_bench [--runs N] [--seconds S]
// [--quick] [--filter NAME]; --quick skips the 800 MiB and 1 GiB values.
//
// Multi-client puts, made from inside m client actors (worker processes) called at once
// by the driver, which then Gets all the calls (m and sizes printed on stderr):
//   multi_client_put_calls      m = 4 actors, each Putting a small int 1,000 times per
//                               call; calls/s = puts/s of all m. Ray uses 10 tasks of 100.
//   multi_client_put_gigabytes  m = 2 actors (this is a 2-core machine), each Putting one
//                               100 MiB vector (made once per actor) 4 times per call,
//                               through the node's shared-memory store; GB/s of all m.
//                               Ray: 10 tasks, each 10 puts of 80 MB. --quick: 10 MiB.

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "bench_util.h"
#include "lumen/lumen.h"

namespace {

using lumen::bench::Bench;
using lumen::bench::Machine;

constexpr double kGB = 1e9;
constexpr size_t kMiB = size_t(1) << 20;

constexpr int kSmallClients = 4;                  // multi_client_put_calls: m
constexpr int kSmallPuts = 1000;                  // multi_client_put_calls: puts per call
constexpr int kLargeClients = 2;                  // multi_client_put_gigabytes: m
constexpr int kLargePuts = 4;                     // multi_client_put_gigabytes: puts per call
constexpr uint64_t kLargeBytes = 100 * kMiB;      // multi_client_put_gigabytes: value size
constexpr uint64_t kQuickLargeBytes = 10 * kMiB;  // the same with --quick

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

// A client actor for the multi-client puts: holds a value of `bytes` bytes to Put.
class PutClient {
 public:
  explicit PutClient(uint64_t bytes) : value_(bytes, 7) {}
  static PutClient* Create(uint64_t bytes) { return new PutClient(bytes); }
  // n Puts of a small int, each ref let go at once; returns n.
  int PutSmall(int n) {
    for (int i = 0; i < n; ++i) (void)lumen::Put(0);
    return n;
  }
  // n Puts of the held value (to the node's store when large); returns n.
  int PutValue(int n) {
    for (int i = 0; i < n; ++i) (void)lumen::Put(value_);
    return n;
  }

 private:
  std::vector<uint8_t> value_;
};
LUMEN_REMOTE(PutClient::Create, &PutClient::PutSmall, &PutClient::PutValue);

namespace {

void MeasureMultiClientPuts(Bench& bench) {
  using lumen::bench::CallAllAndCheck;
  using lumen::bench::NewClients;
  if (bench.Selected("multi_client_put_calls")) {
    std::fprintf(stderr, "objects_bench: multi_client_put_calls: m = %d actors, %d puts each\n",
                 kSmallClients, kSmallPuts);
    auto clients = NewClients(kSmallClients, PutClient::Create, uint64_t(0));
    bench.Throughput("multi_client_put_calls", "calls/s", double(kSmallClients) * kSmallPuts, [&] {
      CallAllAndCheck(clients, &PutClient::PutSmall, kSmallPuts, kSmallPuts);
    });
    lumen::bench::KillAll(clients);
  }
  if (bench.Selected("multi_client_put_gigabytes")) {
    const uint64_t bytes = bench.quick() ? kQuickLargeBytes : kLargeBytes;
    std::fprintf(stderr,
                 "objects_bench: multi_client_put_gigabytes: m = %d actors, %d puts each of "
                 "%llu MiB\n",
                 kLargeClients, kLargePuts, (unsigned long long)(bytes / kMiB));
    auto clients = NewClients(kLargeClients, PutClient::Create, bytes);
    bench.Throughput("multi_client_put_gigabytes", "GB/s",
                     double(kLargeClients) * kLargePuts * double(bytes) / kGB, [&] {
                       CallAllAndCheck(clients, &PutClient::PutValue, kLargePuts, kLargePuts);
                     });
    lumen::bench::KillAll(clients);
  }
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
    MeasureMultiClientPuts(bench);
    std::fprintf(stderr, "objects_bench: %s\n", lumen::MemorySummary().c_str());
  });
}
