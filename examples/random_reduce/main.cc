// random_reduce: 100 tasks each draw a random number; a tree of remote Add tasks sums
// them pairwise, and the driver checks the total against the values fetched directly.
#include <cmath>
#include <cstdint>
#include <iomanip>
#include <iostream>
#include <random>
#include <vector>

#include "lumen/lumen.h"

namespace {

constexpr int kNumValues = 100;

}  // namespace

// One uniform number in [0, 1) from a generator seeded by the caller.
double RandomValue(uint64_t seed) {
  std::mt19937_64 generator(seed);
  return std::uniform_real_distribution<double>(0.0, 1.0)(generator);
}

double Add(double a, double b) { return a + b; }
LUMEN_REMOTE(RandomValue, Add);

int main(int argc, char** argv) {
  lumen::Init(lumen::Config{}, argc, argv);
  std::cout << std::setprecision(12);

  const uint64_t base_seed = std::random_device{}();
  std::vector<lumen::ObjectRef<double>> values;
  for (int i = 0; i < kNumValues; ++i) {
    values.push_back(lumen::Task(RandomValue).Remote(base_seed + i));
  }

  // Pairwise tree: 100 -> 50 -> 25 -> 13 -> 7 -> 4 -> 2 -> 1. Each Add starts as soon as
  // its two inputs exist; the driver only submits and never waits in between.
  std::vector<lumen::ObjectRef<double>> level = values;
  int num_adds = 0;
  while (level.size() > 1) {
    std::vector<lumen::ObjectRef<double>> next;
    for (size_t i = 0; i + 1 < level.size(); i += 2) {
      next.push_back(lumen::Task(Add).Remote(level[i], level[i + 1]));
      ++num_adds;
    }
    if (level.size() % 2 == 1) next.push_back(level.back());
    level = std::move(next);
  }
  double tree_sum = *lumen::Get(level[0]);

  double direct_sum = 0;
  for (const auto& value : lumen::Get(values)) direct_sum += *value;

  // The two sums add the same numbers in a different order, so compare with a tolerance.
  bool match = std::fabs(tree_sum - direct_sum) <= 1e-9 * std::fabs(direct_sum);
  std::cout << kNumValues << " random values, " << num_adds << " remote adds" << std::endl;
  std::cout << "tree sum:   " << tree_sum << std::endl;
  std::cout << "direct sum: " << direct_sum << std::endl;
  std::cout << (match ? "OK: the sums match" : "MISMATCH") << std::endl;

  lumen::Shutdown();
  return match ? 0 : 1;
}
