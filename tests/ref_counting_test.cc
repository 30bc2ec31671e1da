// Distributed reference counting as a user sees it: an object lives while any process
// holds a reference to it — handles, pending tasks, other objects, refs nested in task
// arguments and results, actors that keep them — and is freed everywhere (the node store
// included) when the last one goes. Real driver, raylet and worker processes.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include "lumen/lumen.h"
#include "lumen/memory.h"
#include "store_test_util.h"

using namespace lumen::test;  // NOLINT: the shared store-test helpers

namespace {

using Blob = std::vector<uint8_t>;
using BlobRef = lumen::ObjectRef<Blob>;
constexpr uint64_t kBlobSize = kMiB;  // above max_inline_object_size: in the node store

}  // namespace

// --- Remote functions and actors --------------------------------------------------------

// A result that holds refs inside a structure of its own.
struct Box {
  std::string label;
  std::vector<BlobRef> refs;
  LUMEN_SERIALIZE(label, refs);
};

Box Rebox(std::vector<BlobRef> refs) { return Box{"boxed", refs}; }

// The worker owns the blob it puts; the caller gets its ref nested in the result.
std::vector<BlobRef> PutInWorker(uint64_t size, uint64_t seed) {
  return {lumen::Put(MakePattern(size, seed))};
}

std::string DescribeFirst(std::vector<BlobRef> refs, uint64_t seed) {
  return Describe(*lumen::Get(refs.at(0), kGuard), seed);
}

// Hands the refs on to a task of its own, then drops them.
std::string DescribeViaSubtask(std::vector<BlobRef> refs, uint64_t seed) {
  auto result = lumen::Task(DescribeFirst).Remote(refs, seed);
  refs.clear();
  return *lumen::Get(result, kGuard);
}

int Noop() { return 0; }

class Keeper {
 public:
  static Keeper* Create() { return new Keeper(); }
  int Keep(std::vector<BlobRef> refs) {
    kept_ = std::move(refs);
    return int(kept_.size());
  }
  std::string DescribeKept(uint64_t seed) { return Describe(*lumen::Get(kept_.at(0), kGuard), seed); }
  int Drop() {
    kept_.clear();
    return 0;
  }
  int Pid() { return int(getpid()); }

 private:
  std::vector<BlobRef> kept_;
};

LUMEN_REMOTE(Rebox, PutInWorker, DescribeFirst, DescribeViaSubtask, Noop, Keeper::Create,
             &Keeper::Keep, &Keeper::DescribeKept, &Keeper::Drop, &Keeper::Pid);

