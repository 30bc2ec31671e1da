// parallel_sleep: ten one-second calls take ten seconds in a loop, but about
// ceil(10 / cores) seconds as remote tasks, because the tasks run side by side.
#include <algorithm>
#include <chrono>
#include <iomanip>
#include <iostream>
#include <thread>
#include <vector>

#include "lumen/lumen.h"

namespace {

constexpr int kNumCalls = 10;

double SecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

// Stands for one second of real work.
int SlowIdentity(int i) {
  std::this_thread::sleep_for(std::chrono::seconds(1));
  return i;
}
LUMEN_REMOTE(SlowIdentity);

int main(int argc, char** argv) {
  lumen::Init(lumen::Config{}, argc, argv);
  std::cout << std::fixed << std::setprecision(2);

  // Serial: call the function ten times in this process.
  auto start = std::chrono::steady_clock::now();
  int serial_sum = 0;
  for (int i = 0; i < kNumCalls; ++i) serial_sum += SlowIdentity(i);
  std::cout << "serial:   " << kNumCalls << " calls in " << SecondsSince(start) << " s (sum "
            << serial_sum << ")" << std::endl;

  // Parallel: submit ten tasks first, then wait for all of them at once.
  start = std::chrono::steady_clock::now();
  std::vector<lumen::ObjectRef<int>> refs;
  for (int i = 0; i < kNumCalls; ++i) refs.push_back(lumen::Task(SlowIdentity).Remote(i));
  int parallel_sum = 0;
  for (const auto& value : lumen::Get(refs)) parallel_sum += *value;
  unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  std::cout << "parallel: " << kNumCalls << " tasks in " << SecondsSince(start) << " s (sum "
            << parallel_sum << "; about " << (kNumCalls + cores - 1) / cores << " s expected on "
            << cores << " cores)" << std::endl;

  lumen::Shutdown();
  return serial_sum == parallel_sum ? 0 : 1;
}
