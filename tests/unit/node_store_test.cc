#include "object_store/node_store.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <vector>

namespace lumen::object_store {
namespace {

namespace fs = std::filesystem;

constexpr uint64_t kKiB = 1024;
constexpr uint64_t kCapacity = 1024 * kKiB;
constexpr uint64_t kObject = 400 * kKiB;  // two fit in the store, three do not

uint8_t PatternByte(uint64_t seed, uint64_t i) { return uint8_t(seed * 131 + i * 7 + (i >> 8)); }

class NodeStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    static std::atomic<int> counter{0};
    dir_ = fs::temp_directory_path() /
           ("lumen-node-store-test-" + std::to_string(getpid()) + "-" + std::to_string(counter++));
    fs::create_directories(dir_);
    spill_dir_ = dir_ / "spill";
  }
  void TearDown() override {
    if (store_ != nullptr) {
      StoreStats stats = store_->Stats();
      EXPECT_EQ(stats.used, 0u);
      EXPECT_EQ(stats.num_objects, 0u);
      EXPECT_EQ(stats.spilled_bytes, 0u);
      EXPECT_EQ(SpillFiles(), 0);
    }
    store_.reset();
    fs::remove_all(dir_);
  }

  NodeStore& MakeStore(uint64_t capacity = kCapacity) {
    store_ =
        std::make_unique<NodeStore>(std::make_unique<HeapAllocator>(capacity), spill_dir_.string());
    return *store_;
  }

  // Creates an object, writes a pattern chosen by `seed` into it and seals it.
  ObjectId Put(uint64_t size, uint64_t seed, bool primary = true,
               const std::string& owner = "owner") {
    ObjectId id = ObjectId::ForPut(TaskId::FromRandom(), 0);
    auto location = store_->Create(id, size, "writer", owner, primary);
    EXPECT_TRUE(location.ok()) << location.status();
    if (!location.ok()) return id;
    EXPECT_EQ(location->size, size);
    uint8_t* bytes = store_->base() + location->offset;
    for (uint64_t i = 0; i < size; ++i) bytes[i] = PatternByte(seed, i);
    EXPECT_TRUE(store_->Seal(id, "writer").ok());
    return id;
  }

  bool Holds(const ObjectLocation& location, uint64_t size, uint64_t seed) {
    if (location.size != size) return false;
    const uint8_t* bytes = store_->base() + location.offset;
    for (uint64_t i = 0; i < size; ++i) {
      if (bytes[i] != PatternByte(seed, i)) return false;
    }
    return true;
  }

  // Get, compare every byte, Release.
  bool ReadsBack(const ObjectId& id, uint64_t size, uint64_t seed) {
    auto location = store_->Get(id, "reader");
    if (!location.ok()) {
      ADD_FAILURE() << location.status();
      return false;
    }
    bool same = Holds(*location, size, seed);
    store_->Release(id, "reader");
    return same;
  }

  ObjectInfo Info(const ObjectId& id) {
    for (const ObjectInfo& info : store_->List()) {
      if (info.id == id) return info;
    }
    ADD_FAILURE() << "not listed: " << id.Hex();
    return {};
  }

  bool SpillFileExists(const ObjectId& id) { return fs::exists(spill_dir_ / id.Hex()); }

  int SpillFiles() {
    if (!fs::exists(spill_dir_)) return 0;
    return int(std::distance(fs::directory_iterator(spill_dir_), fs::directory_iterator()));
  }

  fs::path dir_;
  fs::path spill_dir_;
  std::unique_ptr<NodeStore> store_;
};

bool Contains(const absl::Status& status, const std::string& text) {
  return std::string(status.message()).find(text) != std::string::npos;
}

TEST_F(NodeStoreTest, CreateWriteSealGetRoundTrip) {
  MakeStore();
  ObjectId id = Put(1000, 1);
  EXPECT_EQ(store_->Stats().used, 1000u);
  auto location = store_->Get(id, "reader");
  ASSERT_TRUE(location.ok()) << location.status();
  EXPECT_TRUE(Holds(*location, 1000, 1));
  ObjectInfo info = Info(id);
  EXPECT_EQ(info.owner, "owner");
  EXPECT_EQ(info.size, 1000u);
  EXPECT_TRUE(info.sealed && info.primary && info.in_memory);
  EXPECT_FALSE(info.spilled);
  EXPECT_EQ(info.readers, 1);
  store_->Release(id, "reader");
  EXPECT_EQ(Info(id).readers, 0);
  store_->Free(id);
  EXPECT_FALSE(store_->Contains(id));
}

