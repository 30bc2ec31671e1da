// Child processes: spawn with redirected output and a lifeline, signal, reap.
#pragma once

#include <sys/types.h>

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace lumen {

struct SpawnOptions {
  std::string executable;
  std::vector<std::string> argv;               // argv[0] included
  std::map<std::string, std::string> env_set;  // added to (or replacing in) our environ
};

/// A started child. `stdout_fd` and `stderr_fd` read its output; `lifeline_fd` is
/// the write end of a pipe whose read end the child holds as LUMEN_LIFELINE_FD: when
/// this process dies, the child sees EOF and exits. Both are close-on-exec here.
struct SpawnedProcess {
  pid_t pid = -1;
  int stdout_fd = -1;
  int stderr_fd = -1;
  int lifeline_fd = -1;
};

/// Starts a child with posix_spawn (safe in a multi-threaded process).
absl::StatusOr<SpawnedProcess> SpawnProcess(const SpawnOptions& options);

/// Non-blocking reap of one child: true when it has exited; `description` says how
/// ("exited with code 1", "killed by signal 9").
bool ReapIfExited(pid_t pid, std::string* description);

/// SIGTERM, wait up to `grace_ms`, then SIGKILL, and reap. Returns the description.
std::string TerminateAndReap(pid_t pid, int grace_ms);

/// True when a process with this pid exists.
bool ProcessAlive(pid_t pid);

/// The running executable (/proc/self/exe) and its command line (/proc/self/cmdline).
std::string SelfExecutable();
std::vector<std::string> SelfCommandLine();

}  // namespace lumen
