// `lumen start`: a node as a daemon (or in the foreground with --block).
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "cli/cli.h"
#include "common/ids.h"
#include "common/logging.h"
#include "common/process.h"
#include "common/resources.h"
#include "common/session.h"
#include "gcs.grpc.pb.h"
#include "node/node.h"
#include "rpc/rpc.h"

namespace lumen::cli {
namespace {

namespace fs = std::filesystem;

constexpr int kReadyTimeoutS = 60;

// What the daemon tells `lumen start` through the ready pipe: one line,
// "ok <node id> <gcs address> <session dir>" or "error <message>".
void Report(int fd, const std::string& line) {
  if (fd < 0) return;
  std::string out = line + "\n";
  (void)!write(fd, out.data(), out.size());
  close(fd);
}

std::string Validate(const StartOptions& options, node::NodeOptions* node) {
  if (absl::Status faults = rpc::faults::Validate(); !faults.ok()) {
    return std::string(faults.message());
  }
  std::string error;
  if (!ParseResources(options.resources_json, &node->resources, &error)) return error;
  for (const char* name : {"CPU", "GPU"}) {
    if (node->resources.count(name)) {
      return std::string("--resources: set ") + name + " with --num-" +
             (name[0] == 'C' ? "cpus" : "gpus") + ", not in --resources";
    }
  }
  double cpus = options.num_cpus == -1 ? double(std::max(1u, std::thread::hardware_concurrency()))
                                       : options.num_cpus;
  double gpus = options.num_gpus == -1 ? double(DetectGpuCount()) : options.num_gpus;
  if (!(cpus >= 0) || std::floor(cpus) != cpus) return "--num-cpus takes a whole number >= 0";
  if (!(gpus >= 0) || std::floor(gpus) != gpus) return "--num-gpus takes a whole number >= 0";
  node->resources["CPU"] = cpus;
  node->resources["GPU"] = gpus;
  if (options.object_store_memory == 0 || options.object_store_memory < -1) {
    return "--object-store-memory takes a positive number of bytes";
  }
  if (!options.head) {
    size_t colon = options.address.rfind(':');
    if (colon == std::string::npos || colon == 0 ||
        options.address.find_first_not_of("0123456789", colon + 1) != std::string::npos ||
        colon + 1 == options.address.size()) {
      return "--address takes HOST:PORT of the head node, got '" + options.address + "'";
    }
  }
  if (options.health_check_period_ms <= 0 || options.health_check_failure_threshold < 1) {
    return "--health-check-period-ms must be > 0 and --health-check-failure-threshold >= 1";
  }
  node->health_check_period_ms = options.health_check_period_ms;
  node->health_check_failure_threshold = options.health_check_failure_threshold;
  node->head = options.head;
  if (options.head) {
    node->dashboard_host = options.dashboard_host;
    node->dashboard_port = options.dashboard_port;
    node->max_task_events = size_t(options.max_task_events);
  }
  node->gcs_address = options.address;
  node->node_ip = options.node_ip;
  node->gcs_port = options.port;
  node->object_store_memory = options.object_store_memory;
  // Workers start on demand; prestarting per CPU would fork for every driver that joins.
  node->num_prestart_workers = 0;
  node->log_level = options.log_level;
  node->link_latest = true;
  node->log_to_files = true;
  std::error_code ec;
  fs::create_directories(options.temp_dir, ec);
  if (ec) return "--temp-dir: cannot create '" + options.temp_dir + "': " + ec.message();
  node->session_dir = options.temp_dir;  // the session is made inside it
  return "";
}

// The GCS must answer before a node joins: a wrong address fails here, clearly.
std::string CheckHead(const std::string& address) {
  auto stub = rpc::GcsService::NewStub(rpc::MakeChannel(address));
  auto nodes = rpc::CallBlocking<rpc::GetAllNodesRequest, rpc::GetAllNodesReply>(
      [&](auto* ctx, const auto& req, auto* rep) { return stub->GetAllNodes(ctx, req, rep); },
      rpc::GetAllNodesRequest(), 5000);
  if (nodes.ok()) return "";
  return "no lumen head answers at " + address + " (" + std::string(nodes.status().message()) +
         "); is `lumen start --head` running there, and is the port right?";
}

// Removes `path` if it still names `content` (another head may have replaced it).
void RemoveIfOurs(const std::string& path, const std::string& content) {
  std::ifstream in(path);
  std::string found;
  if (in >> found && found == content) {
    in.close();
    unlink(path.c_str());
  }
}

int RunBlocking(const StartOptions& options) {
  // Every thread made from here on inherits the mask; this one takes the signals.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  signal(SIGPIPE, SIG_IGN);
  if (!SetLogLevel(options.log_level)) {
    Report(options.ready_fd, "error unknown --log-level '" + options.log_level + "'");
    std::fprintf(stderr, "lumen start: unknown --log-level '%s'\n", options.log_level.c_str());
    return 2;
  }
  node::NodeOptions node_options;
  std::string error = Validate(options, &node_options);
  // Declared dead by the GCS: this process stops as on SIGTERM, and exits with 1.
  static std::atomic<bool> declared_dead{false};
  node_options.on_declared_dead = [](const std::string&) {
    declared_dead = true;
    kill(getpid(), SIGTERM);
  };
  if (error.empty() && !options.head) error = CheckHead(options.address);
  if (!error.empty()) {
    Report(options.ready_fd, "error " + error);
    std::fprintf(stderr, "lumen start: %s\n", error.c_str());
    return 1;
  }
  auto node = node::Node::Start(node_options);
  if (!node.ok()) {
    std::string message(node.status().message());
    Report(options.ready_fd, "error " + message);
    std::fprintf(stderr, "lumen start: %s\n", message.c_str());
    return 1;
  }
  const std::string session_dir = (*node)->session().dir();
  if (options.ready_fd >= 0) {
    // A daemon: its own output goes to its logs from now on.
    int out = open((session_dir + "/logs/lumen-start.out").c_str(),
                   O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (out >= 0) {
      dup2(out, 1);
      dup2(out, 2);
      close(out);
    }
  }
  const std::string gcs = (*node)->gcs_address();
  if (options.head) {
    std::error_code ec;
    fs::create_directories(Session::Root(), ec);
    std::string temp = Session::CurrentClusterFile() + "." + std::to_string(getpid());
    std::ofstream(temp) << gcs << "\n";
    fs::rename(temp, Session::CurrentClusterFile(), ec);
    // Where the state API is, for `lumen` commands and scripts on this machine.
    std::ofstream(session_dir + "/dashboard") << (*node)->dashboard_address() << "\n";
  }
  std::printf("lumen: started %s node %s at %s (session %s)\n",
              options.head ? "head" : "worker", (*node)->node_id().Hex().c_str(),
              options.node_ip.c_str(), session_dir.c_str());
  std::printf("lumen: drivers join with lumen::Config::address = \"%s\" (or LUMEN_ADDRESS=%s)\n",
              gcs.c_str(), gcs.c_str());
  std::fflush(stdout);
  Report(options.ready_fd, "ok " + (*node)->node_id().Hex() + " " + gcs + " " + session_dir +
                              " " + (*node)->dashboard_address());

  int signo = 0;
  while (sigwait(&stop_signals, &signo) != 0) {
  }
  if (declared_dead) {
    LUMEN_LOG_ERROR("raylet: stopping: the GCS declared this node dead");
  } else {
    LUMEN_LOG_INFO("raylet: stopping on signal {}", signo);
  }
  (*node)->Stop();
  if (options.head) RemoveIfOurs(Session::CurrentClusterFile(), gcs);
  std::error_code ec;
  fs::path latest = fs::path(session_dir).parent_path() / "session_latest";
  if (fs::read_symlink(latest, ec) == fs::path(session_dir).filename()) fs::remove(latest, ec);
  return declared_dead ? 1 : 0;
}

// Starts `lumen start ... --block` detached (its own session, no terminal) and waits
// for it to report.
int RunDaemon(const StartOptions& options) {
  int ready[2];
  if (pipe2(ready, O_CLOEXEC) != 0) {
    std::perror("lumen start: pipe");
    return 1;
  }
  std::vector<std::string> args = SelfCommandLine();
  args.push_back("--block");
  args.push_back("--ready-fd=" + std::to_string(ready[1]));
  std::string exe = SelfExecutable();
  pid_t pid = fork();
  if (pid < 0) {
    std::perror("lumen start: fork");
    return 1;
  }
  if (pid == 0) {
    setsid();
    fcntl(ready[1], F_SETFD, 0);  // the daemon keeps the write end across exec
    int null = open("/dev/null", O_RDWR);
    dup2(null, 0);
    dup2(null, 1);
    dup2(null, 2);
    std::vector<char*> argv;
    for (auto& arg : args) argv.push_back(arg.data());
    argv.push_back(nullptr);
    execv(exe.c_str(), argv.data());
    _exit(127);
  }
  close(ready[1]);
  std::string line;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(kReadyTimeoutS);
  while (std::chrono::steady_clock::now() < deadline) {
    pollfd p{ready[0], POLLIN, 0};
    if (poll(&p, 1, 200) <= 0) continue;
    char buf[4096];
    ssize_t n = read(ready[0], buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    line.append(buf, size_t(n));
  }
  close(ready[0]);
  if (line.rfind("ok ", 0) == 0) {
    char node_id[64] = {0}, gcs[256] = {0}, session[4096] = {0}, dashboard[256] = {0};
    std::sscanf(line.c_str(), "ok %63s %255s %4095s %255s", node_id, gcs, session, dashboard);
    std::printf("lumen: started %s node %s (pid %d)\n", options.head ? "head" : "worker",
                node_id, pid);
    std::printf("lumen: logs in %s/logs\n", session);
    std::printf("lumen: drivers on this machine join with lumen::Config::address = \"%s\" "
                "(or LUMEN_ADDRESS=%s, or \"auto\")\n", gcs, gcs);
    if (options.head) {
      std::printf("lumen: other nodes join with `lumen start --address=%s`\n", gcs);
      std::printf("lumen: state API at http://%s/api/v0/ (`lumen list tasks`)\n", dashboard);
    }
    return 0;
  }
  // Failed: the daemon said why, or died, or hangs.
  std::string why = line.rfind("error ", 0) == 0 ? line.substr(6) : "";
  while (!why.empty() && why.back() == '\n') why.pop_back();
  int status = 0;
  if (waitpid(pid, &status, WNOHANG) == 0) {
    if (why.empty()) {
      why = "the node did not come up within " + std::to_string(kReadyTimeoutS) + " s";
    }
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
  } else if (why.empty()) {
    why = "the node's process exited before it was up";
  }
  std::fprintf(stderr, "lumen start: %s\n", why.c_str());
  return 1;
}

}  // namespace

bool ParseResources(const std::string& json, std::map<std::string, double>* out,
                    std::string* error) {
  if (json.empty()) return true;
  nlohmann::json parsed = nlohmann::json::parse(json, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded() || !parsed.is_object()) {
    *error = "--resources takes a JSON object of name: amount, e.g. '{\"ssd\": 1}'; got '" +
             json + "'";
    return false;
  }
  for (const auto& [name, value] : parsed.items()) {
    if (!value.is_number() || !(value.get<double>() > 0) ||
        !std::isfinite(value.get<double>())) {
      *error = "--resources: '" + name + "' needs an amount greater than 0";
      return false;
    }
    (*out)[name] = value.get<double>();
  }
  return true;
}

int Start(const StartOptions& options) {
  return options.block ? RunBlocking(options) : RunDaemon(options);
}

}  // namespace lumen::cli
