// Two frame loops of one process that meet only through a socket file, as two processes'
// loops do; a server that answers at once; calls as futures.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <string>

#include "rpc/frame_loop.h"

namespace lumen::rpc {

struct Result {
  absl::Status status;
  std::string payload;
};

class FrameLoopTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = "/tmp/lumen_frame_test_" + std::to_string(getpid()) + ".push";
    ASSERT_TRUE(server_.Start().ok());
    ASSERT_TRUE(client_.Start().ok());
  }
  void TearDown() override {
    client_.Stop();
    server_.Stop();
    EXPECT_FALSE(std::filesystem::exists(path_));  // Stop removes the socket file
  }
  // A server that answers each request with `answer(payload)`, at once.
  void Serve(std::function<Result(const std::string&)> answer) {
    ASSERT_TRUE(server_
                    .Listen(path_,
                            [answer](const std::shared_ptr<FrameConnection>& connection,
                                     uint64_t id, std::string payload) {
                              Result result = answer(payload);
                              connection->Reply(id, result.status, result.payload);
                            })
                    .ok());
  }
  // A server that never answers; the future is ready once its first request arrived.
  std::future<void> ServeWithoutAnswering() {
    auto received = std::make_shared<std::promise<void>>();
    auto first = std::make_shared<std::once_flag>();
    EXPECT_TRUE(server_
                    .Listen(path_,
                            [received, first](const std::shared_ptr<FrameConnection>&, uint64_t,
                                              std::string) {
                              std::call_once(*first, [&] { received->set_value(); });
                            })
                    .ok());
    return received->get_future();
  }
  std::shared_ptr<FrameConnection> Connect() {
    auto connection = client_.Connect(path_);
    EXPECT_TRUE(connection.ok()) << connection.status();
    return connection.ok() ? *connection : nullptr;
  }
  static std::future<Result> Call(FrameConnection& connection, const std::string& payload) {
    auto promise = std::make_shared<std::promise<Result>>();
    connection.Call(payload, [promise](absl::Status status, std::string reply) {
      promise->set_value(Result{std::move(status), std::move(reply)});
    });
    return promise->get_future();
  }
  static Result Await(std::future<Result> future) {
    EXPECT_EQ(future.wait_for(std::chrono::seconds(30)), std::future_status::ready);
    return future.get();
  }

  std::string path_;
  FrameLoop server_;
  FrameLoop client_;
};

}  // namespace lumen::rpc
