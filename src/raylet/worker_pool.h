// The node's worker processes: the job's own executable re-launched in worker mode.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "common/ids.h"
#include "common/resources.h"
#include "common.pb.h"
#include "raylet/log_monitor.h"

namespace lumen::raylet {

/// How to start a job's workers.
struct JobLaunch {
  std::string executable;         // the driver's path to its executable: names it
  std::vector<std::string> argv;
  pid_t driver_pid = 0;           // 0: the driver is not on this node
  std::string driver_worker_id;  // binary WorkerId of the driver's core worker
  std::string driver_address;    // its CoreWorkerService over TCP (owner of its objects)
  std::string digest;            // of the executable's content (SHA-256, hex)
  uint64_t size = 0;
  std::string cached;            // this node's copy, which workers run; empty until fetched

  /// From a driver's description (RegisterDriver, or a lease request that brings it).
  static JobLaunch FromProto(const rpc::JobLaunchInfo& info, pid_t driver_pid);
};

struct WorkerEnvironment {
  std::string raylet_socket;
  std::string node_ip;  // what workers' TCP listeners bind to
  std::string gcs_endpoint;
  std::string node_id_hex;
  std::string session_dir;
  std::string logs_dir;
  std::string log_level;
};

/// A worker process and what the scheduler knows of it.
struct Worker {
  enum class State { kStarting, kIdle, kLeased, kExiting };
  WorkerId id;
  std::string job;  // binary JobId
  pid_t pid = -1;
  int lifeline_fd = -1;
  State state = State::kStarting;
  std::string endpoint;  // set by RegisterWorker: unix:, for this node's processes
  std::string address;   // set by RegisterWorker: TCP, for other nodes; its owner identity
  std::string frame_address;  // set by RegisterWorker: TCP, pushes from other nodes
  int64_t idle_since_ms = 0;
  // CUDA_VISIBLE_DEVICES as set when it was started (never changed in a running process:
  // other threads may read the environment); nullopt: not set, it inherits the node's.
  std::optional<std::string> devices;
  // While leased:
  LeaseId lease;
  WorkerId leased_to;  // the worker that requested the lease (Nil: a driver)
  std::string leased_to_address;  // its owner address ("": the GCS, for an actor)
  ResourceSet held;
  std::vector<int> gpu_ids;
  bool blocked = false;
  bool detached_actor = false;  // hosts a detached actor: outlives the job's driver
};

/// The CUDA_VISIBLE_DEVICES a worker holding `gpu_ids` is started with (nullopt: none).
std::optional<std::string> VisibleDevices(const std::vector<int>& gpu_ids);

/// Owns the worker processes of one node. Loop-only: every method runs on the raylet's
/// event loop.
class WorkerPool {
 public:
  WorkerPool(WorkerEnvironment env, LogMonitor* log_monitor);
  ~WorkerPool();

  void AddJob(const std::string& job, JobLaunch launch);
  bool HasJob(const std::string& job) const { return jobs_.count(job) > 0; }
  /// nullptr when the job is unknown.
  JobLaunch* FindJob(const std::string& job);
  const std::map<std::string, JobLaunch>& jobs() const { return jobs_; }

  /// Starts one worker for `job` from its cached executable, seeing `devices` (see
  /// Worker::devices). Errors: unknown job (NOT_FOUND), executable not cached yet
  /// (FAILED_PRECONDITION), spawn failure.
  absl::Status StartWorker(const std::string& job,
                           const std::optional<std::string>& devices = std::nullopt);
  /// A starting worker announced itself; nullptr when the id is unknown.
  Worker* OnRegistered(const WorkerId& id, pid_t pid, const std::string& endpoint,
                       const std::string& address, const std::string& frame_address);

  /// An idle worker of `job` started with `devices`.
  Worker* FindIdle(const std::string& job, const std::optional<std::string>& devices);
  Worker* Find(const WorkerId& id);
  Worker* FindByLease(const LeaseId& lease);
  int CountStarting(const std::string& job, const std::optional<std::string>& devices) const;
  int CountAlive(const std::string& job) const;
  std::vector<Worker*> All();

  /// Reaps exited workers; calls `on_exit(worker, how)` before forgetting each.
  void ReapExited(const std::function<void(const Worker&, const std::string&)>& on_exit);
  /// Stops one worker (SIGTERM, then SIGKILL) without waiting; it is reaped later.
  void Kill(const WorkerId& id, bool force);
  /// Stops every worker and waits for them.
  void StopAll();
  std::string LogPath(pid_t pid) const;

 private:
  WorkerEnvironment env_;
  LogMonitor* log_monitor_;
  std::map<std::string, JobLaunch> jobs_;
  std::map<WorkerId, std::unique_ptr<Worker>> workers_;
};

}  // namespace lumen::raylet
