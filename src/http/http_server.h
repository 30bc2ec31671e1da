// A small HTTP/1.1 server on Boost.Beast, run on a daemon's own event loop: the head's
// state API (and, later, metrics, jobs and the dashboard) are routes of one handler.
// Requests are read with a body limit and a timeout; each is answered by the handler on
// the loop, in order, with keep-alive.
#pragma once

#include <boost/asio/io_context.hpp>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace lumen::http {

struct Request {
  std::string method;  // "GET", "POST", ...
  std::string target;  // path and query, as sent
  std::string body;
};

struct Response {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
};

/// Runs on the loop's thread; must not block.
using Handler = std::function<Response(const Request&)>;

class Server {
 public:
  /// Requests whose body is larger than this are refused (413).
  static constexpr size_t kDefaultMaxBody = 1 << 20;
  /// A connection idle (or a request unfinished) this long is closed.
  static constexpr int kIdleTimeoutS = 60;

  Server(boost::asio::io_context& io, Handler handler, size_t max_body = kDefaultMaxBody);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  /// Binds host:port (0: a free port) and starts accepting; returns the bound port. Call
  /// before the loop runs, or on it.
  absl::StatusOr<int> Listen(const std::string& host, int port);
  /// Stops accepting and closes every connection. On the loop's thread (or after it).
  void Stop();

 private:
  class Session;
  struct State;
  static void AcceptNext(const std::shared_ptr<State>& state);
  std::shared_ptr<State> state_;
};

}  // namespace lumen::http
