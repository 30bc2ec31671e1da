// nested_tasks: a task can submit tasks of its own and wait for them. Each
// RunExperiment(i) fans out ten SubExperiment(i, j) tasks and sums their results.
#include <iostream>
#include <vector>

#include "lumen/lumen.h"

int SubExperiment(int i, int j) { return i + j; }

// Runs inside a worker: it submits tasks just as the driver does. While it waits in
// Get, its worker lends its CPU back so the sub-experiments can run.
int RunExperiment(int i) {
  std::vector<lumen::ObjectRef<int>> refs;
  for (int j = 0; j < 10; ++j) refs.push_back(lumen::Task(SubExperiment).Remote(i, j));
  int sum = 0;
  for (const auto& value : lumen::Get(refs)) sum += *value;
  return sum;
}
LUMEN_REMOTE(SubExperiment, RunExperiment);

int main(int argc, char** argv) {
  lumen::Init(lumen::Config{}, argc, argv);

  std::vector<lumen::ObjectRef<int>> experiments;
  for (int i = 0; i < 5; ++i) experiments.push_back(lumen::Task(RunExperiment).Remote(i));
  std::vector<std::shared_ptr<const int>> results = lumen::Get(experiments);

  std::cout << "[";
  for (size_t i = 0; i < results.size(); ++i) std::cout << (i ? ", " : "") << *results[i];
  std::cout << "]" << std::endl;

  lumen::Shutdown();
  return 0;
}