namespace {

class RefCountingTest : public StoreTest {};

TEST_F(RefCountingTest, RefNestedInAnArgumentAndReturnedInsideAStructOutlivesItsHandle) {
  BlobRef blob = lumen::Put(MakePattern(kBlobSize, 1));
  auto boxed = lumen::Task(Rebox).Remote(std::vector<BlobRef>{blob});
  blob = BlobRef();  // the pending task, then its result, keep it
  auto box = Value(boxed);
  ASSERT_EQ(box->label, "boxed");
  ASSERT_EQ(box->refs.size(), 1u);
  EXPECT_EQ(Describe(*Value(box->refs[0]), 1), Expected(kBlobSize, 1));
  EXPECT_EQ(*Value(lumen::Task(DescribeFirst).Remote(box->refs, uint64_t(1))),
            Expected(kBlobSize, 1));
  box.reset();
  EXPECT_FALSE(StoreEmpty()) << "the result still holds the blob's ref";
  boxed = decltype(boxed)();
  EXPECT_TRUE(StoreBecomesEmpty());
}

TEST_F(RefCountingTest, ObjectOwnedByAWorkerLivesWhileTheDriverBorrowsIt) {
  auto result = lumen::Task(PutInWorker).Remote(kBlobSize, uint64_t(2));
  std::vector<BlobRef> refs = *Value(result);
  result = decltype(result)();
  ASSERT_EQ(refs.size(), 1u);
  // The worker's own handle died with its return value; other tasks run on it meanwhile.
  for (int i = 0; i < 20; ++i) EXPECT_EQ(*Value(lumen::Task(Noop).Remote()), 0);
  EXPECT_EQ(Describe(*Value(refs[0]), 2), Expected(kBlobSize, 2));
  EXPECT_FALSE(StoreEmpty());
  refs.clear();
  EXPECT_TRUE(StoreBecomesEmpty());
}

TEST_F(RefCountingTest, BorrowerHandsTheRefOnToItsOwnTask) {
  BlobRef blob = lumen::Put(MakePattern(kBlobSize, 3));
  auto described = lumen::Task(DescribeViaSubtask).Remote(std::vector<BlobRef>{blob}, uint64_t(3));
  blob = BlobRef();
  EXPECT_EQ(*Value(described), Expected(kBlobSize, 3));
  EXPECT_TRUE(StoreBecomesEmpty());
}

TEST_F(RefCountingTest, ActorKeepsABorrowedRefUntilItDropsIt) {
  auto keeper = lumen::Actor(Keeper::Create).Remote();
  BlobRef blob = lumen::Put(MakePattern(kBlobSize, 4));
  EXPECT_EQ(*Value(keeper.Task(&Keeper::Keep).Remote(std::vector<BlobRef>{blob})), 1);
  blob = BlobRef();
  for (int i = 0; i < 20; ++i) EXPECT_EQ(*Value(lumen::Task(Noop).Remote()), 0);
  EXPECT_EQ(*Value(keeper.Task(&Keeper::DescribeKept).Remote(uint64_t(4))),
            Expected(kBlobSize, 4));
  EXPECT_FALSE(StoreEmpty()) << "the actor still holds the blob's ref";
  EXPECT_EQ(*Value(keeper.Task(&Keeper::Drop).Remote()), 0);
  EXPECT_TRUE(StoreBecomesEmpty());
}

// A borrower that dies without giving its registration back (SIGKILL) holds nothing any
// more: its raylet reports it gone, and the owner forgets it.
TEST_F(RefCountingTest, ABorrowerThatIsKilledNoLongerKeepsTheObject) {
  auto keeper = lumen::Actor(Keeper::Create).Remote();
  BlobRef blob = lumen::Put(MakePattern(kBlobSize, 5));
  EXPECT_EQ(*Value(keeper.Task(&Keeper::Keep).Remote(std::vector<BlobRef>{blob})), 1);
  blob = BlobRef();
  EXPECT_FALSE(StoreEmpty()) << "the actor holds the blob's ref";
  ASSERT_EQ(kill(*Value(keeper.Task(&Keeper::Pid).Remote()), SIGKILL), 0);
  EXPECT_TRUE(StoreBecomesEmpty());
}

TEST_F(RefCountingTest, PutValueHoldsTheRefsInsideIt) {
  BlobRef blob = lumen::Put(MakePattern(kBlobSize, 5));
  auto outer = lumen::Put(std::vector<BlobRef>{blob});
  blob = BlobRef();
  BlobRef inner = Value(outer)->at(0);
  EXPECT_EQ(Describe(*Value(inner), 5), Expected(kBlobSize, 5));
  inner = BlobRef();
  EXPECT_FALSE(StoreEmpty()) << "the outer object still holds the blob's ref";
  outer = decltype(outer)();
  EXPECT_TRUE(StoreBecomesEmpty());
}

TEST_F(RefCountingTest, ManyLargePutsWithDroppedRefsLeaveTheStoreEmpty) {
  constexpr int kPuts = 2000;  // 2 GB through a 256 MiB store: only freeing keeps up
  for (int i = 0; i < kPuts; ++i) {
    BlobRef blob = lumen::Put(Blob(kBlobSize, uint8_t(i)));
    auto outer = lumen::Put(std::vector<BlobRef>{blob});  // nested refs are freed too
  }
  EXPECT_TRUE(StoreBecomesEmpty());
  lumen::MemoryInfo info = lumen::GetMemoryInfo(false);
  EXPECT_EQ(info.total_spilled, 0u) << "objects were spilled instead of freed";
}

TEST_F(RefCountingTest, ManySmallTasksLeaveNothingTrackedInTheDriver) {
  const uint64_t before = lumen::GetMemoryInfo(false).tracked_in_process;
  for (int round = 0; round < 20; ++round) {
    std::vector<lumen::ObjectRef<int>> refs;
    for (int i = 0; i < 1000; ++i) refs.push_back(lumen::Task(Noop).Remote());
    for (const auto& value : lumen::Get(refs, kGuard)) ASSERT_EQ(*value, 0);
  }
  EXPECT_TRUE(WaitUntil([&] { return lumen::GetMemoryInfo(false).tracked_in_process == before; },
                        60))
      << "tracked before: " << before
      << ", after: " << lumen::GetMemoryInfo(false).tracked_in_process;
}

}  // namespace
