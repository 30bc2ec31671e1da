// Large objects between the stores of real daemons' nodes (the object managers): a GiB
// each way byte for byte, an object made on one node read on another without passing
// through the driver's node, and frees that reach every node holding a copy.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "cluster_util.h"
#include "lumen/lumen.h"

namespace {

// The i-th 8-byte word of a seeded stream (splitmix64): the bytes are made and checked
// without keeping a second copy.
uint64_t Word(uint64_t seed, uint64_t i) {
  uint64_t z = seed * 0x9e3779b97f4a7c15ull + i + 1;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

std::vector<uint8_t> Bytes(int64_t n, uint64_t seed) {
  std::vector<uint8_t> out(static_cast<size_t>(n));
  for (size_t i = 0; i + 8 <= out.size(); i += 8) {
    uint64_t w = Word(seed, i / 8);
    std::memcpy(out.data() + i, &w, 8);
  }
  return out;
}

// Order-sensitive (FNV-1a over words); n is a multiple of 8 here.
uint64_t Mix(uint64_t h, uint64_t w) { return (h ^ w) * 0x100000001b3ull; }

uint64_t Digest(const std::vector<uint8_t>& bytes) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (size_t i = 0; i + 8 <= bytes.size(); i += 8) {
    uint64_t w;
    std::memcpy(&w, bytes.data() + i, 8);
    h = Mix(h, w);
  }
  return Mix(h, bytes.size());
}

uint64_t DigestOfBytes(int64_t n, uint64_t seed) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (uint64_t i = 0; i < uint64_t(n) / 8; ++i) h = Mix(h, Word(seed, i));
  return Mix(h, uint64_t(n));
}

using lumen::test::Ramp;
using lumen::test::Total;

// Whether this node's store holds the object (any copy).
bool Holds(std::string hex) {
  for (const auto& object : lumen::GetMemoryInfo(true).objects) {
    if (object.id == hex) return true;
  }
  return false;
}

// The digest of an argument and the node it was read on.
std::pair<uint64_t, std::string> DigestHere(const std::vector<uint8_t>& bytes) {
  return {Digest(bytes), lumen::GetRuntimeContext().NodeId()};
}

// Objects this node's object manager pulled from other nodes since it started.
uint64_t PulledHere() { return lumen::GetMemoryInfo(false).total_pulled; }

}  // namespace

LUMEN_REMOTE(Bytes, Digest, Ramp, Total, Holds, DigestHere, PulledHere);

