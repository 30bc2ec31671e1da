// Init, Shutdown, the worker entry point, and the exit paths (atexit, SIGINT/SIGTERM).
#include "api/runtime.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <thread>

#include "api/executable_upload.h"
#include "common/logging.h"
#include "common/process.h"
#include "common/resources.h"
#include "rpc/fault_injection.h"
#include "lumen/errors.h"
#include "lumen/lumen.h"

namespace lumen {
namespace api {
namespace {

std::mutex g_mutex;                 // guards g_runtime and Init/Shutdown
std::shared_ptr<Runtime> g_runtime;
std::mutex g_shutdown_mutex;        // serializes Shutdown bodies

// SIGINT/SIGTERM: the handler only writes the signal number to a pipe; a watcher thread
// shuts lumen down, then re-raises the signal with its default action.
int g_signal_pipe[2] = {-1, -1};
std::thread* g_signal_thread = nullptr;
std::atomic<bool> g_dying_by_signal{false};

std::atomic<uint64_t> g_session{0};   // CurrentSession()
std::atomic<bool> g_ever_started{false};  // a session ran in this process
uint64_t g_sessions_started = 0;      // under g_shutdown_mutex

void OnSignal(int signo) {
  char c = char(signo);
  (void)!write(g_signal_pipe[1], &c, 1);
}

void InstallExitHooks() {
  static bool installed = false;
  if (installed) return;
  installed = true;
  std::atexit([] { lumen::Shutdown(); });
  if (pipe2(g_signal_pipe, O_CLOEXEC) != 0) return;
  for (int signo : {SIGINT, SIGTERM}) {
    struct sigaction current {};
    sigaction(signo, nullptr, &current);
    if (current.sa_handler != SIG_DFL) continue;  // the program has its own handler
    struct sigaction action {};
    action.sa_handler = OnSignal;
    sigemptyset(&action.sa_mask);
    sigaction(signo, &action, nullptr);
  }
  g_signal_thread = new std::thread([] {
    char c;
    while (read(g_signal_pipe[0], &c, 1) < 0) {
    }
    int signo = c;
    // Threads blocked in lumen (a Get in main) see the runtime go; they park instead of
    // throwing into the program (ParkIfDyingBySignal), and the signal ends the process.
    g_dying_by_signal = true;
    lumen::Shutdown();
    signal(signo, SIG_DFL);
    raise(signo);
  });
  g_signal_thread->detach();
}

std::string Env(const char* name) {
  const char* value = std::getenv(name);
  return value ? value : "";
}

void ApplyLogLevel(const Config& config) {
  if (!SetLogLevel(config.log_level)) {
    throw ConfigError("lumen: unknown log_level '" + config.log_level +
                      "' (trace, debug, info, warn, error, off)");
  }
}

void Validate(Config& config) {
  if (absl::Status faults = rpc::faults::Validate(); !faults.ok()) {
    throw ConfigError("lumen: " + std::string(faults.message()));
  }
  if (!std::isfinite(config.num_cpus) || !std::isfinite(config.num_gpus)) {
    throw ConfigError("lumen: num_cpus and num_gpus must be finite");
  }
  if (config.num_cpus < 0 && config.num_cpus != -1) {
    throw ConfigError("lumen: num_cpus must be -1 (all cores) or at least 0, got " +
                      std::to_string(config.num_cpus));
  }
  if (config.num_gpus < 0 && config.num_gpus != -1) {
    throw ConfigError("lumen: num_gpus must be -1 (detect) or at least 0, got " +
                      std::to_string(config.num_gpus));
  }
  if (config.num_cpus == -1) config.num_cpus = std::thread::hardware_concurrency();
  if (config.num_gpus == -1) config.num_gpus = DetectGpuCount();
  if (std::floor(config.num_cpus) != config.num_cpus) {
    throw ConfigError("lumen: num_cpus must be a whole number, got " +
                      std::to_string(config.num_cpus));
  }
  if (std::floor(config.num_gpus) != config.num_gpus) {
    throw ConfigError("lumen: num_gpus must be a whole number, got " +
                      std::to_string(config.num_gpus));
  }
  for (const auto& [name, amount] : config.resources) {
    if (name == "CPU" || name == "GPU") {
      throw ConfigError("lumen: set CPU and GPU with num_cpus and num_gpus, not resources");
    }
    if (!(amount > 0) || !std::isfinite(amount)) {
      throw ConfigError("lumen: resource '" + name + "' quantity must be greater than 0");
    }
  }
  if (config.object_store_memory == 0 || config.object_store_memory < -1) {
    throw ConfigError("lumen: object_store_memory must be positive (bytes) or -1, got " +
                      std::to_string(config.object_store_memory));
  }
  if (config.max_inline_object_size < 0) {
    throw ConfigError("lumen: max_inline_object_size must be >= 0, got " +
                      std::to_string(config.max_inline_object_size));
  }
  ApplyLogLevel(config);
}

// A driver's part, on an embedded node or a joined one: the job (registered with the
// GCS), the core worker (registered with the node's raylet), the echo of worker output.
void StartDriver(Runtime& runtime, const rpc::NodeInfo& node) {
  const Config& config = runtime.config;
  runtime.gcs = rpc::GcsService::NewStub(rpc::MakeChannel(runtime.gcs_address));
  rpc::RegisterJobRequest job_request;
  job_request.set_driver_pid(getpid());
  job_request.set_namespace_(config.namespace_);
  job_request.set_driver_node_id(node.node_id());
  // Workers on every node run this executable, fetched from the GCS by its digest.
  auto launch = UploadExecutable(*runtime.gcs);
  if (!launch.ok()) throw ConfigError("lumen: cannot register the job's executable: " +
                                      std::string(launch.status().message()));
  // The driver's core worker id, chosen now: the GCS ends the job's placement groups
  // when the process with this id is reported gone.
  WorkerId driver_id = WorkerId::FromRandom();
  launch->set_driver_worker_id(driver_id.Binary());
  *job_request.mutable_launch() = *launch;
  auto job = rpc::CallBlocking<rpc::RegisterJobRequest, rpc::RegisterJobReply>(
      [&](auto* ctx, const auto& req, auto* rep) {
        return runtime.gcs->RegisterJob(ctx, req, rep);
      },
      job_request, 10000);
  if (!job.ok()) throw ConfigError("lumen: cannot register the job with the GCS: " +
                                   std::string(job.status().message()));
  runtime.job_id = job->job_id();

  core::CoreWorkerOptions options;
  options.is_worker = false;
  options.listen_socket =
      "unix:" + node.session_dir() + "/sockets/driver-" + std::to_string(getpid()) + ".sock";
  options.node_ip = node.node_ip();
  options.raylet_endpoint = node.raylet_endpoint();
  options.gcs_endpoint = runtime.gcs_address;
  options.job_id = JobId::FromBinary(runtime.job_id);
  options.worker_id = driver_id;
  options.launch = *launch;
  options.task_events = config.task_events;
  auto core = core::CoreWorker::Create(options);
  if (!core.ok()) throw ConfigError("lumen: cannot start the driver's core worker: " +
                                    std::string(core.status().message()));
  runtime.core = std::move(*core);
  if (config.log_to_driver) {
    runtime.log_echo = std::make_unique<LogEcho>(runtime.gcs_address, runtime.job_id,
                                                 runtime.core->options().node_id.Binary());
  }
}

// Stops what StartDriver started, and tells the GCS the job is done.
void StopDriver(Runtime& runtime) {
  if (runtime.core) runtime.core->Shutdown();
  if (runtime.node) runtime.node->StopRaylet();  // its workers' last lines are published
  if (runtime.log_echo) runtime.log_echo->Stop();
  if (runtime.core) {
    runtime.core->WaitForCallbacks();
    // A joined driver's socket is in the node's session, which outlives it.
    const std::string& socket = runtime.core->options().listen_socket;
    if (!runtime.node && socket.rfind("unix:", 0) == 0) unlink(socket.c_str() + 5);
  }
  if (runtime.gcs && !runtime.job_id.empty()) {
    rpc::FinishJobRequest request;
    request.set_job_id(runtime.job_id);
    if (runtime.core) {
      request.set_driver_address(runtime.core->endpoint());
      request.set_driver_worker_id(runtime.core->options().worker_id.Binary());
      request.set_driver_pid(getpid());
    }
    rpc::CallBlocking<rpc::FinishJobRequest, rpc::FinishJobReply>(
        [&](auto* ctx, const auto& req, auto* rep) {
          return runtime.gcs->FinishJob(ctx, req, rep);
        },
        request, 2000)
        .IgnoreError();
  }
}

std::shared_ptr<Runtime> StartEmbedded(const Config& config) {
  auto runtime = std::make_shared<Runtime>();
  runtime->config = config;
  node::NodeOptions options;
  options.head = true;
  options.resources = config.resources;
  options.resources["CPU"] = config.num_cpus;
  options.resources["GPU"] = config.num_gpus;
  // Prestart one worker per CPU, but no more than the machine can run at once: a
  // logical num_cpus far above the cores should not fork hundreds of idle processes.
  options.num_prestart_workers = int(std::min<double>(
      config.num_cpus, std::max(1u, std::thread::hardware_concurrency())));
  options.object_store_memory = config.object_store_memory;
  options.max_inline_bytes = uint64_t(config.max_inline_object_size);
  options.spill_dir = config.object_spilling_directory;
  options.session_dir = config.session_dir;
  options.log_level = config.log_level;
  auto node = node::Node::Start(options);
  if (!node.ok()) {
    throw ConfigError("lumen: cannot start the embedded cluster: " +
                      std::string(node.status().message()));
  }
  runtime->node = std::move(*node);
  runtime->gcs_address = runtime->node->gcs_address();
  try {
    rpc::NodeInfo node;
    node.set_node_id(runtime->node->node_id().Binary());
    node.set_session_dir(runtime->node->session().dir());
    node.set_raylet_endpoint(runtime->node->raylet_endpoint());
    node.set_node_ip(options.node_ip);
    StartDriver(*runtime, node);
  } catch (...) {
    StopDriver(*runtime);
    runtime->node->Stop();
    throw;
  }
  return runtime;
}

// Joins the cluster at config.address through the node of this machine.
std::shared_ptr<Runtime> StartJoined(const Config& config) {
  const Config defaults;
  if (config.num_cpus != defaults.num_cpus || config.num_gpus != defaults.num_gpus ||
      !config.resources.empty() || config.object_store_memory != defaults.object_store_memory ||
      !config.object_spilling_directory.empty() || !config.session_dir.empty()) {
    throw ConfigError("lumen: joining the cluster at '" + config.address +
                      "': num_cpus, num_gpus, resources, object_store_memory, "
                      "object_spilling_directory and session_dir belong to the embedded node; "
                      "a cluster's nodes take them from `lumen start`");
  }
  JoinTarget target = ResolveJoin(config);
  auto runtime = std::make_shared<Runtime>();
  runtime->config = config;
  runtime->gcs_address = target.gcs_address;
  try {
    StartDriver(*runtime, target.node);
  } catch (...) {
    StopDriver(*runtime);
    throw;
  }
  return runtime;
}

// Takes the worker's LUMEN_* settings out of the environment, so that programs a task
// starts do not think they are lumen workers too.
std::map<std::string, std::string> TakeWorkerEnvironment() {
  std::map<std::string, std::string> taken;
  for (const char* name :
       {"LUMEN_WORKER", "LUMEN_WORKER_ID", "LUMEN_JOB_ID", "LUMEN_NODE_ID",
        "LUMEN_RAYLET_SOCKET", "LUMEN_NODE_IP", "LUMEN_GCS_ADDRESS", "LUMEN_SESSION_DIR",
        "LUMEN_LOG_LEVEL", "LUMEN_LIFELINE_FD", "LUMEN_EXECUTABLE_DIGEST",
        "LUMEN_EXECUTABLE_SIZE", "LUMEN_EXECUTABLE_NAME", "LUMEN_DRIVER_ADDRESS"}) {
    taken[name] = Env(name);
    unsetenv(name);
  }
  return taken;
}

[[noreturn]] void RunWorker(const Config& config) {
  std::map<std::string, std::string> env = TakeWorkerEnvironment();
  // The lifeline: EOF when the raylet's process is gone, whatever killed it.
  int lifeline = std::atoi(env["LUMEN_LIFELINE_FD"].c_str());
  if (lifeline > 0) {
    fcntl(lifeline, F_SETFD, FD_CLOEXEC);
    std::thread([lifeline] {
      char c;
      while (true) {
        ssize_t n = read(lifeline, &c, 1);
        if (n == 0 || (n < 0 && errno != EINTR)) std::_Exit(1);
      }
    }).detach();
  }
  SetLogLevel(env["LUMEN_LOG_LEVEL"].empty() ? "warn" : env["LUMEN_LOG_LEVEL"]);
  auto runtime = std::make_shared<Runtime>();
  runtime->config = config;
  runtime->is_worker = true;
  std::string session_dir = env["LUMEN_SESSION_DIR"];
  std::string socket = session_dir + "/sockets/w" + std::to_string(getpid()) + ".sock";
  core::CoreWorkerOptions options;
  options.is_worker = true;
  options.listen_socket = "unix:" + socket;
  options.raylet_endpoint = env["LUMEN_RAYLET_SOCKET"];
  options.gcs_endpoint = env["LUMEN_GCS_ADDRESS"];
  options.job_id = JobId::FromHex(env["LUMEN_JOB_ID"]);
  options.worker_id = WorkerId::FromHex(env["LUMEN_WORKER_ID"]);
  options.node_id = NodeId::FromHex(env["LUMEN_NODE_ID"]);
  options.task_events = config.task_events;
  if (!env["LUMEN_NODE_IP"].empty()) options.node_ip = env["LUMEN_NODE_IP"];
  // The tasks it submits run the same executable as the driver's (this file is a copy).
  options.launch.set_executable(env["LUMEN_EXECUTABLE_NAME"]);
  for (const auto& arg : SelfCommandLine()) options.launch.add_argv(arg);
  options.launch.set_executable_digest(env["LUMEN_EXECUTABLE_DIGEST"]);
  options.launch.set_executable_size(
      std::strtoull(env["LUMEN_EXECUTABLE_SIZE"].c_str(), nullptr, 10));
  // A raylet that first meets the job through this worker's tasks ends it with its driver.
  options.launch.set_driver_address(env["LUMEN_DRIVER_ADDRESS"]);
  auto core = core::CoreWorker::Create(options);
  if (!core.ok()) {
    // A cluster that shut down while this worker was starting is not an error.
    std::string raylet_socket = options.raylet_endpoint.substr(std::strlen("unix:"));
    if (access(raylet_socket.c_str(), F_OK) == 0) {
      std::fprintf(stderr, "lumen: worker %d cannot start: %s\n", getpid(),
                   core.status().ToString().c_str());
    }
    unlink(socket.c_str());
    std::_Exit(1);
  }
  runtime->core = std::move(*core);
  // Nodes(), placement groups and the like, from tasks and actors too.
  runtime->gcs_address = options.gcs_endpoint;
  runtime->gcs = rpc::GcsService::NewStub(rpc::MakeChannel(runtime->gcs_address));
  runtime->job_id = options.job_id.Binary();
  core::CoreWorker* worker = runtime->core.get();
  {
    std::lock_guard<std::mutex> lock(g_mutex);
    g_runtime = runtime;
  }
  g_session = ++g_sessions_started;
  g_ever_started = true;
  worker->RunTaskLoop();
  // Lets replies already given (an ExitActor call's, an Exit's) reach their callers; a
  // call still running on another thread (a threaded actor) must not keep the process.
  std::thread([] {
    std::this_thread::sleep_for(std::chrono::seconds(2));
    std::_Exit(0);
  }).detach();
  worker->Shutdown();
  std::fflush(nullptr);
  unlink(socket.c_str());
  std::_Exit(0);
}

}  // namespace

std::shared_ptr<Runtime> Current() {
  std::lock_guard<std::mutex> lock(g_mutex);
  return g_runtime;
}

void ParkIfDyingBySignal() {
  if (!g_dying_by_signal.load()) return;
  while (true) pause();  // until the watcher re-raises the signal
}

std::shared_ptr<Runtime> Require(const char* call) {
  auto runtime = Current();
  if (!runtime) {
    bool after_shutdown = g_ever_started.load(std::memory_order_relaxed);
    throw ConfigError(std::string("lumen: ") + call +
                      (after_shutdown ? " called after lumen::Shutdown() (Init again first)"
                                      : " called before lumen::Init()"));
  }
  return runtime;
}

}  // namespace api

void Init() { Init(Config{}); }

void Init(const Config& config) { Init(config, 0, nullptr); }

void Init(const Config& config_in, int argc, char** argv) {
  Config config = config_in;
  if (!api::Env("LUMEN_WORKER").empty()) api::RunWorker(config);
  api::ApplyFlags(config, argc, argv);
  if (config.address.empty()) config.address = api::Env("LUMEN_ADDRESS");
  std::lock_guard<std::mutex> shutdown_lock(api::g_shutdown_mutex);
  {
    std::lock_guard<std::mutex> lock(api::g_mutex);
    if (api::g_runtime) throw ConfigError("lumen: Init called twice without Shutdown");
  }
  std::shared_ptr<api::Runtime> runtime;
  if (config.address.empty()) {
    api::Validate(config);
    runtime = api::StartEmbedded(config);
  } else {
    api::ApplyLogLevel(config);
    runtime = api::StartJoined(config);
  }
  {
    std::lock_guard<std::mutex> lock(api::g_mutex);
    api::g_runtime = runtime;
  }
  api::g_session = ++api::g_sessions_started;
  api::g_ever_started = true;
  api::InstallExitHooks();
}

bool IsInitialized() { return api::Current() != nullptr; }

namespace detail {
uint64_t CurrentSession() noexcept { return api::g_session.load(std::memory_order_relaxed); }
}  // namespace detail

void Shutdown() {
  std::lock_guard<std::mutex> shutdown_lock(api::g_shutdown_mutex);
  std::shared_ptr<api::Runtime> runtime;
  {
    std::lock_guard<std::mutex> lock(api::g_mutex);
    runtime.swap(api::g_runtime);
  }
  if (!runtime || runtime->is_worker) return;
  api::g_session = 0;
  api::StopDriver(*runtime);
  if (runtime->node) runtime->node->Stop(/*keep_session=*/runtime->config.keep_session_dir);
}

}  // namespace lumen
