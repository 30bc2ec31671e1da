// A driver for cluster_test: joins the cluster at --lumen-address, leaves two named
// actors behind (one detached), prints "ready" and exits without Shutdown, as a driver
// that crashes or is killed does: its process is simply gone.
#include <cstdio>
#include <cstdlib>

#include "lumen/lumen.h"
#include "tally.h"

using lumen::test::Tally;

LUMEN_REMOTE(Tally::Create, &Tally::Add, &Tally::Where);

int main(int argc, char** argv) {
  lumen::Init(lumen::Config(), argc, argv);  // in a worker process this runs tasks
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
