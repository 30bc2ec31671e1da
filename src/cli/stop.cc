// `lumen stop`: every lumen daemon on this machine, whatever its --temp-dir.
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "cli/cli.h"
#include "common/process.h"

namespace lumen::cli {
namespace {

constexpr int kGraceMs = 15000;

std::vector<std::string> CommandLine(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/cmdline", std::ios::binary);
  std::vector<std::string> args;
  std::string arg;
  while (std::getline(in, arg, '\0')) args.push_back(arg);
  return args;
}

// A daemon is a `lumen start ... --block` process (what `lumen start` leaves running).
bool IsDaemon(const std::vector<std::string>& args) {
  if (args.size() < 3 || std::filesystem::path(args[0]).filename() != "lumen") return false;
  if (args[1] != "start") return false;
  for (const auto& arg : args) {
    if (arg == "--block") return true;
  }
  return false;
}

std::vector<pid_t> FindDaemons() {
  std::vector<pid_t> found;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/proc", ec)) {
    std::string name = entry.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    pid_t pid = pid_t(std::stol(name));
    if (pid != getpid() && IsDaemon(CommandLine(pid))) found.push_back(pid);
  }
  return found;
}

}  // namespace

int Stop(bool force) {
  std::vector<pid_t> daemons = FindDaemons();
  if (daemons.empty()) {
    std::printf("lumen stop: no lumen daemon runs on this machine\n");
    return 0;
  }
  for (pid_t pid : daemons) kill(pid, force ? SIGKILL : SIGTERM);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(kGraceMs);
  std::vector<pid_t> left = daemons;
  while (!left.empty() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    std::erase_if(left, [](pid_t pid) { return !ProcessAlive(pid); });
  }
  for (pid_t pid : left) kill(pid, SIGKILL);  // did not stop in time
  std::printf("lumen stop: stopped %zu lumen daemon%s%s\n", daemons.size(),
              daemons.size() == 1 ? "" : "s",
              left.empty() ? "" : (" (" + std::to_string(left.size()) + " killed)").c_str());
  return 0;
}

}  // namespace lumen::cli
