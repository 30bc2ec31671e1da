#include "core_worker/memory_store.h"

#include <gtest/gtest.h>
#include <poll.h>

#include <atomic>
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

// A sleeper that polls its waker (as a borrower of a frame connection does): a Put from
// another thread must end its sleep; one that cannot sleep any more leaves the wait to the
// condition variable.
TEST(MemoryStoreTest, WaitWithASleeperIsWokenByPutsFromOtherThreads) {
  MemoryStore store;
  ObjectId id = ObjectId::ForPut(TaskId::FromRandom(), 0);
  std::atomic<int> sleeps{0};
  auto waker = Waker::ForThisThread();
  ASSERT_NE(waker, nullptr);
  MemoryStore::Sleeper sleeper{waker, [&](std::chrono::steady_clock::time_point) {
                                 ++sleeps;
                                 pollfd fd{waker->fd(), POLLIN, 0};
                                 EXPECT_EQ(::poll(&fd, 1, 30000), 1) << "hang guard";
                                 waker->Drain();
                                 return true;
                               }};
  std::thread producer([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    store.Put(id, Value("woken"));
  });
  std::vector<ObjectPtr> out;
  EXPECT_EQ(store.Wait({id}, 1, std::chrono::steady_clock::time_point::max(), &out, &sleeper),
            1u);
  producer.join();
  EXPECT_EQ(out[0]->data, "woken");
  EXPECT_GE(sleeps.load(), 1);

  ObjectId later = ObjectId::ForPut(TaskId::FromRandom(), 1);
  MemoryStore::Sleeper unable{waker, [](std::chrono::steady_clock::time_point) { return false; }};
  std::thread again([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    store.Put(later, Value("by condvar"));
  });
  EXPECT_EQ(store.Wait({later}, 1, std::chrono::steady_clock::time_point::max(), &out, &unable),
            1u);
  again.join();
  EXPECT_EQ(out[0]->data, "by condvar");
}

TEST(MemoryStoreTest, WaitTimesOut) {
  MemoryStore store;
  std::vector<ObjectPtr> out;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(20);
  EXPECT_EQ(store.Wait({ObjectId::ForPut(TaskId::FromRandom(), 0)}, 1, deadline, &out), 0u);
  EXPECT_EQ(out[0], nullptr);
}

TEST(MemoryStoreTest, WaitForAllTakesResultsInAnyOrder) {
  MemoryStore store;
  std::vector<ObjectId> ids;
  for (int i = 0; i < 3; ++i) ids.push_back(ObjectId::ForPut(TaskId::FromRandom(), 0));
  std::thread producer([&] {
    for (int i = 2; i >= 0; --i) store.Put(ids[i], Value(std::to_string(i)));
  });
  std::vector<ObjectPtr> out;
  EXPECT_EQ(store.Wait(ids, 3, std::chrono::steady_clock::time_point::max(), &out), 3u);
  producer.join();
  for (int i = 0; i < 3; ++i) EXPECT_EQ(out[i]->data, std::to_string(i));
}

TEST(MemoryStoreTest, WaitForAllThatTimesOutReportsEveryObjectThatIsHere) {
  MemoryStore store;
  std::vector<ObjectId> ids;
  for (int i = 0; i < 3; ++i) ids.push_back(ObjectId::ForPut(TaskId::FromRandom(), 0));
  store.Put(ids[0], Value("a"));
  store.Put(ids[2], Value("c"));  // past the missing one
  std::vector<ObjectPtr> out;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(20);
  EXPECT_EQ(store.Wait(ids, 3, deadline, &out), 2u);
  ASSERT_NE(out[0], nullptr);
  EXPECT_EQ(out[1], nullptr);
  ASSERT_NE(out[2], nullptr);
  EXPECT_EQ(out[2]->data, "c");
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
