// counter: the first actor of Ray's teaching material. An actor is an object that lives
// in a worker process of its own: its methods run there, one call at a time, in the order
// each caller made them, and its state stays between calls.
#include <iostream>
#include <string>
#include <vector>

#include "lumen/lumen.h"

class Counter {
 public:
  static Counter* Create() { return new Counter(); }  // the factory runs in the actor
  int Increment() { return ++value_; }
  int GetCounter() const { return value_; }

 private:
  int value_ = 0;
};
LUMEN_REMOTE(Counter::Create, &Counter::Increment, &Counter::GetCounter);

// A task that holds a handle to the counter and calls it, like any other caller.
int IncrementTimes(lumen::ActorHandle<Counter> counter, int times) {
  int last = 0;
  for (int i = 0; i < times; ++i) last = *lumen::Get(counter.Task(&Counter::Increment).Remote());
  return last;
}
LUMEN_REMOTE(IncrementTimes);

namespace {

std::string Format(const std::vector<int>& values) {
  std::string text = "[";
  for (size_t i = 0; i < values.size(); ++i) {
    text += (i ? ", " : "") + std::to_string(values[i]);
  }
  return text + "]";
}

std::vector<int> Values(const std::vector<lumen::ObjectRef<int>>& refs) {
  std::vector<int> values;
  for (const auto& value : lumen::Get(refs)) values.push_back(*value);
  return values;
}

}  // namespace

int main(int argc, char** argv) {
  lumen::Init(lumen::Config{}, argc, argv);
  bool ok = true;

  // One counter, one call.
  lumen::ActorHandle<Counter> counter = lumen::Actor(Counter::Create).Remote();
  int first = *lumen::Get(counter.Task(&Counter::Increment).Remote());
  std::cout << "one counter, one increment: " << first << std::endl;
  ok &= first == 1;

  // Ten counters, each with its own state: every one answers 1.
  std::vector<lumen::ActorHandle<Counter>> counters;
  for (int i = 0; i < 10; ++i) counters.push_back(lumen::Actor(Counter::Create).Remote());
  std::vector<lumen::ObjectRef<int>> refs;
  for (auto& c : counters) refs.push_back(c.Task(&Counter::Increment).Remote());
  std::vector<int> ones = Values(refs);
  std::cout << "ten counters, one increment each: " << Format(ones) << std::endl;
  ok &= ones == std::vector<int>(10, 1);

  // Five calls to one counter run in the order they were made.
  refs.clear();
  for (int i = 0; i < 5; ++i) refs.push_back(counters[0].Task(&Counter::Increment).Remote());
  std::vector<int> in_order = Values(refs);
  std::cout << "five increments of counter 0: " << Format(in_order) << std::endl;
  ok &= in_order == std::vector<int>({2, 3, 4, 5, 6});

  // Handles can be passed to tasks: three tasks increment the first counter 10 times each.
  std::vector<lumen::ObjectRef<int>> tasks;
  for (int i = 0; i < 3; ++i) tasks.push_back(lumen::Task(IncrementTimes).Remote(counter, 10));
  lumen::Get(tasks);
  int total = *lumen::Get(counter.Task(&Counter::GetCounter).Remote());
  std::cout << "after three tasks of ten increments: " << total << " (expected 31)" << std::endl;
  ok &= total == 31;

  std::cout << (ok ? "OK" : "WRONG RESULTS") << std::endl;
  lumen::Shutdown();
  return ok ? 0 : 1;
}
