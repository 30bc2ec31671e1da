// The node's shared-memory object store as a user sees it: large values (Put, task
// arguments, task results) go through it, it spills when full and restores on Get, it
// frees what nobody references, and it reports what it holds (GetMemoryInfo,
// MemorySummary). Real driver, raylet and worker processes.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "lumen/lumen.h"
#include "lumen/memory.h"
#include "store_test_util.h"

using namespace lumen::test;  // NOLINT: the shared store-test helpers

// --- Remote functions -------------------------------------------------------------------

std::vector<uint8_t> MakeBlob(uint64_t size, uint64_t seed) { return MakePattern(size, seed); }
std::string DescribeBlob(std::vector<uint8_t> blob, uint64_t seed) { return Describe(blob, seed); }
uint64_t BlobSize(std::vector<uint8_t> blob) { return blob.size(); }
int Plus(int a, int b) { return a + b; }
// Writes this worker's pid to `pid_path`, then puts `size` bytes into the store from
// inside the task (the store client sleeps between create and seal when
// LUMEN_TESTING_STORE_WRITE_DELAY_MS is set).
int PutFromWorker(std::string pid_path, uint64_t size) {
  {
    std::ofstream out(pid_path + ".tmp");
    out << getpid() << "\n";
  }
  std::rename((pid_path + ".tmp").c_str(), pid_path.c_str());
  lumen::ObjectRef<std::vector<uint8_t>> ref = lumen::Put(MakePattern(size, 7));
  return int(lumen::Get(ref)->size());
}
// Receives `blob` (resolved from a ref: read in the store), writes this worker's pid to
// `pid_path` and sleeps `hold_ms` while the argument is held.
int HoldWhileSleeping(std::vector<uint8_t> blob, std::string pid_path, int hold_ms) {
  {
    std::ofstream out(pid_path + ".tmp");
    out << getpid() << "\n";
  }
  std::rename((pid_path + ".tmp").c_str(), pid_path.c_str());
  std::this_thread::sleep_for(std::chrono::milliseconds(hold_ms));
  return int(blob.size());
}
LUMEN_REMOTE(MakeBlob, DescribeBlob, BlobSize, Plus, PutFromWorker, HoldWhileSleeping);

