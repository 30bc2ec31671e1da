// The node's resource accounting: totals, what is available, and GPU device slots.
#pragma once

#include <vector>

#include "common/resources.h"

namespace lumen::raylet {

/// Fractional accounting of one node's resources. GPUs are whole device ids: a demand of
/// at most 1 GPU packs onto one device, a demand of n > 1 takes n free devices. Not
/// thread-safe: owned by the raylet's event loop.
class ResourcePool {
 public:
  explicit ResourcePool(ResourceSet total);

  const ResourceSet& total() const { return total_; }
  const ResourceSet& available() const { return available_; }
  /// The demand can never fit this node, even when idle.
  bool IsInfeasible(const ResourceSet& demand) const { return !total_.Contains(demand); }

  /// Takes `demand` when it fits now; fills the GPU ids it was given.
  bool TryAllocate(const ResourceSet& demand, std::vector<int>* gpu_ids);
  /// Gives back what TryAllocate took.
  void Release(const ResourceSet& demand, const std::vector<int>& gpu_ids);
  /// Temporarily lends (blocked worker) or takes back (unblocked) CPU only (common/
  /// bundles.h CpuPart); available may go negative while a worker runs again on a full
  /// node.
  void LendCpu(const ResourceSet& cpus);
  void ReclaimCpu(const ResourceSet& cpus);
  /// A committed placement-group bundle adds its own resources (total and available);
  /// returning it removes them.
  void AddTotal(const ResourceSet& resources);
  void RemoveTotal(const ResourceSet& resources);

 private:
  bool AssignGpus(int64_t units, std::vector<int>* gpu_ids);

  ResourceSet total_;
  ResourceSet available_;
  std::vector<int64_t> gpu_free_;  // per device, in ResourceSet units
};

}  // namespace lumen::raylet
