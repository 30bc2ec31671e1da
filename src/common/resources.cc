#include "common/resources.h"

#include <cmath>
#include <filesystem>
#include <sstream>

namespace lumen {

ResourceSet ResourceSet::FromMap(const std::map<std::string, double>& amounts) {
  ResourceSet set;
  for (const auto& [name, amount] : amounts) {
    int64_t units = std::llround(amount * kUnit);
    if (units != 0) set.amounts_[name] = units;
  }
  return set;
}

std::map<std::string, double> ResourceSet::ToMap() const {
  std::map<std::string, double> out;
  for (const auto& [name, units] : amounts_) out[name] = double(units) / kUnit;
  return out;
}

absl::Status ResourceSet::ValidateDemand(const std::string& name, double amount) {
  if (name.empty()) return absl::InvalidArgumentError("resource name is empty");
  if (!std::isfinite(amount) || amount < 0) {
    return absl::InvalidArgumentError("resource '" + name + "' amount " +
                                      std::to_string(amount) + " must be 0 or more");
  }
  if (amount == 0) return absl::OkStatus();  // no demand (an I/O-bound task: num_cpus=0)
  if (amount > 1 && std::floor(amount) != amount) {
    return absl::InvalidArgumentError("resource '" + name + "' amount " +
                                      std::to_string(amount) +
                                      " must be a whole number when greater than 1");
  }
  if (amount < 1.0 / kUnit) {
    return absl::InvalidArgumentError("resource '" + name + "' amount " +
                                      std::to_string(amount) + " is below 0.0001");
  }
  return absl::OkStatus();
}

double ResourceSet::Get(const std::string& name) const {
  auto it = amounts_.find(name);
  return it == amounts_.end() ? 0.0 : double(it->second) / kUnit;
}

bool ResourceSet::Contains(const ResourceSet& demand) const {
  for (const auto& [name, units] : demand.amounts_) {
    auto it = amounts_.find(name);
    if (it == amounts_.end() || it->second < units) return false;
  }
  return true;
}

void ResourceSet::Add(const ResourceSet& other) {
  for (const auto& [name, units] : other.amounts_) {
    int64_t& mine = amounts_[name];
    mine += units;
    if (mine == 0) amounts_.erase(name);
  }
}

void ResourceSet::Subtract(const ResourceSet& other) {
  for (const auto& [name, units] : other.amounts_) {
    int64_t& mine = amounts_[name];
    mine -= units;
    if (mine == 0) amounts_.erase(name);
  }
}

std::string ResourceSet::ToString() const {
  std::ostringstream out;
  out << "{";
  bool first = true;
  for (const auto& [name, units] : amounts_) {
    if (!first) out << ", ";
    first = false;
    out << name << ": " << double(units) / kUnit;
  }
  out << "}";
  return out.str();
}

int DetectGpuCount() {
  std::error_code ec;
  int count = 0;
  for (const auto& entry :
       std::filesystem::directory_iterator("/proc/driver/nvidia/gpus", ec)) {
    (void)entry;
    ++count;
  }
  return count;
}

}  // namespace lumen
