// A driver for process_test: starts an embedded cluster, prints what the test needs
// (its session directory and worker pids), then waits to be signalled.
#include <unistd.h>

#include <iostream>
#include <thread>

#include "lumen/lumen.h"

int Pid() {
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // spread over workers
  return getpid();
}
LUMEN_REMOTE(Pid);

int main(int argc, char** argv) {
  lumen::Config config;
  config.num_cpus = 2;
  config.session_dir = argc > 1 ? argv[1] : "";
  lumen::Init(config, argc, argv);
  std::vector<lumen::ObjectRef<int>> refs;
  for (int i = 0; i < 4; ++i) refs.push_back(lumen::Task(Pid).Remote());
  for (const auto& pid : lumen::Get(refs)) std::cout << "worker " << *pid << "\n";
  std::cout << "ready" << std::endl;
  while (true) pause();
}
