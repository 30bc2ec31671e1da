// Resource quantities in fixed point, so that 0.1 + 0.2 CPU add up exactly.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "absl/status/status.h"

namespace lumen {

/// A set of named resource quantities, stored in units of 1/10000.
class ResourceSet {
 public:
  static constexpr int64_t kUnit = 10000;

  ResourceSet() = default;
  /// Quantities are rounded to 1/10000; zero entries are dropped.
  static ResourceSet FromMap(const std::map<std::string, double>& amounts);
  std::map<std::string, double> ToMap() const;

  /// Checks one task/actor demand entry: > 0, and whole when above 1.
  static absl::Status ValidateDemand(const std::string& name, double amount);

  bool IsEmpty() const { return amounts_.empty(); }
  double Get(const std::string& name) const;
  /// True when every quantity of `demand` is available here.
  bool Contains(const ResourceSet& demand) const;
  void Add(const ResourceSet& other);
  /// Subtracts; quantities may go negative (oversubscription while a worker is unblocked).
  void Subtract(const ResourceSet& other);
  /// "{CPU: 2, GPU: 0.5}"
  std::string ToString() const;
  bool operator==(const ResourceSet& other) const { return amounts_ == other.amounts_; }

 private:
  std::map<std::string, int64_t> amounts_;
};

/// The NVIDIA devices this machine shows (/proc/driver/nvidia/gpus), 0 without a driver.
int DetectGpuCount();

}  // namespace lumen
