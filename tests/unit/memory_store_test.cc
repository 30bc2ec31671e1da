#include "core_worker/memory_store.h"

#include <gtest/gtest.h>

#include <thread>

namespace lumen::core {
namespace {

ObjectPtr Value(const std::string& data) {
  auto object = std::make_shared<StoredObject>();
  object->data = data;
  return object;
}

TEST(MemoryStoreTest, WaitReturnsWhenObjectsArrive) {
  MemoryStore store;
  ObjectId a = ObjectId::ForPut(TaskId::FromRandom(), 0);
  ObjectId b = ObjectId::ForPut(TaskId::FromRandom(), 0);
  std::thread producer([&] {
    store.Put(a, Value("a"));
    store.Put(b, Value("b"));
  });
  std::vector<ObjectPtr> out;
  EXPECT_EQ(store.Wait({a, b}, 2, std::chrono::steady_clock::time_point::max(), &out), 2u);
  producer.join();
  EXPECT_EQ(out[0]->data, "a");
  EXPECT_EQ(out[1]->data, "b");
}

TEST(MemoryStoreTest, WaitTimesOut) {
  MemoryStore store;
  std::vector<ObjectPtr> out;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(20);
  EXPECT_EQ(store.Wait({ObjectId::ForPut(TaskId::FromRandom(), 0)}, 1, deadline, &out), 0u);
  EXPECT_EQ(out[0], nullptr);
}

TEST(MemoryStoreTest, CallbacksRunOnPutOrAtOnce) {
  MemoryStore store;
  ObjectId id = ObjectId::ForPut(TaskId::FromRandom(), 0);
  std::string seen;
  store.OnReady(id, [&](ObjectPtr o) { seen += o->data; });
  EXPECT_EQ(seen, "");
  store.Put(id, Value("x"));
  EXPECT_EQ(seen, "x");
  store.OnReady(id, [&](ObjectPtr o) { seen += o->data; });
  EXPECT_EQ(seen, "xx");
}

TEST(MemoryStoreTest, ShutdownFailsCallbacksAndWakesWaiters) {
  MemoryStore store;
  ObjectId id = ObjectId::ForPut(TaskId::FromRandom(), 0);
  bool got_null = false;
  store.OnReady(id, [&](ObjectPtr o) { got_null = (o == nullptr); });
  std::thread waiter([&] {
    std::vector<ObjectPtr> out;
    store.Wait({id}, 1, std::chrono::steady_clock::time_point::max(), &out);
  });
  store.Shutdown();
  waiter.join();
  EXPECT_TRUE(got_null);
}

}  // namespace
}  // namespace lumen::core
