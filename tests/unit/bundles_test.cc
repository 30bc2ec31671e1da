// Placement-group bundles as resources: the names a committed bundle adds, the demand of
// work placed in one (which only what the bundle reserved can satisfy), and the check
// that a demand fits its bundle.
#include "common/bundles.h"

#include <gtest/gtest.h>

namespace lumen {
namespace {

TEST(BundlesTest, ACommittedBundleAddsItsOwnResourcesAndMarkers) {
  PlacementGroupId group = PlacementGroupId::FromRandom();
  std::string g = group.Hex();
  ResourceSet added = BundleResources(ResourceSet::FromMap({{"CPU", 2}, {"GPU", 1}}), group, 3);
  EXPECT_EQ(added.Get("CPU_group_3_" + g), 2);
  EXPECT_EQ(added.Get("CPU_group_" + g), 2);
  EXPECT_EQ(added.Get("GPU_group_3_" + g), 1);
  EXPECT_EQ(added.Get("bundle_group_3_" + g), kBundleMarker);
  EXPECT_EQ(added.Get("bundle_group_" + g), kBundleMarker);
  EXPECT_EQ(added.Get("CPU"), 0) << "the node's own CPU is not added to";
}

TEST(BundlesTest, WorkInABundleDemandsOnlyTheBundlesResources) {
  PlacementGroupId group = PlacementGroupId::FromRandom();
  std::string g = group.Hex();
  ResourceSet demand = ResourceSet::FromMap({{"CPU", 1}});
  ResourceSet in_one = BundleDemand(demand, group, 0);
  EXPECT_EQ(in_one.Get("CPU"), 0);
  EXPECT_EQ(in_one.Get("CPU_group_0_" + g), 1);
  EXPECT_EQ(in_one.Get("CPU_group_" + g), 1) << "the group-wide count is charged too";
  EXPECT_EQ(in_one.Get("bundle_group_0_" + g), kBundleMarkerDemand);
  ResourceSet anywhere = BundleDemand(demand, group, -1);
  EXPECT_EQ(anywhere.Get("CPU_group_" + g), 1);
  EXPECT_EQ(anywhere.Get("CPU_group_0_" + g), 0);
  // Only a node holding the bundle has room for it: two bundles of one CPU take two such
  // tasks at once, not three.
  ResourceSet node = ResourceSet::FromMap({{"CPU", 8}});
  EXPECT_FALSE(node.Contains(in_one));
  node.Add(BundleResources(ResourceSet::FromMap({{"CPU", 1}}), group, 0));
  node.Add(BundleResources(ResourceSet::FromMap({{"CPU", 1}}), group, 1));
  ASSERT_TRUE(node.Contains(in_one));
  node.Subtract(in_one);
  EXPECT_FALSE(node.Contains(in_one)) << "bundle 0 is full";
  ASSERT_TRUE(node.Contains(anywhere));
  node.Subtract(anywhere);
  EXPECT_FALSE(node.Contains(anywhere)) << "the group is full";
  // No demand of its own (an actor): only its place in the bundle.
  ResourceSet place = BundleDemand(ResourceSet(), group, 1);
  EXPECT_EQ(place.ToMap().size(), 2u);
}

TEST(BundlesTest, ADemandMustFitItsBundle) {
  std::vector<std::map<std::string, double>> bundles = {{{"CPU", 1}}, {{"CPU", 2}, {"GPU", 1}}};
  EXPECT_TRUE(CheckFitsBundle({{"CPU", 1}}, bundles, 0).ok());
  EXPECT_TRUE(CheckFitsBundle({{"CPU", 2}, {"GPU", 1}}, bundles, 1).ok());
  EXPECT_TRUE(CheckFitsBundle({{"GPU", 1}}, bundles, -1).ok()) << "bundle 1 fits it";
  absl::Status too_big = CheckFitsBundle({{"CPU", 2}}, bundles, 0);
  EXPECT_EQ(too_big.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(too_big.message().find("does not fit in bundle 0"), std::string::npos)
      << too_big.message();
  EXPECT_FALSE(CheckFitsBundle({{"CPU", 3}}, bundles, -1).ok());
  EXPECT_FALSE(CheckFitsBundle({{"CPU", 1}}, bundles, 2).ok()) << "no bundle 2";
  EXPECT_TRUE(IsBundleResource("CPU_group_0_abc"));
  EXPECT_FALSE(IsBundleResource("CPU"));
}

}  // namespace
}  // namespace lumen
