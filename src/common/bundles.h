// Placement-group bundles as resources. A committed bundle adds resources of its own to
// its node, named after its group (as Ray names them): for bundle i of group G holding
// {CPU: 2}, "CPU_group_i_G" and "CPU_group_G" (2 each), and the markers "bundle_group_i_G"
// and "bundle_group_G" (kBundleMarker each). A task or actor placed in the bundle demands
// those instead of "CPU": it runs only where the bundle is, and only on what it reserved.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "common/ids.h"
#include "common/resources.h"

namespace lumen {

/// Of each marker: how many tasks and actors one bundle can hold at once.
inline constexpr double kBundleMarker = 1000;
/// What each placed task or actor demands of the marker.
inline constexpr double kBundleMarkerDemand = 0.001;

/// "CPU_group_3_<hex>" (index >= 0) or "CPU_group_<hex>" (index -1).
std::string BundleResourceName(const std::string& resource, const PlacementGroupId& group,
                               int index);
/// What committing bundle `index` of `group` adds to its node (see above).
ResourceSet BundleResources(const ResourceSet& bundle, const PlacementGroupId& group,
                            int index);
/// A demand to run in bundle `index` of `group` (-1: any of its bundles): each resource
/// renamed to the bundle's (a specific bundle's demand takes the group-wide name too, so
/// that both stay within what was reserved), plus the marker.
ResourceSet BundleDemand(const ResourceSet& demand, const PlacementGroupId& group, int index);
/// The CPU in `held`: the node's ("CPU") and bundles' ("CPU_group_..."). What a worker
/// blocked in Get lends back until it runs again.
ResourceSet CpuPart(const ResourceSet& held);
/// True for a resource name that belongs to a bundle ("..._group_...").
bool IsBundleResource(const std::string& name);
/// Checks that `demand` fits in `bundle` (index >= 0), or in one of `bundles` (-1); the
/// error names what does not fit.
absl::Status CheckFitsBundle(const std::map<std::string, double>& demand,
                             const std::vector<std::map<std::string, double>>& bundles,
                             int index);

}  // namespace lumen
