// A thread that waits for what comes on a frame connection reads it itself
// (FrameConnection::Borrow), and the routes that tell a waiting Get which connection that is.
#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <thread>

#include "common/waker.h"
#include "core_worker/clients.h"
#include "frame_loop_fixture.h"
#include "rpc/rpc.h"

namespace lumen::rpc {
namespace {

using Clock = std::chrono::steady_clock;

// Borrow-waits until `done` or a 30 s hang guard; false when the connection closed first.
bool WaitUntil(FrameConnection::Borrow& borrow, const std::function<bool()>& done) {
  auto waker = Waker::ForThisThread();
  auto guard = Clock::now() + std::chrono::seconds(30);
  while (!done()) {
    if (Clock::now() > guard) {
      ADD_FAILURE() << "hang guard";
      return false;
    }
    if (!borrow.Wait(*waker, guard)) return done();
  }
  return true;
}

TEST_F(FrameLoopTest, ABorrowerReadsItsRepliesOnItsOwnThread) {
  Serve([](const std::string& payload) { return Result{absl::OkStatus(), "re " + payload}; });
  auto connection = Connect();
  ASSERT_NE(connection, nullptr);
  FrameConnection::Borrow borrow(connection);
  for (int i = 0; i < 100; ++i) {
    std::atomic<bool> answered{false};
    std::thread::id ran_on;
    std::string reply;
    connection->Call(std::to_string(i), [&](absl::Status status, std::string payload) {
      EXPECT_TRUE(status.ok()) << status;
      ran_on = std::this_thread::get_id();
      reply = std::move(payload);
      answered = true;
    });
    ASSERT_TRUE(WaitUntil(borrow, [&] { return answered.load(); }));
    EXPECT_EQ(reply, "re " + std::to_string(i));
    EXPECT_EQ(ran_on, std::this_thread::get_id()) << "the loop's thread read a borrowed socket";
  }
}

TEST_F(FrameLoopTest, ABorrowedServerConnectionRunsItsHandlerOnTheBorrower) {
  std::mutex mutex;
  std::shared_ptr<FrameConnection> accepted;
  std::vector<std::thread::id> handled_on;
  ASSERT_TRUE(server_
                  .Listen(path_,
                          [&](const std::shared_ptr<FrameConnection>& connection, uint64_t id,
                              std::string payload) {
                            {
                              std::lock_guard<std::mutex> lock(mutex);
                              accepted = connection;
                              handled_on.push_back(std::this_thread::get_id());
                            }
                            connection->Reply(id, absl::OkStatus(), payload);
                          })
                  .ok());
  auto connection = Connect();
  ASSERT_NE(connection, nullptr);
  EXPECT_EQ(Await(Call(*connection, "first")).payload, "first");  // read by the loop
  std::shared_ptr<FrameConnection> server_side;
  {
    std::lock_guard<std::mutex> lock(mutex);
    server_side = accepted;
  }
  FrameConnection::Borrow borrow(server_side);
  auto second = Call(*connection, "second");
  ASSERT_TRUE(WaitUntil(borrow, [&] {
    std::lock_guard<std::mutex> lock(mutex);
    return handled_on.size() == 2;
  }));
  EXPECT_EQ(Await(std::move(second)).payload, "second");
  std::lock_guard<std::mutex> lock(mutex);
  EXPECT_NE(handled_on[0], std::this_thread::get_id());
  EXPECT_EQ(handled_on[1], std::this_thread::get_id());
}

TEST_F(FrameLoopTest, AWakerOrTheDeadlineEndsABorrowersWait) {
  Serve([](const std::string& payload) { return Result{absl::OkStatus(), payload}; });
  auto connection = Connect();
  ASSERT_NE(connection, nullptr);
  {
    FrameConnection::Borrow borrow(connection);
    auto waker = Waker::ForThisThread();
    ASSERT_NE(waker, nullptr);
    auto start = Clock::now();
    EXPECT_TRUE(borrow.Wait(*waker, start + std::chrono::milliseconds(20)));
    EXPECT_GE(Clock::now() - start, std::chrono::milliseconds(20));
    std::thread other([waker] {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      waker->Wake();
    });
    EXPECT_TRUE(borrow.Wait(*waker, start + std::chrono::seconds(30)));  // hang guard
    EXPECT_LT(Clock::now() - start, std::chrono::seconds(30));
    other.join();
  }
  // The borrow ended: the loop's thread reads the connection again.
  EXPECT_EQ(Await(Call(*connection, "back")).payload, "back");
}

TEST_F(FrameLoopTest, ABorrowersWaitEndsWhenThePeerLeaves) {
  std::future<void> received = ServeWithoutAnswering();
  auto connection = Connect();
  ASSERT_NE(connection, nullptr);
  auto pending = Call(*connection, "never answered");
  {
    FrameConnection::Borrow borrow(connection);
    received.wait();
    server_.Stop();
    EXPECT_FALSE(WaitUntil(borrow, [] { return false; }));
    EXPECT_FALSE(borrow.Wait(*Waker::ForThisThread(), Clock::now()));  // stays closed
  }
  Result result = Await(std::move(pending));
  EXPECT_EQ(result.status.code(), absl::StatusCode::kUnavailable);
  EXPECT_FALSE(NotDelivered(result.status));
  EXPECT_TRUE(NotDelivered(Await(Call(*connection, "later")).status));
}

TEST_F(FrameLoopTest, StoppingTheLoopEndsItsBorrowersWaits) {
  Serve([](const std::string& payload) { return Result{absl::OkStatus(), payload}; });
  auto connection = Connect();
  ASSERT_NE(connection, nullptr);
  std::promise<void> borrowed;
  std::atomic<bool> ended{false};
  std::thread borrower([&] {
    FrameConnection::Borrow borrow(connection);
    borrowed.set_value();
    WaitUntil(borrow, [] { return false; });
    ended = true;
  });
  borrowed.get_future().wait();
  client_.Stop();
  borrower.join();
  EXPECT_TRUE(ended);
  EXPECT_TRUE(NotDelivered(Await(Call(*connection, "after stop")).status));
}

TEST_F(FrameLoopTest, PushRoutesNameTheConnectionOfEachTaskWhileItIsOut) {
  std::promise<std::function<void()>> held;  // answers the push when called
  ASSERT_TRUE(server_
                  .Listen(path_,
                          [&](const std::shared_ptr<FrameConnection>& connection, uint64_t id,
                              std::string) {
                            held.set_value([connection, id] {
                              connection->Reply(id, absl::OkStatus(),
                                                PushTasksReply().SerializeAsString());
                            });
                          })
                  .ok());
  auto routes = std::make_shared<core::PushRoutes>();
  auto factory = core::MakeFrameWorkerClientFactory(
      &client_,
      [](const std::string&, const std::string&) -> std::shared_ptr<core::WorkerClient> {
        return nullptr;
      },
      routes);
  std::string base = path_.substr(0, path_.size() - std::string(".push").size());
  auto client = factory("unix:" + base + ".sock", "");
  ASSERT_NE(client, nullptr);
  TaskId task = TaskId::FromRandom(), other = TaskId::FromRandom();
  PushTasksRequest request;
  request.add_tasks()->set_task_id(task.Binary());
  std::promise<absl::Status> answered;
  client->PushTasks(request, [&](absl::Status status, PushTasksReply&&) {
    answered.set_value(status);
  });
  auto answer = held.get_future();
  ASSERT_EQ(answer.wait_for(std::chrono::seconds(30)), std::future_status::ready);
  EXPECT_NE(routes->Find(task), nullptr);
  EXPECT_EQ(routes->Find(other), nullptr);
  answer.get()();
  auto status = answered.get_future();
  ASSERT_EQ(status.wait_for(std::chrono::seconds(30)), std::future_status::ready);
  EXPECT_TRUE(status.get().ok());
  EXPECT_EQ(routes->Find(task), nullptr) << "a route outlived its push";
}

TEST_F(FrameLoopTest, APushsReplyRemovesOnlyItsOwnRoute) {
  Serve([](const std::string& payload) { return Result{absl::OkStatus(), payload}; });
  auto first = Connect(), second = Connect();
  ASSERT_NE(first, nullptr);
  ASSERT_NE(second, nullptr);
  core::PushRoutes routes;
  TaskId task = TaskId::FromRandom();
  routes.Add({task}, first);
  routes.Add({task}, second);  // pushed again (a retry) before the first reply came
  routes.Remove({task}, first);
  EXPECT_EQ(routes.Find(task), second);
  routes.Remove({task}, second);
  EXPECT_EQ(routes.Find(task), nullptr);
}

}  // namespace
}  // namespace lumen::rpc
