// The frame transport between two loops of this process (as between two processes: each
// side has its own loop, they meet only through the socket file).
#include "rpc/frame_loop.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <thread>

#include "core_worker/clients.h"
#include "frame_loop_fixture.h"
#include "rpc/rpc.h"

namespace lumen::rpc {
namespace {

TEST_F(FrameLoopTest, RepliesReachTheirCallsFromManyThreads) {
  Serve([](const std::string& payload) { return Result{absl::OkStatus(), "echo " + payload}; });
  auto connection = Connect();
  ASSERT_NE(connection, nullptr);
  std::vector<std::thread> threads;
  std::vector<std::vector<std::future<Result>>> futures(4);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 500; ++i) {
        futures[t].push_back(Call(*connection, std::to_string(t) + ":" + std::to_string(i)));
      }
    });
  }
  for (auto& thread : threads) thread.join();
  for (int t = 0; t < 4; ++t) {
    for (int i = 0; i < 500; ++i) {
      Result result = Await(std::move(futures[t][i]));
      ASSERT_TRUE(result.status.ok()) << result.status;
      EXPECT_EQ(result.payload, "echo " + std::to_string(t) + ":" + std::to_string(i));
    }
  }
}

TEST_F(FrameLoopTest, RepliesMayComeInAnyOrder) {
  std::mutex mutex;
  std::vector<std::pair<std::shared_ptr<FrameConnection>, uint64_t>> held;
  std::thread replier;
  ASSERT_TRUE(server_
                  .Listen(path_,
                          [&](const std::shared_ptr<FrameConnection>& connection, uint64_t id,
                              std::string) {
                            std::lock_guard<std::mutex> lock(mutex);
                            held.emplace_back(connection, id);
                            if (held.size() < 3) return;
                            // The last request is answered first, from another thread.
                            replier = std::thread([held = held] {
                              for (size_t i = held.size(); i-- > 0;) {
                                held[i].first->Reply(held[i].second, absl::OkStatus(),
                                                     "reply " + std::to_string(i));
                              }
                            });
                          })
                  .ok());
  auto connection = Connect();
  ASSERT_NE(connection, nullptr);
  auto a = Call(*connection, "a");
  auto b = Call(*connection, "b");
  auto c = Call(*connection, "c");
  EXPECT_EQ(Await(std::move(a)).payload, "reply 0");
  EXPECT_EQ(Await(std::move(b)).payload, "reply 1");
  EXPECT_EQ(Await(std::move(c)).payload, "reply 2");
  std::lock_guard<std::mutex> lock(mutex);  // the handler has finished assigning `replier`
  replier.join();
}