namespace {

using lumen::test::ThreeNodeTest;
using Seconds = std::chrono::seconds;

TEST_F(ThreeNodeTest, AGibibyteCrossesNodesByteForByteBothWays) {
  constexpr int64_t kGiB = int64_t(1) << 30;
  // Put here, read by a task on node 1 (another mount namespace: only the network).
  uint64_t want;
  lumen::ObjectRef<std::vector<uint8_t>> put;
  {
    std::vector<uint8_t> big = Bytes(kGiB, 7);
    want = Digest(big);
    put = lumen::Put(big);
  }
  auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(*lumen::Get(lumen::Task(Digest).SetSchedulingStrategy(On(1)).Remote(put),
                        Seconds(300)),
            want);
  std::printf("1 GiB put here, read on another node: %.2f s\n", lumen::test::SecondsSince(start));
  put = {};
  // Made there, read here.
  start = std::chrono::steady_clock::now();
  auto made = lumen::Get(
      lumen::Task(Bytes).SetSchedulingStrategy(On(1)).Remote(kGiB, uint64_t(9)), Seconds(300));
  std::printf("1 GiB made on another node, read here: %.2f s\n", lumen::test::SecondsSince(start));
  ASSERT_EQ(made->size(), size_t(kGiB));
  EXPECT_EQ(Digest(*made), DigestOfBytes(kGiB, 9));
}

TEST_F(ThreeNodeTest, AnObjectMadeOnOneNodeGoesStraightToTheNextAndIsFreedEverywhere) {
  constexpr int kCount = 1 << 20;  // 8 MiB: far above the inline limit
  auto series = lumen::Task(Ramp).SetSchedulingStrategy(On(1)).Remote(kCount);
  EXPECT_EQ(*lumen::Get(lumen::Task(Total).SetSchedulingStrategy(On(2)).Remote(series),
                        Seconds(120)),
            Total(Ramp(kCount)));
  std::string id = series.ID();
  auto holds = [&id](const lumen::NodeAffinityStrategy& on) {
    return *lumen::Get(lumen::Task(Holds).SetSchedulingStrategy(on).Remote(id), Seconds(60));
  };
  EXPECT_TRUE(holds(On(1))) << "the primary copy stays where it was made";
  EXPECT_TRUE(holds(On(2))) << "the reader's node pulled a copy";
  EXPECT_FALSE(Holds(id)) << "the driver's node never saw it: it went from node 1 to node 2";
  // The driver lets go: every copy goes.
  series = {};
  EXPECT_TRUE(lumen::test::WaitUntil([&] { return !holds(On(1)) && !holds(On(2)); }, 60))
      << "a copy outlived its object";
}

TEST_F(ThreeNodeTest, ADriverThatExitsHoldingObjectsLeavesNoCopyOnAnyNode) {
  std::optional<lumen::ObjectRef<std::vector<double>>> series =
      lumen::Task(Ramp).SetSchedulingStrategy(On(1)).Remote(1 << 20);
  EXPECT_EQ(*lumen::Get(lumen::Task(Total).SetSchedulingStrategy(On(2)).Remote(*series),
                        Seconds(120)),
            Total(Ramp(1 << 20)));
  std::string id = series->ID();
  lumen::Shutdown();  // still holding it: its job ends with copies on nodes 1 and 2
  series.reset();
  cluster_.Join();  // the next driver looks
  auto holds = [&id](const lumen::NodeAffinityStrategy& on) {
    return *lumen::Get(lumen::Task(Holds).SetSchedulingStrategy(on).Remote(id), Seconds(60));
  };
  EXPECT_TRUE(lumen::test::WaitUntil([&] { return !holds(On(1)) && !holds(On(2)); }, 60))
      << "the copies of an exited owner's object stayed";
}

// Objects pulled so far by each node's object manager.
std::vector<uint64_t> PulledPerNode(const ThreeNodeTest& test) {
  std::vector<uint64_t> out;
  for (size_t i = 0; i < 3; ++i) {
    auto on = lumen::NodeAffinityStrategy{.node_id = test.NodeIdOf(i), .soft = false};
    out.push_back(*lumen::Get(lumen::Task(PulledHere).SetSchedulingStrategy(on).Remote(),
                              Seconds(60)));
  }
  return out;
}

// Data locality: a task (default strategy) whose 200 MiB argument was made on node 2 is
// leased there, and the bytes move nowhere.
TEST_F(ThreeNodeTest, ATaskRunsWhereItsLargeArgumentIs) {
  constexpr int64_t kSize = int64_t(200) << 20;
  auto block = lumen::Task(Bytes).SetSchedulingStrategy(On(2)).Remote(kSize, 11);
  ASSERT_EQ(lumen::Wait(std::vector<lumen::ObjectRef<std::vector<uint8_t>>>{block}, 1,
                        Seconds(120))
                .ready.size(),
            1u);
  std::vector<uint64_t> before = PulledPerNode(*this);
  for (int round = 0; round < 3; ++round) {
    auto [digest, node] = *lumen::Get(lumen::Task(DigestHere).Remote(block), Seconds(120));
    EXPECT_EQ(digest, DigestOfBytes(kSize, 11));
    EXPECT_EQ(node, cluster_.node_ids().at(2)) << "the task ran away from its argument";
  }
  EXPECT_EQ(PulledPerNode(*this), before) << "the argument was copied to another node";
}

TEST_F(ThreeNodeTest, ReadersOnTwoNodesAtOnceAllGetIt) {
  auto series = lumen::Task(Ramp).SetSchedulingStrategy(On(1)).Remote(1 << 19);
  ASSERT_EQ(lumen::Wait(std::vector<lumen::ObjectRef<std::vector<double>>>{series}, 1,
                        Seconds(120))
                .ready.size(),
            1u);
  std::vector<uint64_t> before = PulledPerNode(*this);
  std::vector<lumen::ObjectRef<double>> sums;
  for (int i = 0; i < 6; ++i) {
    sums.push_back(lumen::Task(Total).SetSchedulingStrategy(On(2)).Remote(series));
  }
  for (const auto& sum : lumen::Get(sums, Seconds(120))) EXPECT_EQ(*sum, Total(Ramp(1 << 19)));
  // Six readers on node 2, one copy pulled there.
  std::vector<uint64_t> after = PulledPerNode(*this);
  EXPECT_EQ(after[2], before[2] + 1) << "node 2 pulled the object more than once";
  // The driver waits for it, then reads it through a copy in its own node's store:
  // pulled once, for both.
  ASSERT_EQ(lumen::Wait(std::vector<lumen::ObjectRef<std::vector<double>>>{series}, 1,
                        Seconds(60))
                .ready.size(),
            1u);
  EXPECT_EQ(lumen::Get(series, Seconds(60))->size(), size_t(1) << 19);
  EXPECT_EQ(lumen::Get(series, Seconds(60))->size(), size_t(1) << 19);
  EXPECT_TRUE(Holds(series.ID()));
  EXPECT_EQ(PulledPerNode(*this)[0], after[0] + 1) << "the driver's node pulled it twice";
}

}  // namespace
