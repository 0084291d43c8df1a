// A small HTTP/1.1 server on Boost.Beast for the admin endpoints and the workers'
// OpenAI-compatible API. Each connection lives on its own strand; handlers may answer
// from any thread (calls are posted to the connection's strand), may stream a response
// (server-sent events; chunked for HTTP/1.1, written until close for HTTP/1.0), and learn
// when the client goes away so the request can be cancelled.
//
// Protocol edges: pipelined requests are answered in order; a request line or header
// over `max_header_bytes` gets 431, a malformed request 400, a body over `max_body_bytes`
// 413 (each then closes the connection after the client has had time to read the answer).
// A client that closes its sending side after a complete request, before its answer has
// begun, still gets its answer: if the answer is not ready within a few milliseconds an
// HTTP/1.1 client first gets an interim `100 Continue`, whose echo (a TCP reset when the
// client has really gone) tells a half-close from a hang-up. A client that closes once a
// streamed answer has begun is taken to have hung up.
//
// Listener limits: at most `max_connections` connections are open at once; one more is
// answered 503 and closed. When accept() itself fails (out of file descriptors or kernel
// memory) the listener retries with backoff (10 ms doubling to 1 s) instead of stopping,
// logs once per episode, and accepting() reports the episode to readiness.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "core/common/result.h"

namespace kvmock {

class MetricsRegistry;

struct HttpRequest {
  std::string method;  // "GET", "POST", ...
  std::string target;  // path and query, e.g. "/v1/models"
  std::string body;
  std::map<std::string, std::string> headers;  // lower-cased names

  std::string path() const { return target.substr(0, target.find('?')); }
};

// One request being answered. Obtained by the handler; keep the shared_ptr while
// answering asynchronously. Exactly one of respond() or begin_stream()..finish() must be
// called; later calls are ignored.
class HttpExchange {
 public:
  virtual ~HttpExchange() = default;
  virtual const HttpRequest& request() const = 0;
  virtual void respond(int status, std::string content_type, std::string body,
                       std::map<std::string, std::string> headers = {}) = 0;
  // `headers` are extra response headers, as for respond().
  virtual void begin_stream(int status, std::string content_type,
                            std::map<std::string, std::string> headers = {}) = 0;
  virtual void write(std::string chunk) = 0;
  virtual void finish() = 0;
  // True once the client closed the connection.
  virtual bool client_gone() const = 0;
  // Called once (on the connection's strand) if the client disconnects before the
  // response is complete.
  virtual void on_client_gone(std::function<void()> callback) = 0;
  // Drops the connection without completing the answer (an injected fault): `reset` sends
  // a TCP reset at once; otherwise what was already handed over is written, then the
  // connection is closed (a stream cut mid-way: no last chunk). The on_client_gone
  // callback runs, so the request is cancelled.
  virtual void abort(bool reset) = 0;
};

using HttpHandler = std::function<void(std::shared_ptr<HttpExchange>)>;

struct HttpServerOptions {
  size_t max_body_bytes = size_t{16} * 1024 * 1024;
  size_t max_header_bytes = size_t{8} * 1024;  // request line and headers together
  int idle_timeout_s = 300;
  size_t max_connections = 1024;  // open at once; more are answered 503
  // Names the listener in metrics (label `listener`, with `port`) and readiness.
  std::string name = "http";
  // When set, the listener's metrics are registered here by listen(): must outlive the
  // server. kvmock_http_connections_open, kvmock_http_connections_refused_total,
  // kvmock_http_accept_errors_total{errno}, kvmock_http_bad_requests_total{status}.
  MetricsRegistry* metrics = nullptr;
};

namespace http_detail {
struct ListenerState;
}

class HttpServer {
 public:
  HttpServer(boost::asio::io_context& io, HttpHandler handler, HttpServerOptions options = {});
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds and starts accepting. Port 0 picks a free port. Returns the bound port.
  Result<uint16_t> listen(const std::string& host, uint16_t port);
  // Stops accepting and closes every open connection.
  void stop();
  // stop(), then waits (at most `timeout`) until the listening socket is closed, so that
  // from the return on a connection attempt is refused (a crashed worker). False on
  // timeout. Not from a thread that runs the server's io_context.
  bool stop_and_wait(std::chrono::milliseconds timeout);
  uint16_t port() const { return port_; }

  // False while accept() keeps failing (an error episode); `reason` then says why and
  // for how long. Thread-safe.
  bool accepting(std::string& reason) const;
  size_t open_connections() const;

 private:
  void accept();
  void on_accept(boost::system::error_code ec, boost::asio::ip::tcp::socket socket);
  void on_accept_error(boost::system::error_code ec);
  void retry_accept();
  void admit(boost::asio::ip::tcp::socket socket);
  void end_error_episode();

  boost::asio::io_context& io_;
  HttpHandler handler_;
  HttpServerOptions options_;
  boost::asio::ip::tcp::acceptor acceptor_;
  boost::asio::steady_timer retry_timer_;  // on the acceptor's strand
  uint16_t port_ = 0;
  std::shared_ptr<http_detail::ListenerState> state_;
  // The current accept-error episode; touched on the acceptor's strand, read under
  // episode_mutex_ by accepting().
  mutable std::mutex episode_mutex_;
  bool in_episode_ = false;
  std::string episode_error_;
  std::chrono::steady_clock::time_point episode_start_{};
  uint64_t episode_errors_ = 0;
  std::chrono::milliseconds backoff_{0};
};

}  // namespace kvmock
