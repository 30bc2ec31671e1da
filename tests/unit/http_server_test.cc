// The HTTP server the head's state API runs on: real sockets, a Beast client.
#include <gtest/gtest.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <stdexcept>

#include "common/event_loop.h"
#include "http/http_server.h"

namespace lumen::http {
namespace {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = boost::asio::ip::tcp;

class HttpServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = std::make_unique<Server>(
        loop_.io(),
        [](const Request& request) {
          if (request.target == "/throw") throw std::runtime_error("boom");
          Response response;
          response.body = request.method + " " + request.target + " " +
                          std::to_string(request.body.size());
          return response;
        },
        /*max_body=*/1000);
    auto port = server_->Listen("127.0.0.1", 0);
    ASSERT_TRUE(port.ok()) << port.status();
    port_ = *port;
    loop_.Start();
  }
  void TearDown() override {
    loop_.Post([this] { server_->Stop(); });
    loop_.Stop();
  }

  tcp::socket Connect() {
    tcp::socket socket(client_io_);
    socket.connect(tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), port_));
    return socket;
  }

  static bhttp::response<bhttp::string_body> Send(tcp::socket& socket, bhttp::verb verb,
                                                  const std::string& target,
                                                  std::string body = "") {
    bhttp::request<bhttp::string_body> request(verb, target, 11);
    request.set(bhttp::field::host, "127.0.0.1");
    request.body() = std::move(body);
    request.prepare_payload();
    bhttp::write(socket, request);
    beast::flat_buffer buffer;
    bhttp::response<bhttp::string_body> response;
    bhttp::read(socket, buffer, response);
    return response;
  }

  EventLoop loop_{"http-test"};
  std::unique_ptr<Server> server_;
  int port_ = 0;
  boost::asio::io_context client_io_;
};

TEST_F(HttpServerTest, AnswersRequestsOnOneKeptAliveConnection) {
  tcp::socket socket = Connect();
  auto first = Send(socket, bhttp::verb::get, "/api/v0/tasks?limit=1");
  EXPECT_EQ(first.result_int(), 200);
  EXPECT_EQ(first.body(), "GET /api/v0/tasks?limit=1 0");
  EXPECT_EQ(first[bhttp::field::content_type], "application/json");
  auto second = Send(socket, bhttp::verb::post, "/x", "hello");
  EXPECT_EQ(second.body(), "POST /x 5");
}

TEST_F(HttpServerTest, RefusesABodyAboveTheLimit) {
  tcp::socket socket = Connect();
  auto response = Send(socket, bhttp::verb::post, "/x", std::string(5000, 'a'));
  EXPECT_EQ(response.result_int(), 413);
  EXPECT_NE(response.body().find("larger than 1000 bytes"), std::string::npos);
  // And the server still serves others.
  tcp::socket next = Connect();
  EXPECT_EQ(Send(next, bhttp::verb::get, "/ok").result_int(), 200);
}

TEST_F(HttpServerTest, AnswersMalformedRequestsAndHandlerErrors) {
  tcp::socket socket = Connect();
  boost::asio::write(socket, boost::asio::buffer(std::string("NOT HTTP AT ALL\r\n\r\n")));
  beast::flat_buffer buffer;
  bhttp::response<bhttp::string_body> response;
  bhttp::read(socket, buffer, response);
  EXPECT_EQ(response.result_int(), 400);
  EXPECT_NE(response.body().find("malformed HTTP request"), std::string::npos);

  tcp::socket other = Connect();
  auto failed = Send(other, bhttp::verb::get, "/throw");
  EXPECT_EQ(failed.result_int(), 500);
  EXPECT_NE(failed.body().find("boom"), std::string::npos);
}

TEST_F(HttpServerTest, StopClosesOpenConnections) {
  tcp::socket socket = Connect();
  EXPECT_EQ(Send(socket, bhttp::verb::get, "/").result_int(), 200);
  loop_.Post([this] { server_->Stop(); });
  char byte;
  beast::error_code error;
  boost::asio::read(socket, boost::asio::buffer(&byte, 1), error);
  EXPECT_TRUE(error == boost::asio::error::eof || error == boost::asio::error::connection_reset)
      << error.message();
  EXPECT_THROW(Connect(), boost::system::system_error);
}

TEST(HttpServerListenTest, ABusyPortIsAClearError) {
  EventLoop loop("http-test");
  Server first(loop.io(), [](const Request&) { return Response(); });
  auto port = first.Listen("127.0.0.1", 0);
  ASSERT_TRUE(port.ok());
  Server second(loop.io(), [](const Request&) { return Response(); });
  auto busy = second.Listen("127.0.0.1", *port);
  EXPECT_FALSE(busy.ok());
  EXPECT_NE(busy.status().message().find("cannot listen on 127.0.0.1:"), std::string::npos)
      << busy.status();
  EXPECT_FALSE(second.Listen("not-an-ip", 0).ok());
}

}  // namespace
}  // namespace lumen::http
