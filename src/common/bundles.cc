#include "common/bundles.h"

namespace lumen {
namespace {
constexpr const char* kMarker = "bundle";
}  // namespace

std::string BundleResourceName(const std::string& resource, const PlacementGroupId& group,
                               int index) {
  std::string name = resource + "_group_";
  if (index >= 0) name += std::to_string(index) + "_";
  return name + group.Hex();
}

ResourceSet BundleResources(const ResourceSet& bundle, const PlacementGroupId& group,
                            int index) {
  std::map<std::string, double> out;
  for (const auto& [name, amount] : bundle.ToMap()) {
    out[BundleResourceName(name, group, index)] = amount;
    out[BundleResourceName(name, group, -1)] = amount;
  }
  out[BundleResourceName(kMarker, group, index)] = kBundleMarker;
  out[BundleResourceName(kMarker, group, -1)] = kBundleMarker;
  return ResourceSet::FromMap(out);
}

ResourceSet BundleDemand(const ResourceSet& demand, const PlacementGroupId& group, int index) {
  std::map<std::string, double> out;
  for (const auto& [name, amount] : demand.ToMap()) {
    out[BundleResourceName(name, group, -1)] = amount;
    if (index >= 0) out[BundleResourceName(name, group, index)] = amount;
  }
  out[BundleResourceName(kMarker, group, index)] = kBundleMarkerDemand;
  if (index >= 0) out[BundleResourceName(kMarker, group, -1)] = kBundleMarkerDemand;
  return ResourceSet::FromMap(out);
}

ResourceSet CpuPart(const ResourceSet& held) {
  std::map<std::string, double> cpu;
  for (const auto& [name, amount] : held.ToMap()) {
    if (name == "CPU" || name.rfind("CPU_group_", 0) == 0) cpu[name] = amount;
  }
  return ResourceSet::FromMap(cpu);
}

bool IsBundleResource(const std::string& name) {
  return name.find("_group_") != std::string::npos;
}

absl::Status CheckFitsBundle(const std::map<std::string, double>& demand,
                             const std::vector<std::map<std::string, double>>& bundles,
                             int index) {
  if (index < -1 || index >= int(bundles.size())) {
    return absl::InvalidArgumentError(
        "bundle index " + std::to_string(index) + " is out of range: the placement group has " +
        std::to_string(bundles.size()) + " bundle(s) (-1: any of them)");
  }
  ResourceSet wanted = ResourceSet::FromMap(demand);
  for (int i = 0; i < int(bundles.size()); ++i) {
    if ((index < 0 || i == index) && ResourceSet::FromMap(bundles[i]).Contains(wanted)) {
      return absl::OkStatus();
    }
  }
  std::string where = index >= 0 ? "bundle " + std::to_string(index) + " " +
                                       ResourceSet::FromMap(bundles[index]).ToString()
                                 : "any bundle of the placement group";
  return absl::InvalidArgumentError("the demand " + wanted.ToString() +
                                    " does not fit in " + where +
                                    "; a task or actor in a bundle uses only what the "
                                    "bundle reserved");
}

}  // namespace lumen