TEST_F(NodeStoreTest, CreateTwiceIsAlreadyExists) {
  MakeStore();
  ObjectId id = ObjectId::ForPut(TaskId::FromRandom(), 0);
  ASSERT_TRUE(store_->Create(id, 100, "writer", "owner").ok());
  EXPECT_EQ(store_->Create(id, 100, "other", "owner").status().code(),
            absl::StatusCode::kAlreadyExists);
  ASSERT_TRUE(store_->Seal(id, "writer").ok());
  EXPECT_EQ(store_->Create(id, 100, "writer", "owner").status().code(),
            absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(store_->Stats().used, 100u);
  store_->Free(id);
}

TEST_F(NodeStoreTest, GetBeforeSealIsNotFound) {
  MakeStore();
  ObjectId id = ObjectId::ForPut(TaskId::FromRandom(), 0);
  EXPECT_EQ(store_->Get(id, "reader").status().code(), absl::StatusCode::kNotFound);
  ASSERT_TRUE(store_->Create(id, 100, "writer", "owner").ok());
  auto early = store_->Get(id, "reader");
  EXPECT_EQ(early.status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(Contains(early.status(), "not sealed")) << early.status();
  EXPECT_TRUE(store_->Abort(id, "writer").ok());
}

TEST_F(NodeStoreTest, SealAndAbortCheckTheCreatorAndState) {
  MakeStore();
  ObjectId id = ObjectId::ForPut(TaskId::FromRandom(), 0);
  EXPECT_EQ(store_->Seal(id, "writer").code(), absl::StatusCode::kNotFound);
  ASSERT_TRUE(store_->Create(id, 100, "writer", "owner").ok());
  EXPECT_EQ(store_->Seal(id, "other").code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(store_->Abort(id, "other").code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(store_->Seal(id, "writer").ok());
  EXPECT_EQ(store_->Seal(id, "writer").code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(store_->Abort(id, "writer").code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(store_->Contains(id));
  store_->Free(id);
}

TEST_F(NodeStoreTest, AbortReturnsTheSpace) {
  MakeStore();
  ObjectId id = ObjectId::ForPut(TaskId::FromRandom(), 0);
  ASSERT_TRUE(store_->Create(id, 600 * kKiB, "writer", "owner").ok());
  EXPECT_EQ(store_->Stats().used, 600 * kKiB);
  // An object being written cannot be spilled, so a second one does not fit.
  ObjectId other = ObjectId::ForPut(TaskId::FromRandom(), 0);
  auto full = store_->Create(other, 600 * kKiB, "writer", "owner");
  EXPECT_EQ(full.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE(Contains(full.status(), "being created")) << full.status();
  ASSERT_TRUE(store_->Abort(id, "writer").ok());
  EXPECT_FALSE(store_->Contains(id));
  EXPECT_EQ(store_->Stats().used, 0u);
  ASSERT_TRUE(store_->Create(other, 600 * kKiB, "writer", "owner").ok());
  ASSERT_TRUE(store_->Abort(other, "writer").ok());
}

TEST_F(NodeStoreTest, EmptyObjectsAreTracked) {
  MakeStore();
  ObjectId id = Put(0, 0);
  auto location = store_->Get(id, "reader");
  ASSERT_TRUE(location.ok()) << location.status();
  EXPECT_EQ(location->size, 0u);
  EXPECT_EQ(store_->Stats().num_objects, 1u);
  EXPECT_EQ(store_->Stats().used, 0u);
  store_->Release(id, "reader");
  store_->Free(id);
  EXPECT_FALSE(store_->Contains(id));
}

TEST_F(NodeStoreTest, ReleaseWithoutAPinIsIgnored) {
  MakeStore();
  ObjectId id = Put(100, 1);
  store_->Release(id, "nobody");
  ASSERT_TRUE(store_->Get(id, "reader").ok());
  store_->Release(id, "other");
  EXPECT_EQ(Info(id).readers, 1);
  store_->Release(id, "reader");
  store_->Release(id, "reader");
  EXPECT_EQ(Info(id).readers, 0);
  store_->Free(id);
}

TEST_F(NodeStoreTest, DisconnectClientAbortsItsUnsealedObjectsAndDropsItsPins) {
  MakeStore();
  ObjectId sealed = Put(100, 1);
  ObjectId unsealed = ObjectId::ForPut(TaskId::FromRandom(), 0);
  ASSERT_TRUE(store_->Create(unsealed, 200, "gone", "owner").ok());
  ASSERT_TRUE(store_->Get(sealed, "gone").ok());
  ASSERT_TRUE(store_->Get(sealed, "gone").ok());
  ASSERT_TRUE(store_->Get(sealed, "stays").ok());
  store_->Free(sealed);  // readers hold it
  store_->DisconnectClient("gone");
  EXPECT_FALSE(store_->Contains(unsealed));
  ASSERT_TRUE(store_->Contains(sealed));
  EXPECT_EQ(Info(sealed).readers, 1);
  store_->Release(sealed, "stays");
  EXPECT_FALSE(store_->Contains(sealed));
}

TEST_F(NodeStoreTest, TheWholeCapacityHoldsObjectsAndFreedSpaceIsReused) {
  // Objects larger than the allocator's spare room, so only reuse of freed blocks works.
  const uint64_t capacity = 32 * 1024 * kKiB, size = capacity / 4;
  MakeStore(capacity);
  std::vector<ObjectId> ids;
  for (uint64_t i = 0; i < 4; ++i) ids.push_back(Put(size, i));
  EXPECT_EQ(store_->Stats().used, capacity);
  // Objects of one size come and go: each takes the block the last one left.
  for (uint64_t i = 4; i < 8; ++i) {
    store_->Free(ids[i % 4]);
    ids[i % 4] = Put(size, i);
  }
  EXPECT_EQ(store_->Stats().total_spilled, 0u);
  for (uint64_t i = 0; i < 4; ++i) EXPECT_TRUE(ReadsBack(ids[i], size, 4 + i)) << i;
  for (ObjectId id : ids) store_->Free(id);
}

TEST_F(NodeStoreTest, FullStoreSpillsTheLeastRecentlyUsedPrimary) {
  MakeStore();
  ObjectId a = Put(kObject, 1);
  ObjectId b = Put(kObject, 2);
  EXPECT_TRUE(ReadsBack(a, kObject, 1));  // now b is the least recently used
  ObjectId c = Put(kObject, 3);
  EXPECT_TRUE(SpillFileExists(b));
  EXPECT_FALSE(SpillFileExists(a));
  EXPECT_FALSE(Info(b).in_memory);
  EXPECT_TRUE(Info(b).spilled);
  EXPECT_TRUE(Info(a).in_memory);
  StoreStats stats = store_->Stats();
  EXPECT_EQ(stats.used, 2 * kObject);
  EXPECT_EQ(stats.num_objects, 3u);
  EXPECT_EQ(stats.num_in_memory, 2u);
  EXPECT_EQ(stats.num_spilled, 1u);
  EXPECT_EQ(stats.spilled_bytes, kObject);
  EXPECT_EQ(stats.total_spilled, 1u);

  // Restoring b makes room by spilling a, now the least recently used.
  EXPECT_TRUE(ReadsBack(b, kObject, 2));
  EXPECT_EQ(store_->Stats().total_restored, 1u);
  EXPECT_EQ(store_->Stats().total_spilled, 2u);
  EXPECT_TRUE(SpillFileExists(a));
  EXPECT_TRUE(ReadsBack(a, kObject, 1));
  EXPECT_TRUE(ReadsBack(c, kObject, 3));

  store_->Free(b);
  EXPECT_FALSE(SpillFileExists(b));
  store_->Free(a);
  EXPECT_FALSE(SpillFileExists(a));
  store_->Free(c);
}

TEST_F(NodeStoreTest, RestoredCopyIsEvictedNotRewritten) {
  MakeStore();
  ObjectId a = Put(kObject, 1);
  ObjectId b = Put(kObject, 2);
  ObjectId c = Put(kObject, 3);           // spills a
  EXPECT_TRUE(ReadsBack(a, kObject, 1));  // restores a, spills b
  ASSERT_EQ(store_->Stats().total_spilled, 2u);
  ASSERT_TRUE(Info(a).in_memory && Info(a).spilled);
  ObjectId d = Put(kObject, 4);  // a's copy in memory can go: its file is still there
  StoreStats stats = store_->Stats();
  EXPECT_EQ(stats.total_spilled, 2u);
  EXPECT_EQ(stats.total_evicted, 1u);
  EXPECT_TRUE(Info(c).in_memory);
  EXPECT_FALSE(Info(a).in_memory);
  EXPECT_TRUE(SpillFileExists(a));
  EXPECT_TRUE(ReadsBack(a, kObject, 1));
  EXPECT_EQ(store_->Stats().total_restored, 2u);
  for (ObjectId id : {a, b, c, d}) store_->Free(id);
}

TEST_F(NodeStoreTest, SecondaryCopiesAreEvictedBeforePrimariesAreSpilled) {
  MakeStore();
  ObjectId primary = Put(kObject, 1);
  ObjectId secondary = Put(kObject, 2, /*primary=*/false);  // newer, still goes first
  ObjectId next = Put(kObject, 3);
  EXPECT_FALSE(store_->Contains(secondary));
  EXPECT_TRUE(Info(primary).in_memory);
  EXPECT_EQ(store_->Stats().total_evicted, 1u);
  EXPECT_EQ(store_->Stats().total_spilled, 0u);
  EXPECT_EQ(SpillFiles(), 0);
  store_->Free(primary);
  store_->Free(next);
}

TEST_F(NodeStoreTest, PinnedObjectsAreNeverSpilled) {
  MakeStore();
  ObjectId a = Put(kObject, 1);
  ObjectId b = Put(kObject, 2);
  ASSERT_TRUE(store_->Get(a, "holder").ok());
  EXPECT_TRUE(ReadsBack(b, kObject, 2));  // a is the least recently used, but pinned
  ObjectId c = Put(kObject, 3);
  EXPECT_TRUE(Info(b).spilled);
  ObjectId d = Put(kObject, 4);
  EXPECT_TRUE(Info(c).spilled);
  EXPECT_TRUE(Info(a).in_memory);
  EXPECT_FALSE(Info(a).spilled);
  EXPECT_FALSE(SpillFileExists(a));
  store_->Release(a, "holder");
  for (ObjectId id : {a, b, c, d}) store_->Free(id);
}

TEST_F(NodeStoreTest, EverythingPinnedIsObjectStoreFull) {
  MakeStore();
  ObjectId a = Put(kObject, 1);
  ObjectId b = Put(kObject, 2);
  ASSERT_TRUE(store_->Get(a, "reader").ok());
  ASSERT_TRUE(store_->Get(b, "reader").ok());
  ObjectId c = ObjectId::ForPut(TaskId::FromRandom(), 0);
  auto full = store_->Create(c, kObject, "writer", "owner");
  ASSERT_EQ(full.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE(Contains(full.status(), "object store full")) << full.status();
  EXPECT_TRUE(Contains(full.status(), std::to_string(kObject))) << full.status();
  EXPECT_TRUE(Contains(full.status(), "pinned by readers")) << full.status();
  EXPECT_FALSE(store_->Contains(c));
  EXPECT_EQ(store_->Stats().total_spilled, 0u);
  store_->Release(a, "reader");
  ASSERT_TRUE(store_->Create(c, kObject, "writer", "owner").ok());  // a can go now
  EXPECT_TRUE(Info(a).spilled);
  ASSERT_TRUE(store_->Abort(c, "writer").ok());
  store_->Release(b, "reader");
  store_->Free(a);
  store_->Free(b);
}

TEST_F(NodeStoreTest, ObjectLargerThanTheStoreFailsAtOnce) {
  MakeStore();
  ObjectId a = Put(kObject, 1);
  ObjectId huge = ObjectId::ForPut(TaskId::FromRandom(), 0);
  auto full = store_->Create(huge, 2 * kCapacity, "writer", "owner");
  ASSERT_EQ(full.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE(Contains(full.status(), "object store full")) << full.status();
  EXPECT_TRUE(Contains(full.status(), std::to_string(2 * kCapacity))) << full.status();
  EXPECT_TRUE(Contains(full.status(), std::to_string(kCapacity))) << full.status();
  EXPECT_FALSE(store_->Contains(huge));
  EXPECT_EQ(store_->Stats().total_spilled, 0u);  // nothing was spilled in vain
  ObjectId b = Put(kObject, 2);
  EXPECT_TRUE(ReadsBack(a, kObject, 1));
  EXPECT_TRUE(ReadsBack(b, kObject, 2));
  store_->Free(a);
  store_->Free(b);
}

TEST_F(NodeStoreTest, FreeWhileReadHoldsTheBytesUntilRelease) {
  MakeStore();
  ObjectId a = Put(kObject, 1);
  auto location = store_->Get(a, "reader");
  ASSERT_TRUE(location.ok());
  store_->Free(a);
  EXPECT_TRUE(store_->Contains(a));
  EXPECT_EQ(store_->Get(a, "late").status().code(), absl::StatusCode::kNotFound);
  // Filling the store must not reuse or spill the block the reader still maps.
  ObjectId b = Put(kObject, 2);
  ObjectId c = Put(kObject, 3);
  EXPECT_TRUE(Info(b).spilled);
  EXPECT_TRUE(Holds(*location, kObject, 1));
  EXPECT_FALSE(SpillFileExists(a));
  store_->Release(a, "reader");
  EXPECT_FALSE(store_->Contains(a));
  EXPECT_EQ(store_->Stats().used, kObject);
  store_->Free(b);
  store_->Free(c);
}

TEST_F(NodeStoreTest, FreeOfAnObjectBeingWrittenWaitsForItsCreator) {
  MakeStore();
  ObjectId id = ObjectId::ForPut(TaskId::FromRandom(), 0);
  ASSERT_TRUE(store_->Create(id, 100, "writer", "owner").ok());
  store_->Free(id);
  EXPECT_TRUE(store_->Contains(id));
  EXPECT_EQ(store_->Stats().used, 100u);
  EXPECT_TRUE(store_->Seal(id, "writer").ok());
  EXPECT_FALSE(store_->Contains(id));
}

TEST_F(NodeStoreTest, FreeOwnedByFreesEveryObjectOfTheOwner) {
  MakeStore();
  ObjectId a = Put(kObject, 1, true, "gone");
  ObjectId b = Put(kObject, 2, true, "gone");
  ObjectId c = Put(kObject, 3, true, "stays");  // spills a
  ASSERT_TRUE(SpillFileExists(a));
  store_->FreeOwnedBy("gone");
  EXPECT_FALSE(store_->Contains(a));
  EXPECT_FALSE(store_->Contains(b));
  EXPECT_FALSE(SpillFileExists(a));
  EXPECT_TRUE(ReadsBack(c, kObject, 3));
  store_->Free(c);
}

TEST_F(NodeStoreTest, SpillFailureIsReported) {
  std::ofstream(dir_ / "file") << "not a directory";
  spill_dir_ = dir_ / "file" / "spill";
  MakeStore();
  ObjectId a = Put(kObject, 1);
  ObjectId b = Put(kObject, 2);
  ObjectId c = ObjectId::ForPut(TaskId::FromRandom(), 0);
  auto full = store_->Create(c, kObject, "writer", "owner");
  ASSERT_EQ(full.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE(Contains(full.status(), "spilling failed")) << full.status();
  EXPECT_TRUE(ReadsBack(a, kObject, 1));
  EXPECT_TRUE(ReadsBack(b, kObject, 2));
  store_->Free(a);
  store_->Free(b);
}

TEST_F(NodeStoreTest, MissingSpillFileFailsTheGet) {
  MakeStore();
  ObjectId a = Put(kObject, 1);
  ObjectId b = Put(kObject, 2);
  ObjectId c = Put(kObject, 3);  // spills a
  ASSERT_TRUE(fs::remove(spill_dir_ / a.Hex()));
  EXPECT_EQ(store_->Get(a, "reader").status().code(), absl::StatusCode::kInternal);
  EXPECT_EQ(Info(a).readers, 0);
  for (ObjectId id : {a, b, c}) store_->Free(id);
}

TEST_F(NodeStoreTest, DestructionRemovesSpillFiles) {
  MakeStore();
  Put(kObject, 1);
  Put(kObject, 2);
  Put(kObject, 3);
  ASSERT_EQ(SpillFiles(), 1);
  store_.reset();
  EXPECT_EQ(SpillFiles(), 0);
}

}  // namespace
}  // namespace lumen::object_store
