#include "http/http_server.h"

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <list>
#include <optional>

namespace lumen::http {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = boost::asio::ip::tcp;

struct Server::State {
  State(boost::asio::io_context& io, Handler handler, size_t max_body)
      : io(io), acceptor(io), handler(std::move(handler)), max_body(max_body) {}
  boost::asio::io_context& io;
  tcp::acceptor acceptor;
  Handler handler;
  size_t max_body;
  bool stopped = false;
  std::list<std::weak_ptr<Session>> sessions;  // to close at Stop
};

class Server::Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, std::shared_ptr<State> state)
      : stream_(std::move(socket)), state_(std::move(state)) {}

  void Start() { Read(); }
  void Close() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.close();
  }

 private:
  void Read() {
    parser_.emplace();
    parser_->body_limit(state_->max_body);
    stream_.expires_after(std::chrono::seconds(kIdleTimeoutS));
    bhttp::async_read(stream_, buffer_, *parser_,
                      [self = shared_from_this()](beast::error_code error, size_t) {
                        self->OnRead(error);
                      });
  }

  void OnRead(beast::error_code error) {
    if (error == bhttp::error::end_of_stream || error == beast::error::timeout ||
        error == boost::asio::error::operation_aborted || state_->stopped) {
      return Close();
    }
    if (error == bhttp::error::body_limit) {
      return Reply(Error(413, "the request body is larger than " +
                                  std::to_string(state_->max_body) + " bytes"),
                   /*keep_alive=*/false, 11);
    }
    if (error) return Reply(Error(400, "malformed HTTP request: " + error.message()), false, 11);
    bhttp::request<bhttp::string_body> request = parser_->release();
    Request in;
    in.method = std::string(request.method_string());
    in.target = std::string(request.target());
    in.body = std::move(request.body());
    Response out;
    try {
      out = state_->handler(in);
    } catch (const std::exception& e) {
      out = Error(500, std::string("internal error: ") + e.what());
    }
    Reply(std::move(out), request.keep_alive(), request.version());
  }

  static Response Error(int status, const std::string& message) {
    Response response;
    response.status = status;
    std::string escaped;
    for (char c : message) {
      if (c == '"' || c == '\\') escaped.push_back('\\');
      if (static_cast<unsigned char>(c) >= 0x20) escaped.push_back(c);
    }
    response.body = "{\"error\":\"" + escaped + "\"}";
    return response;
  }

  void Reply(Response response, bool keep_alive, unsigned version) {
    auto reply = std::make_shared<bhttp::response<bhttp::string_body>>(
        static_cast<bhttp::status>(response.status), version);
    reply->set(bhttp::field::server, "lumen");
    reply->set(bhttp::field::content_type, response.content_type);
    reply->set(bhttp::field::cache_control, "no-store");
    reply->keep_alive(keep_alive);
    reply->body() = std::move(response.body);
    reply->prepare_payload();
    stream_.expires_after(std::chrono::seconds(kIdleTimeoutS));
    bhttp::async_write(stream_, *reply,
                       [self = shared_from_this(), reply, keep_alive](beast::error_code error,
                                                                      size_t) {
                         if (error || !keep_alive || self->state_->stopped) return self->Close();
                         self->Read();
                       });
  }

  beast::tcp_stream stream_;
  std::shared_ptr<State> state_;
  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
};

Server::Server(boost::asio::io_context& io, Handler handler, size_t max_body)
    : state_(std::make_shared<State>(io, std::move(handler), max_body)) {}

Server::~Server() { Stop(); }

absl::StatusOr<int> Server::Listen(const std::string& host, int port) {
  beast::error_code error;
  auto address = boost::asio::ip::make_address(host, error);
  if (error) return absl::InvalidArgumentError("not an IP address: '" + host + "'");
  tcp::endpoint endpoint(address, static_cast<unsigned short>(port));
  tcp::acceptor& acceptor = state_->acceptor;
  acceptor.open(endpoint.protocol(), error);
  if (!error) acceptor.set_option(tcp::acceptor::reuse_address(true), error);
  if (!error) acceptor.bind(endpoint, error);
  if (!error) acceptor.listen(boost::asio::socket_base::max_listen_connections, error);
  if (error) {
    return absl::UnavailableError("cannot listen on " + host + ":" + std::to_string(port) +
                                  ": " + error.message());
  }
  AcceptNext(state_);
  return acceptor.local_endpoint().port();
}

void Server::AcceptNext(const std::shared_ptr<State>& state) {
  state->acceptor.async_accept([state](beast::error_code error, tcp::socket socket) {
    if (state->stopped || error == boost::asio::error::operation_aborted) return;
    if (!error) {
      auto session = std::make_shared<Session>(std::move(socket), state);
      state->sessions.remove_if([](const std::weak_ptr<Session>& s) { return s.expired(); });
      state->sessions.push_back(session);
      session->Start();
    }
    AcceptNext(state);  // a failed accept (out of descriptors, say) does not stop the rest
  });
}

void Server::Stop() {
  if (state_->stopped) return;
  state_->stopped = true;
  beast::error_code ignored;
  state_->acceptor.close(ignored);
  for (const auto& weak : state_->sessions) {
    if (auto session = weak.lock()) session->Close();
  }
  state_->sessions.clear();
}

}  // namespace lumen::http
