// Large values are read in place from the node's shared memory: Get returns views, not
// copies, and a view keeps its object alive until the last shared_ptr is gone. Values are
// immutable: Get hands out `const T`, and a copy of a view is an ordinary value.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <type_traits>
#include <numeric>
#include <string>
#include <vector>

#include "lumen/lumen.h"
#include "test_util.h"

std::vector<double> Ramp(int64_t n) {
  std::vector<double> values(size_t(n), 0.0);
  std::iota(values.begin(), values.end(), 0.5);
  return values;
}
LUMEN_REMOTE(Ramp);

namespace {

using lumen::Get;
using lumen::GetMemoryInfo;
using lumen::MemoryInfo;
using lumen::MemorySummary;
using lumen::Put;
using lumen::Task;
using lumen::test::WaitUntil;

class ZeroCopyTest : public lumen::test::ClusterTest {};

// What a user's code can do with a value from Get is fixed by its type.
static_assert(std::is_same_v<decltype(Get(std::declval<lumen::ObjectRef<std::vector<double>>&>())),
                             std::shared_ptr<const std::vector<double>>>);
static_assert(std::is_same_v<decltype(std::declval<lumen::ObjectRef<std::string>&>().Get()),
                             std::shared_ptr<const std::string>>);
static_assert(std::is_same_v<decltype(Get(std::declval<std::vector<lumen::ObjectRef<int>>&>())),
                             std::vector<std::shared_ptr<const int>>>);

bool StoreEmpty() {
  MemoryInfo info = GetMemoryInfo(false);
  return info.used == 0 && info.num_objects == 0;
}

TEST_F(ZeroCopyTest, GetOfALargeVectorReturnsAViewOfSharedMemory) {
  std::vector<double> values = Ramp(1 << 20);  // 8 MiB
  auto ref = Put(values);
  std::shared_ptr<const std::vector<double>> first = Get(ref);
  std::shared_ptr<const std::vector<double>> second = Get(ref);
  ASSERT_EQ(*first, values);
  // Two Gets see the very same bytes: neither is a copy.
  EXPECT_EQ(first->data(), second->data());
  EXPECT_NE(first->data(), values.data());
  EXPECT_EQ(reinterpret_cast<uintptr_t>(first->data()) % alignof(double), 0u);
  MemoryInfo info = GetMemoryInfo();
  ASSERT_EQ(info.objects.size(), 1u);
  EXPECT_EQ(info.objects[0].id, ref.ID());
  EXPECT_GE(info.objects[0].readers, 1);
}

TEST_F(ZeroCopyTest, GetOfALargeStringAndOfBytesReturnsViews) {
  std::string text(5 << 20, 'x');
  text[12345] = 'y';
  std::vector<uint8_t> bytes(3 << 20, 7);
  auto text_ref = Put(text);
  auto bytes_ref = Put(bytes);
  auto text_a = Get(text_ref), text_b = Get(text_ref);
  auto bytes_a = Get(bytes_ref), bytes_b = Get(bytes_ref);
  EXPECT_EQ(*text_a, text);
  EXPECT_EQ(text_a->data(), text_b->data());
  EXPECT_EQ(text_a->c_str()[text.size()], '\0');  // still a proper C string
  EXPECT_EQ(*bytes_a, bytes);
  EXPECT_EQ(bytes_a->data(), bytes_b->data());
}

TEST_F(ZeroCopyTest, ATaskResultIsReadInPlace) {
  auto ref = Task(Ramp).Remote(int64_t(1 << 19));
  auto a = Get(ref);
  auto b = Get(ref);
  EXPECT_EQ(*a, Ramp(1 << 19));
  EXPECT_EQ(a->data(), b->data());
}

TEST_F(ZeroCopyTest, AViewKeepsItsObjectUntilTheLastPointerGoes) {
  std::vector<double> values = Ramp(1 << 20);
  std::shared_ptr<const std::vector<double>> view;
  {
    auto ref = Put(values);
    view = Get(ref);
  }  // the last ObjectRef is gone; the view still pins the bytes
  EXPECT_EQ(*view, values);
  EXPECT_EQ(GetMemoryInfo().num_objects, 1u);
  view.reset();
  EXPECT_TRUE(WaitUntil(StoreEmpty, 30)) << MemorySummary();
}

// The natural ways to take a value out of Get and change it work on large (in-place)
// values, and leave the object as it was for every later reader. Before Get returned
// `const T`, the move below stole shared memory and aborted with "free(): invalid pointer".
TEST_F(ZeroCopyTest, ACopyOfAViewIsTheCallersToChange) {
  std::vector<double> values = Ramp(1 << 20);
  auto ref = Put(values);
  auto view = Get(ref);
  std::vector<double> moved = std::move(*Get(ref));  // a move of a const value copies
  moved.push_back(-1.0);
  moved[0] = 42.0;
  EXPECT_EQ(moved.front(), 42.0);
  std::sort(moved.begin(), moved.end());
  EXPECT_EQ(moved.front(), -1.0);
  std::vector<double> copied = *view;
  copied.resize(10);
  std::string text(1 << 20, 'a');
  auto text_ref = Put(text);
  std::string mine = std::move(*Get(text_ref));
  mine += "tail";
  EXPECT_EQ(moved.size(), values.size() + 1);
  EXPECT_EQ(copied.size(), 10u);
  EXPECT_EQ(*view, values);          // the reader's view is untouched
  EXPECT_EQ(*Get(ref), values);      // and so is the object for later readers
  EXPECT_EQ(*Get(text_ref), text);
  EXPECT_EQ(Get(ref)->data(), view->data());  // still read in place, not a copy
}

TEST_F(ZeroCopyTest, SmallValuesStayInlineAndAreCopies) {
  std::vector<double> values = Ramp(100);
  auto ref = Put(values);
  auto a = Get(ref);
  auto b = Get(ref);
  EXPECT_EQ(*a, values);
  EXPECT_NE(a->data(), b->data());
  EXPECT_EQ(GetMemoryInfo().num_objects, 0u);
}

}  // namespace
