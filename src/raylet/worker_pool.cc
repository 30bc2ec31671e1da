#include "raylet/worker_pool.h"

#include <signal.h>
#include <unistd.h>

#include "common/logging.h"
#include "common/process.h"

namespace lumen::raylet {

WorkerPool::WorkerPool(WorkerEnvironment env, LogMonitor* log_monitor)
    : env_(std::move(env)), log_monitor_(log_monitor) {}

WorkerPool::~WorkerPool() { StopAll(); }

JobLaunch JobLaunch::FromProto(const rpc::JobLaunchInfo& info, pid_t driver_pid) {
  JobLaunch launch;
  launch.executable = info.executable();
  launch.argv.assign(info.argv().begin(), info.argv().end());
  launch.driver_pid = driver_pid;
  launch.driver_worker_id = info.driver_worker_id();
  launch.driver_address = info.driver_address();
  launch.digest = info.executable_digest();
  launch.size = info.executable_size();
  return launch;
}

void WorkerPool::AddJob(const std::string& job, JobLaunch launch) {
  jobs_[job] = std::move(launch);
}

JobLaunch* WorkerPool::FindJob(const std::string& job) {
  auto it = jobs_.find(job);
  return it == jobs_.end() ? nullptr : &it->second;
}

std::string WorkerPool::LogPath(pid_t pid) const {
  return env_.logs_dir + "/worker-" + std::to_string(pid) + ".log";
}

std::optional<std::string> VisibleDevices(const std::vector<int>& gpu_ids) {
  if (gpu_ids.empty()) return std::nullopt;
  std::string visible;
  for (int id : gpu_ids) {
    if (!visible.empty()) visible += ',';
    visible += std::to_string(id);
  }
  return visible;
}

absl::Status WorkerPool::StartWorker(const std::string& job,
                                     const std::optional<std::string>& devices) {
  auto it = jobs_.find(job);
  if (it == jobs_.end()) return absl::NotFoundError("no driver registered for this job");
  if (it->second.cached.empty()) {
    return absl::FailedPreconditionError("the job's executable is not on this node yet");
  }
  auto worker = std::make_unique<Worker>();
  worker->id = WorkerId::FromRandom();
  worker->job = job;
  SpawnOptions options;
  options.executable = it->second.cached;
  options.argv = it->second.argv;  // the driver's, argv[0] included: `ps` shows its name
  options.env_set = {
      {"LUMEN_WORKER", "1"},
      {"LUMEN_WORKER_ID", worker->id.Hex()},
      {"LUMEN_JOB_ID", JobId::FromBinary(job).Hex()},
      {"LUMEN_NODE_ID", env_.node_id_hex},
      {"LUMEN_RAYLET_SOCKET", env_.raylet_socket},
      {"LUMEN_NODE_IP", env_.node_ip},
      {"LUMEN_GCS_ADDRESS", env_.gcs_endpoint},
      {"LUMEN_SESSION_DIR", env_.session_dir},
      {"LUMEN_LOG_LEVEL", env_.log_level},
      {"LUMEN_EXECUTABLE_DIGEST", it->second.digest},
      {"LUMEN_EXECUTABLE_SIZE", std::to_string(it->second.size)},
      {"LUMEN_EXECUTABLE_NAME", it->second.executable},
      {"LUMEN_DRIVER_ADDRESS", it->second.driver_address},
  };
  if (devices) options.env_set["CUDA_VISIBLE_DEVICES"] = *devices;
  worker->devices = devices;
  auto spawned = SpawnProcess(options);
  if (!spawned.ok()) return spawned.status();
  worker->pid = spawned->pid;
  worker->lifeline_fd = spawned->lifeline_fd;
  log_monitor_->Add(spawned->stdout_fd, spawned->pid, LogPath(spawned->pid), false, job);
  log_monitor_->Add(spawned->stderr_fd, spawned->pid, LogPath(spawned->pid), true, job);
  LUMEN_LOG_DEBUG("raylet: started worker pid {}", worker->pid);
  workers_[worker->id] = std::move(worker);
  return absl::OkStatus();
}

Worker* WorkerPool::OnRegistered(const WorkerId& id, pid_t pid, const std::string& endpoint,
                                 const std::string& address, const std::string& frame_address) {
  Worker* worker = Find(id);
  if (worker == nullptr || worker->pid != pid || worker->state != Worker::State::kStarting) {
    return nullptr;
  }
  worker->endpoint = endpoint;
  worker->address = address;
  worker->frame_address = frame_address;
  worker->state = Worker::State::kIdle;
  return worker;
}

Worker* WorkerPool::FindIdle(const std::string& job, const std::optional<std::string>& devices) {
  for (auto& [id, w] : workers_) {
    if (w->job == job && w->state == Worker::State::kIdle && w->devices == devices) {
      return w.get();
    }
  }
  return nullptr;
}

Worker* WorkerPool::Find(const WorkerId& id) {
  auto it = workers_.find(id);
  return it == workers_.end() ? nullptr : it->second.get();
}

Worker* WorkerPool::FindByLease(const LeaseId& lease) {
  for (auto& [id, w] : workers_) {
    if (w->state == Worker::State::kLeased && w->lease == lease) return w.get();
  }
  return nullptr;
}

int WorkerPool::CountStarting(const std::string& job,
                              const std::optional<std::string>& devices) const {
  int n = 0;
  for (const auto& [id, w] : workers_) {
    n += w->job == job && w->state == Worker::State::kStarting && w->devices == devices;
  }
  return n;
}

int WorkerPool::CountAlive(const std::string& job) const {
  int n = 0;
  for (const auto& [id, w] : workers_) n += w->job == job;
  return n;
}

std::vector<Worker*> WorkerPool::All() {
  std::vector<Worker*> out;
  for (auto& [id, w] : workers_) out.push_back(w.get());
  return out;
}

void WorkerPool::ReapExited(
    const std::function<void(const Worker&, const std::string&)>& on_exit) {
  for (auto it = workers_.begin(); it != workers_.end();) {
    std::string how;
    if (ReapIfExited(it->second->pid, &how)) {
      on_exit(*it->second, how);
      close(it->second->lifeline_fd);
      it = workers_.erase(it);
    } else {
      ++it;
    }
  }
}

void WorkerPool::Kill(const WorkerId& id, bool force) {
  if (Worker* w = Find(id)) kill(w->pid, force ? SIGKILL : SIGTERM);
}

void WorkerPool::StopAll() {
  for (auto& [id, w] : workers_) kill(w->pid, SIGTERM);
  for (auto& [id, w] : workers_) {
    TerminateAndReap(w->pid, 1000);
    close(w->lifeline_fd);
  }
  workers_.clear();
}

}  // namespace lumen::raylet
