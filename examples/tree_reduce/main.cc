// tree_reduce: summing eight values with a slow two-argument Add. A chain of adds
// waits on each previous sum (7 steps); a tree adds independent pairs together
// (log2(8) = 3 steps).
#include <chrono>
#include <iomanip>
#include <iostream>
#include <thread>
#include <vector>

#include "lumen/lumen.h"

namespace {

double SecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

// Stands for an aggregation step that takes one second.
int Add(int a, int b) {
  std::this_thread::sleep_for(std::chrono::seconds(1));
  return a + b;
}
LUMEN_REMOTE(Add);

namespace {

// Add only sleeps, so it asks for half a CPU: four adds can run at once on two cores,
// which is what the widest level of the tree needs.
lumen::ObjectRef<int> RemoteAdd(const lumen::ObjectRef<int>& a, const lumen::ObjectRef<int>& b) {
  return lumen::Task(Add).SetResource("CPU", 0.5).Remote(a, b);
}

}  // namespace

int main(int argc, char** argv) {
  lumen::Init(lumen::Config{}, argc, argv);
  std::cout << std::fixed << std::setprecision(2);

  std::vector<lumen::ObjectRef<int>> values;
  for (int v = 1; v <= 8; ++v) values.push_back(lumen::Put(v));

  // Linear: ((((((1 + 2) + 3) + 4) + 5) + 6) + 7) + 8 — each add needs the one before.
  auto start = std::chrono::steady_clock::now();
  lumen::ObjectRef<int> linear = values[0];
  for (size_t i = 1; i < values.size(); ++i) linear = RemoteAdd(linear, values[i]);
  int linear_result = *lumen::Get(linear);
  std::cout << "linear: result " << linear_result << " in " << SecondsSince(start)
            << " s (7 adds one after another)" << std::endl;

  // Tree: add neighbours pairwise, level by level, until one value is left.
  start = std::chrono::steady_clock::now();
  std::vector<lumen::ObjectRef<int>> level = values;
  while (level.size() > 1) {
    std::vector<lumen::ObjectRef<int>> next;
    for (size_t i = 0; i + 1 < level.size(); i += 2) {
      next.push_back(RemoteAdd(level[i], level[i + 1]));
    }
    if (level.size() % 2 == 1) next.push_back(level.back());
    level = std::move(next);
  }
  int tree_result = *lumen::Get(level[0]);
  std::cout << "tree:   result " << tree_result << " in " << SecondsSince(start)
            << " s (levels of 4, 2 and 1 adds)" << std::endl;

  lumen::Shutdown();
  return linear_result == 36 && tree_result == 36 ? 0 : 1;
}
