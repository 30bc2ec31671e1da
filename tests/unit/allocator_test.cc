#include "object_store/allocator.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <functional>
#include <utility>
#include <vector>

namespace lumen::object_store {
namespace {

constexpr uint64_t kMiB = 1 << 20;

// Unique per process and test, so parallel test runs do not share segments.
std::string UniqueName() {
  static std::atomic<int> counter{0};
  return "lumen-allocator-test-" + std::to_string(getpid()) + "-" + std::to_string(counter++);
}

bool ShmExists(const std::string& name) {
  int fd = shm_open(("/" + name).c_str(), O_RDONLY, 0);
  if (fd >= 0) close(fd);
  return fd >= 0;
}

uint8_t PatternByte(uint64_t seed, uint64_t i) { return uint8_t(seed * 131 + i * 7 + (i >> 8)); }

void Fill(uint8_t* p, uint64_t size, uint64_t seed) {
  for (uint64_t i = 0; i < size; ++i) p[i] = PatternByte(seed, i);
}

bool Holds(const uint8_t* p, uint64_t size, uint64_t seed) {
  for (uint64_t i = 0; i < size; ++i) {
    if (p[i] != PatternByte(seed, i)) return false;
  }
  return true;
}

std::unique_ptr<ShmAllocator> MakeShm(uint64_t capacity) {
  auto shm = ShmAllocator::Create(UniqueName(), capacity);
  EXPECT_TRUE(shm.ok()) << shm.status();
  return shm.ok() ? std::move(*shm) : nullptr;
}

// Every allocator must behave the same through the Allocator interface.
using Factory = std::function<std::unique_ptr<Allocator>(uint64_t capacity)>;

class AllocatorTest : public ::testing::TestWithParam<std::pair<const char*, Factory>> {
 protected:
  std::unique_ptr<Allocator> Make(uint64_t capacity) { return GetParam().second(capacity); }
};

TEST_P(AllocatorTest, BlocksAreAlignedDisjointAndKeepTheirBytes) {
  auto allocator = Make(16 * kMiB);
  ASSERT_NE(allocator, nullptr);
  EXPECT_EQ(allocator->capacity(), 16 * kMiB);
  std::vector<std::pair<uint64_t, uint64_t>> blocks;  // offset, size
  for (uint64_t i = 0; i < 200; ++i) {
    uint64_t size = 1 + (i * 7919) % 50000;
    auto offset = allocator->Allocate(size);
    ASSERT_TRUE(offset.has_value()) << "block " << i;
    EXPECT_EQ(*offset % 64, 0u);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(allocator->base() + *offset) % 64, 0u);
    Fill(allocator->base() + *offset, size, i);
    blocks.emplace_back(*offset, size);
  }
  for (uint64_t i = 0; i < blocks.size(); ++i) {
    EXPECT_TRUE(Holds(allocator->base() + blocks[i].first, blocks[i].second, i)) << i;
  }
  std::sort(blocks.begin(), blocks.end());
  for (size_t i = 1; i < blocks.size(); ++i) {
    EXPECT_LE(blocks[i - 1].first + blocks[i - 1].second, blocks[i].first);
  }
  for (auto [offset, size] : blocks) allocator->Free(offset);
}

TEST_P(AllocatorTest, AFewLargeBlocksFillTheWholeCapacity) {
  auto allocator = Make(64 * kMiB);
  ASSERT_NE(allocator, nullptr);
  std::vector<uint64_t> offsets;
  for (int i = 0; i < 4; ++i) {
    auto offset = allocator->Allocate(16 * kMiB);
    ASSERT_TRUE(offset.has_value()) << "block " << i;
    offsets.push_back(*offset);
  }
  EXPECT_FALSE(allocator->Allocate(16 * kMiB).has_value());
  // A freed block is found again.
  allocator->Free(offsets[2]);
  auto again = allocator->Allocate(16 * kMiB);
  ASSERT_TRUE(again.has_value());
  offsets[2] = *again;
  for (uint64_t offset : offsets) allocator->Free(offset);
  auto whole = allocator->Allocate(64 * kMiB);
  ASSERT_TRUE(whole.has_value());
  allocator->Free(*whole);
}

TEST_P(AllocatorTest, ManySmallBlocksFitTheCapacity) {
  auto allocator = Make(64 * kMiB);
  ASSERT_NE(allocator, nullptr);
  std::vector<uint64_t> offsets;
  for (uint64_t i = 0; i < 64 * kMiB / (16 * 1024); ++i) {
    auto offset = allocator->Allocate(16 * 1024);
    ASSERT_TRUE(offset.has_value()) << "block " << i;
    offsets.push_back(*offset);
  }
  for (uint64_t offset : offsets) allocator->Free(offset);
}

TEST_P(AllocatorTest, TooLargeIsNullopt) {
  auto allocator = Make(4 * kMiB);
  ASSERT_NE(allocator, nullptr);
  EXPECT_FALSE(allocator->Allocate(8 * kMiB).has_value());
  auto offset = allocator->Allocate(4 * kMiB);
  ASSERT_TRUE(offset.has_value());
  EXPECT_FALSE(allocator->Allocate(2 * kMiB).has_value());  // more than the margin
  allocator->Free(*offset);
}

std::unique_ptr<Allocator> MakeHeap(uint64_t capacity) {
  return std::make_unique<HeapAllocator>(capacity);
}

INSTANTIATE_TEST_SUITE_P(Kinds, AllocatorTest,
                         ::testing::Values(std::pair<const char*, Factory>("Heap", MakeHeap),
                                           std::pair<const char*, Factory>("Shm", MakeShm)),
                         [](const auto& info) { return std::string(info.param.first); });

TEST(ShmAllocatorTest, MappingByNameSeesTheSameBytesAtTheSameOffset) {
  auto shm = MakeShm(4 * kMiB);
  ASSERT_NE(shm, nullptr);
  EXPECT_GE(shm->mapped_size(), 4 * kMiB);
  auto offset = shm->Allocate(1000);
  ASSERT_TRUE(offset.has_value());
  Fill(shm->base() + *offset, 1000, 1);

  auto mapping = ShmMapping::Open(shm->name(), shm->mapped_size());
  ASSERT_TRUE(mapping.ok()) << mapping.status();
  EXPECT_EQ((*mapping)->size(), shm->mapped_size());
  EXPECT_NE((*mapping)->base(), shm->base());  // a second mapping, not the same pointer
  EXPECT_TRUE(Holds((*mapping)->base() + *offset, 1000, 1));
  Fill((*mapping)->base() + *offset, 1000, 2);
  EXPECT_TRUE(Holds(shm->base() + *offset, 1000, 2));
  shm->Free(*offset);
}

TEST(ShmAllocatorTest, AnotherProcessWritesThroughItsOwnMapping) {
  auto shm = MakeShm(4 * kMiB);
  ASSERT_NE(shm, nullptr);
  auto offset = shm->Allocate(4096);
  ASSERT_TRUE(offset.has_value());
  Fill(shm->base() + *offset, 4096, 3);
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // Only async-signal-safe work would be strictly allowed here; the test process has
    // no other threads, so opening the mapping is fine. Exit codes say what failed.
    auto mapping = ShmMapping::Open(shm->name(), shm->mapped_size());
    if (!mapping.ok()) _exit(2);
    if (!Holds((*mapping)->base() + *offset, 4096, 3)) _exit(3);
    Fill((*mapping)->base() + *offset, 4096, 4);
    _exit(0);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  EXPECT_TRUE(Holds(shm->base() + *offset, 4096, 4));
  shm->Free(*offset);
}

TEST(ShmAllocatorTest, SegmentIsRemovedOnDestruction) {
  auto shm = MakeShm(1 * kMiB);
  ASSERT_NE(shm, nullptr);
  std::string name = shm->name();
  uint64_t size = shm->mapped_size();
  EXPECT_TRUE(ShmExists(name));
  shm.reset();
  EXPECT_FALSE(ShmExists(name));
  auto mapping = ShmMapping::Open(name, size);
  EXPECT_EQ(mapping.status().code(), absl::StatusCode::kNotFound) << mapping.status();
}

TEST(ShmAllocatorTest, StaleSegmentOfTheSameNameIsReplaced) {
  std::string name = UniqueName();
  int fd = shm_open(("/" + name).c_str(), O_CREAT | O_RDWR, 0600);
  ASSERT_GE(fd, 0);
  close(fd);
  auto shm = ShmAllocator::Create(name, 1 * kMiB);
  ASSERT_TRUE(shm.ok()) << shm.status();
  EXPECT_GE((*shm)->mapped_size(), 1 * kMiB);
}

TEST(ShmAllocatorTest, MappingMoreThanTheSegmentFails) {
  auto shm = MakeShm(1 * kMiB);
  ASSERT_NE(shm, nullptr);
  auto mapping = ShmMapping::Open(shm->name(), shm->mapped_size() + kMiB);
  EXPECT_FALSE(mapping.ok());
}

TEST(ShmAllocatorTest, CapacityBeyondDevShmFailsWithTheSizes) {
  std::optional<uint64_t> available = ShmAvailableBytes();
  ASSERT_TRUE(available.has_value());
  EXPECT_GT(*available, 0u);
  uint64_t capacity = *available + 1024 * kMiB;
  std::string name = UniqueName();
  auto shm = ShmAllocator::Create(name, capacity);
  ASSERT_EQ(shm.status().code(), absl::StatusCode::kResourceExhausted) << shm.status();
  std::string message(shm.status().message());
  EXPECT_NE(message.find(std::to_string(capacity) + " bytes"), std::string::npos) << message;
  EXPECT_NE(message.find("/dev/shm"), std::string::npos) << message;
  EXPECT_NE(message.find("object_store_memory"), std::string::npos) << message;
  EXPECT_FALSE(ShmExists(name));
}

}  // namespace
}  // namespace lumen::object_store