TEST_F(FrameLoopTest, AnErrorStatusReachesTheCaller) {
  Serve([](const std::string& payload) {
    return Result{absl::NotFoundError("no such thing: " + payload), "ignored"};
  });
  auto connection = Connect();
  ASSERT_NE(connection, nullptr);
  Result result = Await(Call(*connection, "x"));
  EXPECT_EQ(result.status.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(result.status.message(), "no such thing: x");
  EXPECT_EQ(result.payload, "");
}

TEST_F(FrameLoopTest, PayloadsLargerThanTheSocketBufferArriveWhole) {
  Serve([](const std::string& payload) { return Result{absl::OkStatus(), payload + payload}; });
  auto connection = Connect();
  ASSERT_NE(connection, nullptr);
  std::string big(8 << 20, '\0');
  for (size_t i = 0; i < big.size(); ++i) big[i] = char(i * 7 + i / 4096);
  auto first = Call(*connection, big);
  auto second = Call(*connection, "small");  // queued behind the big one
  Result result = Await(std::move(first));
  ASSERT_TRUE(result.status.ok()) << result.status;
  EXPECT_TRUE(result.payload == big + big);
  EXPECT_EQ(Await(std::move(second)).payload, "smallsmall");
}

TEST_F(FrameLoopTest, CallsOutWhenThePeerGoesAwayFailAsDelivered) {
  std::future<void> received = ServeWithoutAnswering();
  auto connection = Connect();
  ASSERT_NE(connection, nullptr);
  auto pending = Call(*connection, "never answered");
  received.wait();
  server_.Stop();
  Result result = Await(std::move(pending));
  EXPECT_EQ(result.status.code(), absl::StatusCode::kUnavailable);
  EXPECT_FALSE(NotDelivered(result.status)) << "it reached the peer, which may have run it";
  // A later call on the dead connection surely never left: resending it is safe.
  Result later = Await(Call(*connection, "too late"));
  EXPECT_EQ(later.status.code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(NotDelivered(later.status)) << later.status;
}

TEST_F(FrameLoopTest, ConnectingWhereNothingListensFails) {
  auto connection = client_.Connect(path_);
  EXPECT_EQ(connection.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_FALSE(client_.Connect(std::string(200, 'x')).ok());  // longer than sun_path
}

TEST_F(FrameLoopTest, AMalformedFrameClosesOnlyItsConnection) {
  Serve([](const std::string& payload) { return Result{absl::OkStatus(), payload}; });
  int raw = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::strcpy(address.sun_path, path_.c_str());
  ASSERT_EQ(::connect(raw, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
  // A header announcing a 4 GiB payload of an unknown kind.
  unsigned char header[16];
  std::memset(header, 0xff, sizeof header);
  ASSERT_EQ(::write(raw, header, sizeof header), ssize_t(sizeof header));
  timeval guard{30, 0};  // a hang guard: the read below must not block for good
  ::setsockopt(raw, SOL_SOCKET, SO_RCVTIMEO, &guard, sizeof guard);
  char byte;
  EXPECT_EQ(::read(raw, &byte, 1), 0) << "the server should close the connection";
  ::close(raw);
  // Other connections are unaffected.
  auto connection = Connect();
  ASSERT_NE(connection, nullptr);
  EXPECT_EQ(Await(Call(*connection, "still here")).payload, "still here");
}

TEST_F(FrameLoopTest, StopFailsCallsOfTheStoppingSide) {
  ASSERT_TRUE(server_
                  .Listen(path_, [](const std::shared_ptr<FrameConnection>&, uint64_t,
                                    std::string) {})
                  .ok());
  auto connection = Connect();
  ASSERT_NE(connection, nullptr);
  auto pending = Call(*connection, "x");
  client_.Stop();
  Result result = Await(std::move(pending));
  EXPECT_EQ(result.status.code(), absl::StatusCode::kUnavailable);
  EXPECT_FALSE(NotDelivered(result.status)) << "it was written: the peer may run it";
  EXPECT_FALSE(client_.Connect(path_).ok());
}

TEST_F(FrameLoopTest, RepliesSentBeforeThePeerLeftReachTheirCalls) {
  // A peer (a bare socket) that answers the first call, then exits without reading the
  // rest: the answered call succeeds even though this side still had bytes to write.
  int listener = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::strcpy(address.sun_path, path_.c_str());
  ASSERT_EQ(::bind(listener, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
  ASSERT_EQ(::listen(listener, 1), 0);
  std::thread peer([&] {
    int fd = ::accept(listener, nullptr, nullptr);
    struct {
      uint32_t size;
      uint16_t kind, code;
      uint64_t id;
    } header;
    std::string body;
    ASSERT_EQ(::recv(fd, &header, sizeof header, MSG_WAITALL), ssize_t(sizeof header));
    body.resize(header.size);
    ASSERT_EQ(::recv(fd, body.data(), body.size(), MSG_WAITALL), ssize_t(body.size()));
    std::string reply = "answer to " + body;
    header.size = uint32_t(reply.size());
    header.kind = 2;  // a reply
    header.code = 0;
    ASSERT_EQ(::send(fd, &header, sizeof header, 0), ssize_t(sizeof header));
    ASSERT_EQ(::send(fd, reply.data(), reply.size(), 0), ssize_t(reply.size()));
    ::close(fd);
  });
  auto connection = Connect();
  ASSERT_NE(connection, nullptr);
  auto first = Call(*connection, "first");
  auto big = Call(*connection, std::string(16 << 20, 'x'));  // more than the socket holds
  Result answered = Await(std::move(first));
  EXPECT_TRUE(answered.status.ok()) << answered.status;
  EXPECT_EQ(answered.payload, "answer to first");
  EXPECT_EQ(Await(std::move(big)).status.code(), absl::StatusCode::kUnavailable);
  peer.join();
  ::close(listener);
  ::unlink(path_.c_str());
}

TEST(PushSocketPathTest, OnlyUnixSocketEndpointsHaveOne) {
  EXPECT_EQ(core::PushSocketPath("unix:/tmp/lumen/s/sockets/w12.sock"),
            "/tmp/lumen/s/sockets/w12.push");
  EXPECT_EQ(core::PushSocketPath("127.0.0.1:5000"), "");
  EXPECT_EQ(core::PushSocketPath("unix:/tmp/odd"), "");
}

TEST_F(FrameLoopTest, WorkerClientsPushOverFramesAndFallBackWhereNothingListens) {
  Serve([](const std::string& payload) {
    PushTasksRequest request;
    EXPECT_TRUE(request.ParseFromString(payload));
    PushTasksReply reply;
    reply.add_results()->set_task_id(request.tasks(0).task_id());
    return Result{absl::OkStatus(), reply.SerializeAsString()};
  });
  std::vector<std::string> fell_back;
  auto factory = core::MakeFrameWorkerClientFactory(
      &client_,
      [&](const std::string& endpoint, const std::string&) -> std::shared_ptr<core::WorkerClient> {
        fell_back.push_back(endpoint);
        return nullptr;
      });
  std::string base = path_.substr(0, path_.size() - std::string(".push").size());
  auto client = factory("unix:" + base + ".sock", "");
  ASSERT_NE(client, nullptr);
  EXPECT_TRUE(fell_back.empty());
  PushTasksRequest request;
  request.add_tasks()->set_task_id("t1");
  std::promise<PushTasksReply> answered;
  client->PushTasks(request, [&](absl::Status status, PushTasksReply&& reply) {
    EXPECT_TRUE(status.ok()) << status;
    answered.set_value(std::move(reply));
  });
  auto future = answered.get_future();
  ASSERT_EQ(future.wait_for(std::chrono::seconds(30)), std::future_status::ready);
  PushTasksReply reply = future.get();
  ASSERT_EQ(reply.results_size(), 1);
  EXPECT_EQ(reply.results(0).task_id(), "t1");
  EXPECT_EQ(factory("unix:" + base + "-absent.sock", ""), nullptr);
  EXPECT_EQ(factory("127.0.0.1:1", ""), nullptr);
  EXPECT_EQ(fell_back, (std::vector<std::string>{"unix:" + base + "-absent.sock", "127.0.0.1:1"}));
}

// Between nodes the same frames go over TCP: a worker listens on its node's address too,
// and a caller on another node pushes there (through the client factory), large payloads
// and many calls in flight included; a TCP address nobody answers falls back.
TEST_F(FrameLoopTest, FramesCrossTcpThroughTheClientFactory) {
  Serve([](const std::string& payload) {
    PushTasksRequest request;
    EXPECT_TRUE(request.ParseFromString(payload));
    PushTasksReply reply;
    for (const auto& task : request.tasks()) {
      reply.add_results()->set_task_id(task.task_id() + "/" + std::to_string(task.name().size()));
    }
    return Result{absl::OkStatus(), reply.SerializeAsString()};
  });
  auto tcp = server_.ListenTcp("127.0.0.1");
  ASSERT_TRUE(tcp.ok()) << tcp.status();
  EXPECT_EQ(tcp->rfind("127.0.0.1:", 0), 0u);
  EXPECT_FALSE(server_.ListenTcp("127.0.0.1").ok());  // once
  std::vector<std::string> fell_back;
  auto factory = core::MakeFrameWorkerClientFactory(
      &client_,
      [&](const std::string& endpoint, const std::string&) -> std::shared_ptr<core::WorkerClient> {
        fell_back.push_back(endpoint);
        return nullptr;
      });
  auto client = factory("127.0.0.1:9", *tcp);  // a gRPC address, and where frames go
  ASSERT_NE(client, nullptr);
  EXPECT_TRUE(fell_back.empty());
  constexpr int kCalls = 200;
  std::vector<std::promise<PushTasksReply>> answers(kCalls);
  for (int i = 0; i < kCalls; ++i) {
    PushTasksRequest request;
    auto* task = request.add_tasks();
    task->set_task_id("t" + std::to_string(i));
    task->set_name(std::string(i % 50 == 0 ? (3 << 20) : 10, 'x'));  // some span many reads
    client->PushTasks(request, [&answers, i](absl::Status status, PushTasksReply&& reply) {
      EXPECT_TRUE(status.ok()) << status;
      answers[size_t(i)].set_value(std::move(reply));
    });
  }
  for (int i = 0; i < kCalls; ++i) {
    auto future = answers[size_t(i)].get_future();
    ASSERT_EQ(future.wait_for(std::chrono::seconds(30)), std::future_status::ready);
    PushTasksReply reply = future.get();
    ASSERT_EQ(reply.results_size(), 1);
    EXPECT_EQ(reply.results(0).task_id(),
              "t" + std::to_string(i) + "/" + std::to_string(i % 50 == 0 ? (3 << 20) : 10));
  }
  EXPECT_EQ(factory("127.0.0.1:9", "127.0.0.1:1"), nullptr);  // refused: falls back
  EXPECT_EQ(factory("127.0.0.1:9", "not an address"), nullptr);
  EXPECT_EQ(fell_back, (std::vector<std::string>{"127.0.0.1:9", "127.0.0.1:9"}));
  auto malformed = client_.ConnectTcp("127.0.0.1:99999");
  EXPECT_EQ(malformed.status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace lumen::rpc
