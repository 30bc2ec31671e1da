// lumen::GetRuntimeContext — who and where the calling code runs.
#pragma once

#include <map>
#include <string>
#include <vector>

namespace lumen {

/// A snapshot of the calling process's place in the cluster. Ids are hex strings; an id
/// that does not apply (TaskId in a driver, ActorId outside an actor) is empty.
class RuntimeContext {
 public:
  std::string JobId() const { return job_id_; }
  std::string NodeId() const { return node_id_; }
  std::string TaskId() const { return task_id_; }
  std::string ActorId() const { return actor_id_; }
  std::string WorkerId() const { return worker_id_; }
  /// Resources the running task holds; empty in a driver.
  std::map<std::string, double> AssignedResources() const { return resources_; }
  /// GPU device ids handed to this task (also in CUDA_VISIBLE_DEVICES).
  std::vector<int> GpuIds() const { return gpu_ids_; }
  /// True in a worker process, false in a driver.
  bool IsWorker() const { return is_worker_; }

  // Filled by the runtime.
  std::string job_id_, node_id_, task_id_, actor_id_, worker_id_;
  std::map<std::string, double> resources_;
  std::vector<int> gpu_ids_;
  bool is_worker_ = false;
};

/// Throws ConfigError before Init.
RuntimeContext GetRuntimeContext();

}  // namespace lumen
