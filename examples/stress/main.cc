// stress: when does going parallel pay? For n = 100, 200, ..., 1000 the driver runs a
// batch of O(n^2) calls in a loop and then as remote tasks. Small calls are dominated by
// the cost of a task round trip; large ones approach a speed-up of the core count.
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <thread>
#include <vector>

#include "lumen/lumen.h"

namespace {

constexpr int kCallsPerN = 8;  // calls in each batch, serial and parallel alike
constexpr int kRepeats = 250;  // times one call recomputes the sum, to be measurable

double SecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

// sum(i * j for i < n for j < n), computed `repeats` times. Reading n through a volatile
// on each pass keeps the compiler from computing it once and reusing the result.
int64_t SumOfProducts(int n, int repeats) {
  int64_t sum = 0;
  for (int r = 0; r < repeats; ++r) {
    volatile int volatile_n = n;
    const int64_t m = volatile_n;
    sum = 0;
    for (int64_t i = 0; i < m; ++i) {
      for (int64_t j = 0; j < m; ++j) sum += i * j;
    }
  }
  return sum;
}
LUMEN_REMOTE(SumOfProducts);

int main(int argc, char** argv) {
  lumen::Init(lumen::Config{}, argc, argv);

  // Start the workers before timing anything: the first tasks pay for process start-up.
  std::vector<lumen::ObjectRef<int64_t>> warm_up;
  for (int i = 0; i < kCallsPerN; ++i) warm_up.push_back(lumen::Task(SumOfProducts).Remote(1, 1));
  lumen::Get(warm_up);

  std::printf("%d calls per row, each summing i*j over an n x n grid %d times; %u cores\n",
              kCallsPerN, kRepeats, std::thread::hardware_concurrency());
  std::printf("%6s %12s %12s %10s\n", "n", "serial (s)", "parallel (s)", "speed-up");
  bool all_correct = true;
  double serial_total = 0, parallel_total = 0;
  for (int n = 100; n <= 1000; n += 100) {
    const int64_t half = int64_t{n} * (n - 1) / 2;
    const int64_t expected = half * half;  // (sum of i for i < n) squared

    auto start = std::chrono::steady_clock::now();
    for (int c = 0; c < kCallsPerN; ++c) all_correct &= SumOfProducts(n, kRepeats) == expected;
    const double serial = SecondsSince(start);

    start = std::chrono::steady_clock::now();
    std::vector<lumen::ObjectRef<int64_t>> refs;
    for (int c = 0; c < kCallsPerN; ++c) {
      refs.push_back(lumen::Task(SumOfProducts).Remote(n, kRepeats));
    }
    for (const auto& value : lumen::Get(refs)) all_correct &= *value == expected;
    const double parallel = SecondsSince(start);

    serial_total += serial;
    parallel_total += parallel;
    std::printf("%6d %12.3f %12.3f %9.2fx\n", n, serial, parallel, serial / parallel);
  }
  std::printf("%6s %12.3f %12.3f %9.2fx\n", "total", serial_total, parallel_total,
              serial_total / parallel_total);
  std::printf("%s\n", all_correct ? "all results correct" : "WRONG RESULTS");

  lumen::Shutdown();
  return all_correct ? 0 : 1;
}
