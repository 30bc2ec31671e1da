// A driver for process_test: starts an embedded cluster, prints what the test needs
// (its session directory and worker pids), then waits to be signalled: in pause(), or,
// with a second argument "get", blocked in Get on a task that never ends.
#include <unistd.h>

#include <iostream>
#include <thread>

#include "lumen/lumen.h"

int Pid() {
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // spread over workers
  return getpid();
}
int Forever() {
  while (true) pause();
}
LUMEN_REMOTE(Pid, Forever);

int main(int argc, char** argv) {
  lumen::Config config;
  config.num_cpus = 2;
  config.session_dir = argc > 1 ? argv[1] : "";
  lumen::Init(config, argc, argv);
  std::vector<lumen::ObjectRef<int>> refs;
  for (int i = 0; i < 4; ++i) refs.push_back(lumen::Task(Pid).Remote());
  for (const auto& pid : lumen::Get(refs)) std::cout << "worker " << *pid << "\n";
  if (argc > 2 && std::string(argv[2]) == "get") {
    auto never = lumen::Task(Forever).Remote();
    std::cout << "ready" << std::endl;
    lumen::Get(never);  // a signal must end the program here without an exception
    std::cout << "Get returned" << std::endl;
    return 3;
  }
  std::cout << "ready" << std::endl;
  while (true) pause();
}