namespace {

namespace fs = std::filesystem;


const lumen::StoredObjectInfo* FindObject(const lumen::MemoryInfo& info, const std::string& id) {
  for (const auto& object : info.objects) {
    if (object.id == id) return &object;
  }
  return nullptr;
}

// Waits (bounded) until no Get result pins any object.
bool NoReaders(double seconds = 30) {
  return lumen::test::WaitUntil(
      [] {
        for (const auto& object : lumen::GetMemoryInfo().objects) {
          if (object.readers > 0) return false;
        }
        return true;
      },
      seconds);
}

// Regular files in `dir` (0 when it does not exist).
// The pid a task wrote to `path` once it started; 0 when none came within a minute.
int WaitForPidFile(const std::string& path) {
  int pid = 0;
  lumen::test::WaitUntil(
      [&] {
        std::ifstream in(path);
        return static_cast<bool>(in >> pid) && pid > 0;
      },
      60);
  return pid;
}

int FilesIn(const std::string& dir) {
  std::error_code error;
  int files = 0;
  for (const auto& entry : fs::directory_iterator(dir, error)) {
    if (entry.is_regular_file(error)) ++files;
  }
  return files;
}


// --- 1. Put/Get around max_inline_object_size ------------------------------------------

TEST_F(StoreTest, PutGetSmallStaysInlineLargeGoesToTheStore) {
  lumen::MemoryInfo before = lumen::GetMemoryInfo();
  EXPECT_EQ(before.capacity, 256 * kMiB);
  EXPECT_EQ(before.used, 0u);
  EXPECT_EQ(before.num_objects, 0u);

  // Well below the 100 KiB default, and just below it (the msgpack header is 5 bytes).
  auto small = lumen::Put(MakePattern(50 * kKiB, 1));
  auto just_below = lumen::Put(MakePattern(100 * kKiB - 16, 2));
  lumen::MemoryInfo inline_only = lumen::GetMemoryInfo();
  EXPECT_EQ(inline_only.num_objects, 0u) << lumen::MemorySummary();
  EXPECT_EQ(inline_only.used, 0u);
  EXPECT_EQ(FindObject(inline_only, small.ID()), nullptr);
  EXPECT_EQ(Describe(*Value(small), 1), Expected(50 * kKiB, 1));
  EXPECT_EQ(Describe(*Value(just_below), 2), Expected(100 * kKiB - 16, 2));

  // Just above it, and well above it.
  auto just_above = lumen::Put(MakePattern(100 * kKiB + 1, 3));
  {
    lumen::MemoryInfo info = lumen::GetMemoryInfo();
    EXPECT_EQ(info.num_objects, 1u) << lumen::MemorySummary();
    const lumen::StoredObjectInfo* object = FindObject(info, just_above.ID());
    ASSERT_NE(object, nullptr) << lumen::MemorySummary();
    EXPECT_GE(object->size, 100 * kKiB + 1);
  }
  EXPECT_EQ(Describe(*Value(just_above), 3), Expected(100 * kKiB + 1, 3));
  just_above = lumen::ObjectRef<std::vector<uint8_t>>();
  EXPECT_TRUE(StoreBecomesEmpty());

  auto large = lumen::Put(MakePattern(10 * kMiB, 4));
  {
    lumen::MemoryInfo info = lumen::GetMemoryInfo();
    EXPECT_EQ(info.num_objects, 1u) << lumen::MemorySummary();
    EXPECT_GE(info.used, 10 * kMiB);
    EXPECT_EQ(info.num_spilled, 0u);
    const lumen::StoredObjectInfo* object = FindObject(info, large.ID());
    ASSERT_NE(object, nullptr) << "the 10 MiB object " << large.ID() << " is not listed:\n"
                               << lumen::MemorySummary();
    EXPECT_GE(object->size, 10 * kMiB);
    EXPECT_TRUE(object->sealed);
    EXPECT_TRUE(object->in_memory);
    EXPECT_FALSE(object->spilled);
    EXPECT_FALSE(object->owner.empty());
    EXPECT_EQ(FindObject(info, small.ID()), nullptr);
  }
  EXPECT_EQ(Describe(*Value(large), 4), Expected(10 * kMiB, 4));
  EXPECT_EQ(Describe(*large.Get(), 4), Expected(10 * kMiB, 4));  // a second read

  // A copy of the ref keeps it; dropping the last one frees it.
  auto copy = large;
  large = lumen::ObjectRef<std::vector<uint8_t>>();
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_EQ(lumen::GetMemoryInfo(false).num_objects, 1u) << "freed while a copy of the ref lives";
  EXPECT_EQ(Describe(*Value(copy), 4), Expected(10 * kMiB, 4));
  copy = lumen::ObjectRef<std::vector<uint8_t>>();
  EXPECT_TRUE(StoreBecomesEmpty());
}

// --- 2. Large task arguments and results -------------------------------------------------

TEST_F(StoreTest, LargeArgumentsAndResultsOfTasks) {
  const uint64_t size = 20 * kMiB;
  {
    // A 20 MiB argument passed by value.
    std::vector<uint8_t> blob = MakePattern(size, 11);
    EXPECT_EQ(*Value(lumen::Task(DescribeBlob).Remote(blob, uint64_t(11))), Expected(size, 11));
    // The same vector again, to a task that only measures it.
    EXPECT_EQ(*Value(lumen::Task(BlobSize).Remote(blob)), size);
  }
  EXPECT_TRUE(StoreBecomesEmpty()) << "a large argument outlived its task";

  {
    // A 20 MiB result, built in the worker from a seed.
    auto result = lumen::Task(MakeBlob).Remote(size, uint64_t(12));
    EXPECT_EQ(Describe(*Value(result), 12), Expected(size, 12));
    lumen::MemoryInfo info = lumen::GetMemoryInfo();
    const lumen::StoredObjectInfo* object = FindObject(info, result.ID());
    ASSERT_NE(object, nullptr) << "the 20 MiB result is not in the store:\n"
                               << lumen::MemorySummary();
    EXPECT_GE(object->size, size);
    EXPECT_TRUE(object->sealed);

    // The result's ref passed on to another task, which receives the value.
    EXPECT_EQ(*Value(lumen::Task(DescribeBlob).Remote(result, uint64_t(12))), Expected(size, 12));
    // A ref from Put passed to a task.
    auto put = lumen::Put(MakePattern(size, 13));
    EXPECT_EQ(*Value(lumen::Task(DescribeBlob).Remote(put, uint64_t(13))), Expected(size, 13));
    EXPECT_EQ(*Value(lumen::Task(BlobSize).Remote(put)), size);
    // The result still reads the same after being used as an argument.
    EXPECT_EQ(Describe(*Value(result), 12), Expected(size, 12));
    EXPECT_GE(lumen::GetMemoryInfo(false).num_objects, 2u) << lumen::MemorySummary();
  }
  EXPECT_TRUE(StoreBecomesEmpty());

  // Many large results at once, read in any order.
  {
    std::vector<lumen::ObjectRef<std::vector<uint8_t>>> refs;
    for (uint64_t seed = 20; seed < 24; ++seed) {
      refs.push_back(lumen::Task(MakeBlob).Remote(2 * kMiB + seed, seed));
    }
    auto values = lumen::Get(refs, kGuard);
    ASSERT_EQ(values.size(), refs.size());
    for (uint64_t k = 0; k < values.size(); ++k) {
      EXPECT_EQ(Describe(*values[k], 20 + k), Expected(2 * kMiB + 20 + k, 20 + k));
    }
  }
  EXPECT_TRUE(StoreBecomesEmpty());
}

// A large Put inside a task: owned by the worker, readable there, and freed once the
// task's ref to it is gone.
TEST_F(StoreTest, LargePutInsideATask) {
  const std::string pid_path = lumen::test::TempPath("put_in_task_pid");
  EXPECT_EQ(*Value(lumen::Task(PutFromWorker).Remote(pid_path, uint64_t(20 * kMiB))),
            int(20 * kMiB));
  EXPECT_TRUE(StoreBecomesEmpty()) << "the task's own object outlived its ref";
  std::remove(pid_path.c_str());
}

// --- 3. One GiB -------------------------------------------------------------------------

class HugeStoreTest : public StoreTest {
 protected:
  int64_t store_bytes() const override { return int64_t(2 * kGiB); }
};

TEST_F(HugeStoreTest, OneGibPutGetAndTaskArgument) {
  const uint64_t size = kGiB;
  lumen::ObjectRef<std::vector<uint8_t>> ref;
  {
    std::vector<uint8_t> blob = MakePattern(size, 31);
    ref = lumen::Put(blob);
  }  // the driver's copy is gone; only the store has it now
  {
    lumen::MemoryInfo info = lumen::GetMemoryInfo();
    EXPECT_EQ(info.num_objects, 1u) << lumen::MemorySummary();
    EXPECT_GE(info.used, size);
    EXPECT_EQ(info.num_spilled, 0u);
  }
  {
    auto value = Value(ref);
    ASSERT_EQ(value->size(), size);
    // A sample: the first and last MiB, and a byte every 4093 in between.
    std::string mismatch;
    for (uint64_t i = 0; i < size && mismatch.empty();
         i += (i < kMiB || i >= size - kMiB) ? 1 : 4093) {
      if ((*value)[i] != PatternByte(31, i)) mismatch = "byte " + std::to_string(i) + " differs";
    }
    EXPECT_EQ(mismatch, "");
  }
  // The worker reads the whole GiB, from the ref.
  EXPECT_EQ(*Value(lumen::Task(BlobSize).Remote(ref)), size);
  EXPECT_EQ(*Value(lumen::Task(DescribeBlob).Remote(ref, uint64_t(31))), Expected(size, 31));
  ref = lumen::ObjectRef<std::vector<uint8_t>>();
  EXPECT_TRUE(StoreBecomesEmpty(120));
}

// --- 4. Full store: spill, restore, free ------------------------------------------------

class SpillTest : public StoreTest {
 protected:
  int64_t store_bytes() const override { return int64_t(64 * kMiB); }
  lumen::Config MakeConfig() override {
    lumen::Config config = StoreTest::MakeConfig();
    spill_dir_ = lumen::test::TempPath("spill");
    std::error_code ignored;
    fs::remove_all(spill_dir_, ignored);
    config.object_spilling_directory = spill_dir_;
    return config;
  }
  void TearDown() override {
    StoreTest::TearDown();
    std::error_code ignored;
    fs::remove_all(spill_dir_, ignored);
  }
  std::string spill_dir_;
};

TEST_F(SpillTest, SpillsWhenFullRestoresOnGetAndDeletesSpillFiles) {
  const uint64_t size = 16 * kMiB;
  constexpr int kObjects = 8;  // 128 MiB into a 64 MiB store
  std::vector<lumen::ObjectRef<std::vector<uint8_t>>> refs;
  for (int k = 0; k < kObjects; ++k) {
    ASSERT_NO_THROW(refs.push_back(lumen::Put(MakePattern(size, 100 + k)))) << "Put " << k;
  }
  lumen::MemoryInfo info = lumen::GetMemoryInfo();
  EXPECT_EQ(info.spill_dir, spill_dir_);
  EXPECT_EQ(info.num_objects, uint64_t(kObjects)) << lumen::MemorySummary();
  EXPECT_LE(info.used, info.capacity);
  EXPECT_GT(info.num_spilled, 0u) << lumen::MemorySummary();
  EXPECT_GE(info.num_spilled, uint64_t(kObjects - 3)) << "at most 3 fit in memory";
  EXPECT_GE(info.spilled_bytes, info.num_spilled * size);
  EXPECT_GE(info.total_spilled, info.num_spilled);
  EXPECT_EQ(FilesIn(spill_dir_), int(info.num_spilled)) << "spill files in " << spill_dir_;
  int listed_spilled = 0;
  for (const auto& ref : refs) {
    const lumen::StoredObjectInfo* object = FindObject(info, ref.ID());
    ASSERT_NE(object, nullptr) << ref.ID() << " is not listed:\n" << lumen::MemorySummary();
    EXPECT_TRUE(object->in_memory || object->spilled) << ref.ID();
    if (object->spilled) {
      ++listed_spilled;
      EXPECT_TRUE(fs::exists(fs::path(spill_dir_) / ref.ID())) << "no spill file for " << ref.ID();
    }
  }
  EXPECT_EQ(listed_spilled, int(info.num_spilled));

  // Every object reads back byte for byte, the spilled ones restored (twice over, so
  // that restored copies are evicted and restored again).
  for (int round = 0; round < 2; ++round) {
    for (int k = 0; k < kObjects; ++k) {
      auto value = Value(refs[k]);
      EXPECT_EQ(Describe(*value, 100 + k), Expected(size, 100 + k)) << "object " << k;
    }
  }
  lumen::MemoryInfo after = lumen::GetMemoryInfo(false);
  EXPECT_GT(after.total_restored, 0u);
  EXPECT_LE(after.used, after.capacity);

  // A task reads a spilled object too.
  EXPECT_EQ(*Value(lumen::Task(DescribeBlob).Remote(refs[0], uint64_t(100))), Expected(size, 100));

  refs.clear();
  EXPECT_TRUE(StoreBecomesEmpty());
  lumen::MemoryInfo empty = lumen::GetMemoryInfo();
  EXPECT_EQ(empty.num_spilled, 0u);
  EXPECT_EQ(empty.spilled_bytes, 0u);
  EXPECT_TRUE(empty.objects.empty());
  EXPECT_EQ(FilesIn(spill_dir_), 0) << "spill files left in " << spill_dir_;
}

// --- 5. An object larger than the whole store -------------------------------------------

class TinyStoreTest : public StoreTest {
 protected:
  int64_t store_bytes() const override { return int64_t(32 * kMiB); }
};

TEST_F(TinyStoreTest, PutLargerThanTheStoreThrowsAndTheDriverGoesOn) {
  std::string message;
  try {
    lumen::Put(MakePattern(64 * kMiB, 41));
    ADD_FAILURE() << "a 64 MiB Put into a 32 MiB store did not throw";
  } catch (const lumen::ObjectStoreFullError& error) {
    message = error.what();
  }
  EXPECT_NE(message.find("object store full"), std::string::npos) << message;
  EXPECT_NE(message.find("64 MiB"), std::string::npos) << message;
  EXPECT_NE(message.find("32 MiB"), std::string::npos) << message;
  EXPECT_TRUE(StoreEmpty()) << "the failed Put left something:\n" << lumen::MemorySummary();

  // The driver and the cluster work on.
  auto small = lumen::Put(std::string("still here"));
  EXPECT_EQ(*Value(small), "still here");
  auto large = lumen::Put(MakePattern(8 * kMiB, 42));
  EXPECT_EQ(Describe(*Value(large), 42), Expected(8 * kMiB, 42));
  EXPECT_EQ(*Value(lumen::Task(Plus).Remote(1, 2)), 3);
  EXPECT_EQ(*Value(lumen::Task(DescribeBlob).Remote(large, uint64_t(42))), Expected(8 * kMiB, 42));
  large = lumen::ObjectRef<std::vector<uint8_t>>();
  EXPECT_TRUE(StoreBecomesEmpty());
}

// The documented other half: a task result with no room fails its Get.
TEST_F(TinyStoreTest, TaskResultLargerThanTheStoreFailsItsGet) {
  auto result = lumen::Task(MakeBlob).SetMaxRetries(0).Remote(64 * kMiB, uint64_t(43));
  std::string message;
  try {
    lumen::Get(result, kGuard);
    ADD_FAILURE() << "Get of a 64 MiB result in a 32 MiB store did not throw";
  } catch (const lumen::ObjectStoreFullError& error) {
    message = error.what();
  }
  EXPECT_NE(message.find("object store full"), std::string::npos) << message;
  EXPECT_EQ(*Value(lumen::Task(Plus).Remote(2, 3)), 5);
  result = lumen::ObjectRef<std::vector<uint8_t>>();
  EXPECT_TRUE(StoreBecomesEmpty());
}

// A task argument passed by value that cannot fit in the store at all.
TEST_F(TinyStoreTest, ArgumentLargerThanTheStore) {
  std::vector<uint8_t> blob = MakePattern(64 * kMiB, 44);
  std::string message;
  try {
    auto ref = lumen::Task(BlobSize).SetMaxRetries(0).Remote(blob);
    lumen::Get(ref, kGuard);
    ADD_FAILURE() << "a 64 MiB argument in a 32 MiB store did not fail";
  } catch (const lumen::ObjectStoreFullError& error) {
    message = error.what();
  }
  EXPECT_NE(message.find("object store full"), std::string::npos) << message;
  EXPECT_EQ(*Value(lumen::Task(Plus).Remote(2, 3)), 5);
  EXPECT_TRUE(StoreBecomesEmpty());
}

// Reading large objects one after another, each result dropped before the next Get, in
// a store that holds only one of them: the restore must not fail because the previous
// result's pin is released asynchronously.
TEST_F(TinyStoreTest, ReadingOneAtATimeRightAfterDroppingThePreviousResult) {
  const uint64_t size = 20 * kMiB;
  auto x = lumen::Put(MakePattern(size, 45));
  auto y = lumen::Put(MakePattern(size, 46));  // spills x
  for (int round = 0; round < 30; ++round) {
    try {
      ASSERT_EQ(Describe(*Value(x), 45), Expected(size, 45));
      ASSERT_EQ(Describe(*Value(y), 46), Expected(size, 46));
    } catch (const lumen::ObjectStoreFullError& error) {
      FAIL() << "round " << round << ": " << error.what();
    }
  }
  x = y = lumen::ObjectRef<std::vector<uint8_t>>();
  EXPECT_TRUE(StoreBecomesEmpty());
}

// A worker killed while it reads an object (a task argument, pinned while the task runs):
// its pin goes with it.
TEST_F(TinyStoreTest, KilledReaderReleasesItsPin) {
  const std::string pid_path = lumen::test::TempPath("reader_pid");
  auto blob = lumen::Put(MakePattern(20 * kMiB, 47));
  auto held = lumen::Task(HoldWhileSleeping).SetMaxRetries(0).Remote(blob, pid_path, 600000);
  int pid = WaitForPidFile(pid_path);
  ASSERT_GT(pid, 0) << "the task did not start";
  {
    lumen::MemoryInfo info = lumen::GetMemoryInfo();
    const lumen::StoredObjectInfo* object = FindObject(info, blob.ID());
    ASSERT_NE(object, nullptr) << lumen::MemorySummary();
    EXPECT_GT(object->readers, 0) << lumen::MemorySummary();
  }
  ASSERT_EQ(kill(pid, SIGKILL), 0);
  EXPECT_TRUE(lumen::test::WaitProcessGone(pid));
  EXPECT_THROW(lumen::Get(held, kGuard), lumen::WorkerCrashedError);
  EXPECT_TRUE(NoReaders()) << "the dead reader still pins its object:\n" << lumen::MemorySummary();
  // With the pin gone the object can be spilled to make room for another.
  auto other = lumen::Put(MakePattern(20 * kMiB, 48));
  EXPECT_EQ(Describe(*Value(blob), 47), Expected(20 * kMiB, 47));
  blob = other = lumen::ObjectRef<std::vector<uint8_t>>();
  EXPECT_TRUE(StoreBecomesEmpty());
  std::remove(pid_path.c_str());
}

// --- 6. Everything pinned by readers ----------------------------------------------------

TEST_F(TinyStoreTest, ObjectsPinnedByGetResultsAreNotSpilled) {
  const uint64_t size = 15 * kMiB;
  auto a = lumen::Put(MakePattern(size, 51));
  auto b = lumen::Put(MakePattern(size, 52));
  std::optional<decltype(lumen::Get(a))> held_a = Value(a);
  std::optional<decltype(lumen::Get(b))> held_b = Value(b);
  {
    lumen::MemoryInfo info = lumen::GetMemoryInfo();
    for (const auto* ref : {&a, &b}) {
      const lumen::StoredObjectInfo* object = FindObject(info, ref->ID());
      ASSERT_NE(object, nullptr) << lumen::MemorySummary();
      EXPECT_GT(object->readers, 0) << "a held Get result does not pin its object:\n"
                                    << lumen::MemorySummary();
    }
  }

  // Nothing can be spilled or evicted: the third object does not fit.
  std::string message;
  try {
    auto c = lumen::Put(MakePattern(size, 53));
    ADD_FAILURE() << "a third 15 MiB object fit in a 32 MiB store holding two pinned ones:\n"
                  << lumen::MemorySummary();
  } catch (const lumen::ObjectStoreFullError& error) {
    message = error.what();
  }
  EXPECT_NE(message.find("object store full"), std::string::npos) << message;
  EXPECT_NE(message.find("pinned"), std::string::npos) << message;
  // The held values are intact.
  EXPECT_EQ(Describe(**held_a, 51), Expected(size, 51));
  EXPECT_EQ(Describe(**held_b, 52), Expected(size, 52));

  // Released, they can be spilled, and the Put succeeds.
  held_a.reset();
  held_b.reset();
  // Pins are released asynchronously: wait until the store saw the releases.
  ASSERT_TRUE(NoReaders()) << lumen::MemorySummary();
  lumen::ObjectRef<std::vector<uint8_t>> c;
  ASSERT_NO_THROW(c = lumen::Put(MakePattern(size, 53))) << lumen::MemorySummary();
  EXPECT_GT(lumen::GetMemoryInfo(false).total_spilled, 0u);
  EXPECT_EQ(Describe(*Value(a), 51), Expected(size, 51));
  ASSERT_TRUE(NoReaders()) << lumen::MemorySummary();
  EXPECT_EQ(Describe(*Value(b), 52), Expected(size, 52));
  ASSERT_TRUE(NoReaders()) << lumen::MemorySummary();
  EXPECT_EQ(Describe(*Value(c), 53), Expected(size, 53));
  a = b = c = lumen::ObjectRef<std::vector<uint8_t>>();
  EXPECT_TRUE(StoreBecomesEmpty());
}

// --- 7. A client killed between create and seal -----------------------------------------

// The workers started at Init inherit LUMEN_TESTING_STORE_WRITE_DELAY_MS: every store
// write of theirs stays unsealed for 3 s.
class KilledWriterTest : public StoreTest {
 protected:
  void SetUp() override {
    setenv("LUMEN_TESTING_STORE_WRITE_DELAY_MS", "3000", 1);
    StoreTest::SetUp();
  }
  void TearDown() override {
    unsetenv("LUMEN_TESTING_STORE_WRITE_DELAY_MS");
    StoreTest::TearDown();
  }
};

TEST_F(KilledWriterTest, UnsealedObjectOfAKilledWorkerIsReclaimed) {
  const std::string pid_path = lumen::test::TempPath("writer_pid");
  auto result = lumen::Task(PutFromWorker).SetMaxRetries(0).Remote(pid_path, uint64_t(20 * kMiB));
  int pid = WaitForPidFile(pid_path);
  ASSERT_GT(pid, 0) << "the task did not start";
  std::string unsealed_id;
  ASSERT_TRUE(lumen::test::WaitUntil(
      [&] {
        for (const auto& object : lumen::GetMemoryInfo().objects) {
          if (!object.sealed) {
            unsealed_id = object.id;
            return true;
          }
        }
        return false;
      },
      60))
      << "no object being created:\n"
      << lumen::MemorySummary();
  // The writer is held between create and seal (not just finishing its copy).
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  {
    lumen::MemoryInfo info = lumen::GetMemoryInfo();
    EXPECT_GE(info.used, 20 * kMiB);
    const lumen::StoredObjectInfo* object = FindObject(info, unsealed_id);
    ASSERT_NE(object, nullptr);
    EXPECT_GE(object->size, 20 * kMiB);
    ASSERT_FALSE(object->sealed) << "sealed within 0.5 s: LUMEN_TESTING_STORE_WRITE_DELAY_MS "
                                    "did not reach the worker";
  }
  ASSERT_EQ(kill(pid, SIGKILL), 0) << "worker " << pid;
  EXPECT_TRUE(lumen::test::WaitProcessGone(pid));
  EXPECT_THROW(lumen::Get(result, kGuard), lumen::WorkerCrashedError);
  EXPECT_TRUE(StoreBecomesEmpty()) << "the killed writer's object was not reclaimed";

  // The cluster goes on (small values only: large ones would take 3 s each here).
  EXPECT_EQ(*Value(lumen::Task(Plus).Remote(20, 22)), 42);
  std::remove(pid_path.c_str());
}

// --- 8. MemorySummary -------------------------------------------------------------------

TEST_F(StoreTest, MemorySummaryShowsCapacityAndHeldObjects) {
  auto large = lumen::Put(MakePattern(3 * kMiB, 61));
  const std::string id = large.ID();
  std::string summary = lumen::MemorySummary();
  EXPECT_NE(summary.find("256 MiB"), std::string::npos) << summary;
  EXPECT_NE(summary.find(id), std::string::npos) << summary;
  EXPECT_NE(summary.find("3 MiB"), std::string::npos) << summary;
  large = lumen::ObjectRef<std::vector<uint8_t>>();
  EXPECT_TRUE(StoreBecomesEmpty());
  std::string empty = lumen::MemorySummary();
  EXPECT_NE(empty.find("256 MiB"), std::string::npos) << empty;
  EXPECT_EQ(empty.find(id), std::string::npos) << "a freed object is still listed:\n" << empty;
}

// --- 9. Config validation ---------------------------------------------------------------

TEST(ObjectStoreConfigTest, StoreLargerThanDevShmFailsInitClearly) {
  lumen::Config config;
  config.num_cpus = 2;
  config.object_store_memory = int64_t(1) << 50;  // 1 PiB
  std::string message;
  try {
    lumen::Init(config);
    ADD_FAILURE() << "Init with a 1 PiB store did not throw";
    lumen::Shutdown();
  } catch (const lumen::ConfigError& error) {
    message = error.what();
  }
  EXPECT_NE(message.find("/dev/shm"), std::string::npos) << message;
  EXPECT_NE(message.find("1 PiB"), std::string::npos) << message;
  EXPECT_FALSE(lumen::IsInitialized());
  std::vector<int> left = lumen::test::WaitForNoChildren(30);
  EXPECT_TRUE(left.empty()) << "processes left by the failed Init: " << lumen::test::JoinPids(left);
  EXPECT_TRUE(OurSegments().empty()) << Join(OurSegments());

  // A sane size works afterwards.
  config.object_store_memory = int64_t(64 * kMiB);
  ASSERT_NO_THROW(lumen::Init(config));
  EXPECT_EQ(lumen::GetMemoryInfo(false).capacity, 64 * kMiB);
  auto large = lumen::Put(MakePattern(2 * kMiB, 71));
  EXPECT_EQ(Describe(*Value(large), 71), Expected(2 * kMiB, 71));
  EXPECT_EQ(*Value(lumen::Task(Plus).Remote(3, 4)), 7);
  large = lumen::ObjectRef<std::vector<uint8_t>>();
  EXPECT_TRUE(StoreBecomesEmpty());
  lumen::Shutdown();
  left = lumen::test::WaitForNoChildren(30);
  EXPECT_TRUE(left.empty()) << lumen::test::JoinPids(left);
}

}  // namespace
