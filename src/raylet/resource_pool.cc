#include "raylet/resource_pool.h"

#include <cmath>

namespace lumen::raylet {

ResourcePool::ResourcePool(ResourceSet total) : total_(total), available_(total) {
  int gpus = static_cast<int>(std::floor(total.Get("GPU")));
  gpu_free_.assign(gpus, ResourceSet::kUnit);
}

bool ResourcePool::TryAllocate(const ResourceSet& demand, std::vector<int>* gpu_ids) {
  if (!available_.Contains(demand)) return false;
  gpu_ids->clear();
  int64_t gpu_units = std::llround(demand.Get("GPU") * ResourceSet::kUnit);
  if (gpu_units > 0 && !AssignGpus(gpu_units, gpu_ids)) return false;
  available_.Subtract(demand);
  return true;
}

bool ResourcePool::AssignGpus(int64_t units, std::vector<int>* gpu_ids) {
  if (units <= ResourceSet::kUnit) {
    // Pack: the most used device that still fits.
    int best = -1;
    for (int i = 0; i < int(gpu_free_.size()); ++i) {
      if (gpu_free_[i] >= units && (best < 0 || gpu_free_[i] < gpu_free_[best])) best = i;
    }
    if (best < 0) return false;
    gpu_free_[best] -= units;
    gpu_ids->push_back(best);
    return true;
  }
  int64_t whole = units / ResourceSet::kUnit;
  std::vector<int> chosen;
  for (int i = 0; i < int(gpu_free_.size()) && int64_t(chosen.size()) < whole; ++i) {
    if (gpu_free_[i] == ResourceSet::kUnit) chosen.push_back(i);
  }
  if (int64_t(chosen.size()) < whole) return false;
  for (int i : chosen) gpu_free_[i] = 0;
  *gpu_ids = chosen;
  return true;
}

void ResourcePool::Release(const ResourceSet& demand, const std::vector<int>& gpu_ids) {
  available_.Add(demand);
  int64_t units = std::llround(demand.Get("GPU") * ResourceSet::kUnit);
  if (units == 0) return;  // devices of a bundle (GPU_group_...): the bundle holds them
  if (gpu_ids.size() == 1 && units <= ResourceSet::kUnit) {
    gpu_free_[gpu_ids[0]] += units;
  } else {
    for (int i : gpu_ids) gpu_free_[i] = ResourceSet::kUnit;
  }
}

void ResourcePool::AddTotal(const ResourceSet& resources) {
  total_.Add(resources);
  available_.Add(resources);
}

void ResourcePool::RemoveTotal(const ResourceSet& resources) {
  total_.Subtract(resources);
  available_.Subtract(resources);
}

void ResourcePool::LendCpu(const ResourceSet& cpus) { available_.Add(cpus); }

void ResourcePool::ReclaimCpu(const ResourceSet& cpus) { available_.Subtract(cpus); }

}  // namespace lumen::raylet
