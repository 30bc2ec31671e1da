// A driver for cluster_test: joins the cluster at --lumen-address, then
// - by default: leaves two named actors behind (one detached), prints "ready" and exits
//   without Shutdown, as a driver that crashes or is killed does: its process is gone;
// - with --tasks-everywhere: runs a task on every node, prints "ready", shuts down and
//   returns, as a driver that finished its job does;
// - with --placement-groups: reserves the groups "kept" (detached) and "dropped" (half a
//   CPU each), prints "ready" and exits without Shutdown.
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "lumen/lumen.h"
#include "tally.h"

using lumen::test::Tally;

namespace {
std::string Here() { return lumen::GetRuntimeContext().NodeId(); }
}  // namespace

LUMEN_REMOTE(Tally::Create, &Tally::Add, &Tally::Where, Here);

int main(int argc, char** argv) {
  lumen::Init(lumen::Config(), argc, argv);  // in a worker process this runs tasks
  if (argc > 1 && std::strcmp(argv[argc - 1], "--tasks-everywhere") == 0) {
    for (const lumen::NodeInfo& node : lumen::Nodes()) {
      auto pinned = lumen::NodeAffinityStrategy{.node_id = node.node_id, .soft = false};
      if (*lumen::Get(lumen::Task(Here).SetSchedulingStrategy(pinned).Remote()) != node.node_id) {
        return 1;
      }
    }
    std::printf("ready\n");
    lumen::Shutdown();
    return 0;
  }
  if (argc > 1 && std::strcmp(argv[argc - 1], "--placement-groups") == 0) {
    auto kept = lumen::CreatePlacementGroup({.name = "kept",
                                             .bundles = {{{"CPU", 0.5}}},
                                             .lifetime = lumen::ActorLifetime::kDetached});
    auto dropped = lumen::CreatePlacementGroup({.name = "dropped", .bundles = {{{"CPU", 0.5}}}});
    if (!kept.Wait(std::chrono::seconds(60)) || !dropped.Wait(std::chrono::seconds(60))) return 1;
    std::printf("ready\n");
    std::fflush(stdout);
    std::_Exit(0);
  }
  auto keeper = lumen::Actor(Tally::Create)
                    .SetName("keeper", "shared")
                    .SetLifetime(lumen::ActorLifetime::kDetached)
                    .Remote(10);
  lumen::Get(keeper.Task(&Tally::Add).Remote(5));
  auto plain = lumen::Actor(Tally::Create).SetName("plain", "shared").Remote(0);
  lumen::Get(plain.Task(&Tally::Add).Remote(1));
  std::printf("ready\n");
  std::fflush(stdout);
  std::_Exit(0);
}
