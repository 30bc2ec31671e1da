// placement_group_bench: placement groups on a loopback cluster of `lumen start` daemons.
//
// Run by scripts/bench, which starts the cluster (head 127.0.0.2 with 1 CPU, nodes
// 127.0.0.3 and 127.0.0.4 with 2 CPUs each) and passes its address:
// placement_group_bench --lumen-address=127.0.0.2:PORT [--runs N] [--seconds S] [--quick].
//   placement_groups_create_remove   a group of 2 bundles of 0.5 CPU (PACK) created,
//                                    waited for, and removed, one after another:
//                                    groups/s (Ray publishes about 840/s on a 64-core
//                                    machine, create and remove)
//   placement_groups_100x2_ready     100 groups of 2 bundles of 0.01 CPU (SPREAD) created
//                                    at once; seconds until every one is ready
//   placement_group_task_sync        a no-op task in a bundle on another node: submit, Get
// Output and flags as in bench_util.h.
#include <cstdio>
#include <stdexcept>
#include <vector>

#include "bench_util.h"
#include "lumen/lumen.h"

namespace {

using lumen::bench::Bench;
using lumen::bench::Clock;
using lumen::bench::Machine;
using lumen::bench::SecondsSince;

int Noop() { return 0; }

lumen::PlacementGroup Make(lumen::PlacementStrategy strategy, double cpus) {
  return lumen::CreatePlacementGroup(
      {.bundles = {{{"CPU", cpus}}, {{"CPU", cpus}}}, .strategy = strategy});
}

void RunAll(Bench& bench, const Machine&) {
  auto nodes = lumen::Nodes();
  if (nodes.size() < 3) {
    throw std::runtime_error("placement_group_bench wants the 3-node cluster scripts/bench starts");
  }
  std::fprintf(stderr, "placement_group_bench: %zu nodes\n", nodes.size());
  bench.Throughput("placement_groups_create_remove", "groups/s", 1, [] {
    auto group = Make(lumen::PlacementStrategy::kPack, 0.5);
    if (!group.Wait(std::chrono::seconds(60))) throw std::runtime_error("a group never came");
    lumen::RemovePlacementGroup(group.ID());
  });
  const std::string name = "placement_groups_100x2_ready";
  if (bench.Selected(name)) {
    std::vector<double> values;
    for (int run = 0; run < bench.runs(); ++run) {
      auto start = Clock::now();
      std::vector<lumen::PlacementGroup> groups;
      for (int i = 0; i < 100; ++i) groups.push_back(Make(lumen::PlacementStrategy::kSpread, 0.01));
      for (auto& group : groups) {
        if (!group.Wait(std::chrono::seconds(120))) throw std::runtime_error("a group never came");
      }
      values.push_back(SecondsSince(start));
      for (auto& group : groups) lumen::RemovePlacementGroup(group.ID());
    }
    bench.Emit(name, "s", values);
  }
  // A bundle on a node other than the driver's (the head has 1 CPU: strict pack of 2 goes
  // to one of the others).
  auto group = lumen::CreatePlacementGroup(
      {.bundles = {{{"CPU", 1}}, {{"CPU", 1}}}, .strategy = lumen::PlacementStrategy::kStrictPack});
  if (!group.Wait(std::chrono::seconds(60))) throw std::runtime_error("the group never came");
  bench.Throughput("placement_group_task_sync", "tasks/s", 1, [&] {
    lumen::Get(lumen::Task(Noop).SetPlacementGroup(group, 0).Remote());
  });
  lumen::RemovePlacementGroup(group.ID());
}

}  // namespace

LUMEN_REMOTE(Noop);

int main(int argc, char** argv) {
  return lumen::bench::RunBenchmarks("placement_group_bench", argc, argv, RunAll);
}
