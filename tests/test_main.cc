// main() of every lumen test binary. The raylet re-launches the test binary as a worker;
// Init() must then be the first thing that runs, before GoogleTest parses anything.
#include <gtest/gtest.h>

#include <cstdlib>

#include "lumen/lumen.h"

int main(int argc, char** argv) {
  if (std::getenv("LUMEN_WORKER") != nullptr) lumen::Init();  // never returns
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
