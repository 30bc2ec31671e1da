#include <gtest/gtest.h>

#include "common/resources.h"
#include "raylet/resource_pool.h"

namespace lumen {
namespace {

TEST(ResourceSetTest, FractionsAddUpExactly) {
  ResourceSet set;
  for (int i = 0; i < 10; ++i) set.Add(ResourceSet::FromMap({{"CPU", 0.1}}));
  EXPECT_TRUE(set == ResourceSet::FromMap({{"CPU", 1.0}}));
}

TEST(ResourceSetTest, ContainsComparesEveryName) {
  ResourceSet node = ResourceSet::FromMap({{"CPU", 2}, {"GPU", 1}});
  EXPECT_TRUE(node.Contains(ResourceSet::FromMap({{"CPU", 2}})));
  EXPECT_TRUE(node.Contains(ResourceSet::FromMap({{"CPU", 0.5}, {"GPU", 0.5}})));
  EXPECT_FALSE(node.Contains(ResourceSet::FromMap({{"CPU", 3}})));
  EXPECT_FALSE(node.Contains(ResourceSet::FromMap({{"custom", 1}})));
}

TEST(ResourceSetTest, ValidateDemandRejectsBadAmounts) {
  EXPECT_TRUE(ResourceSet::ValidateDemand("CPU", 0.5).ok());
  EXPECT_TRUE(ResourceSet::ValidateDemand("CPU", 1).ok());
  EXPECT_TRUE(ResourceSet::ValidateDemand("CPU", 4).ok());
  EXPECT_TRUE(ResourceSet::ValidateDemand("CPU", 0).ok());  // no demand at all
  EXPECT_FALSE(ResourceSet::ValidateDemand("CPU", -1).ok());
  EXPECT_FALSE(ResourceSet::ValidateDemand("CPU", 1.5).ok());
  EXPECT_FALSE(ResourceSet::ValidateDemand("", 1).ok());
}

TEST(ResourceSetTest, ToStringListsQuantities) {
  EXPECT_EQ(ResourceSet::FromMap({{"CPU", 2}, {"GPU", 0.5}}).ToString(), "{CPU: 2, GPU: 0.5}");
}

TEST(ResourcePoolTest, AllocatesAndReleasesFractions) {
  raylet::ResourcePool pool(ResourceSet::FromMap({{"CPU", 1}}));
  std::vector<int> gpus;
  ResourceSet half = ResourceSet::FromMap({{"CPU", 0.5}});
  EXPECT_TRUE(pool.TryAllocate(half, &gpus));
  EXPECT_TRUE(pool.TryAllocate(half, &gpus));
  EXPECT_FALSE(pool.TryAllocate(half, &gpus));
  pool.Release(half, {});
  EXPECT_TRUE(pool.TryAllocate(half, &gpus));
}

TEST(ResourcePoolTest, GpusPackBeforeSpreading) {
  raylet::ResourcePool pool(ResourceSet::FromMap({{"CPU", 8}, {"GPU", 2}}));
  std::vector<int> a, b, c;
  ResourceSet half_gpu = ResourceSet::FromMap({{"GPU", 0.5}});
  ASSERT_TRUE(pool.TryAllocate(half_gpu, &a));
  ASSERT_TRUE(pool.TryAllocate(half_gpu, &b));
  EXPECT_EQ(a, b);  // packed onto one device
  ASSERT_TRUE(pool.TryAllocate(ResourceSet::FromMap({{"GPU", 1}}), &c));
  ASSERT_EQ(c.size(), 1u);
  EXPECT_NE(c[0], a[0]);
  std::vector<int> d;
  EXPECT_FALSE(pool.TryAllocate(ResourceSet::FromMap({{"GPU", 1}}), &d));
}

TEST(ResourcePoolTest, MultiGpuDemandTakesWholeDevices) {
  raylet::ResourcePool pool(ResourceSet::FromMap({{"GPU", 2}}));
  std::vector<int> ids;
  ASSERT_TRUE(pool.TryAllocate(ResourceSet::FromMap({{"GPU", 2}}), &ids));
  EXPECT_EQ(ids, (std::vector<int>{0, 1}));
  pool.Release(ResourceSet::FromMap({{"GPU", 2}}), ids);
  EXPECT_TRUE(pool.TryAllocate(ResourceSet::FromMap({{"GPU", 2}}), &ids));
}

TEST(ResourcePoolTest, InfeasibleMeansLargerThanTheNode) {
  raylet::ResourcePool pool(ResourceSet::FromMap({{"CPU", 2}}));
  EXPECT_TRUE(pool.IsInfeasible(ResourceSet::FromMap({{"CPU", 3}})));
  EXPECT_TRUE(pool.IsInfeasible(ResourceSet::FromMap({{"custom", 1}})));
  EXPECT_FALSE(pool.IsInfeasible(ResourceSet::FromMap({{"CPU", 2}})));
}

TEST(ResourcePoolTest, BlockedWorkerLendsItsCpu) {
  raylet::ResourcePool pool(ResourceSet::FromMap({{"CPU", 1}}));
  std::vector<int> gpus;
  ResourceSet one = ResourceSet::FromMap({{"CPU", 1}});
  ASSERT_TRUE(pool.TryAllocate(one, &gpus));
  EXPECT_FALSE(pool.TryAllocate(one, &gpus));
  pool.LendCpu(ResourceSet::FromMap({{"CPU", 1}}));
  EXPECT_TRUE(pool.TryAllocate(one, &gpus));
  pool.ReclaimCpu(ResourceSet::FromMap({{"CPU", 1}}));
  EXPECT_EQ(pool.available().Get("CPU"), -1);
}

}  // namespace
}  // namespace lumen
