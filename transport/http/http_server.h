// A small HTTP/1.1 server on Boost.Beast for the admin endpoints and the workers'
// OpenAI-compatible API. Each connection lives on its own strand; handlers may answer
// from any thread (calls are posted to the connection's strand), may stream a chunked
// response (server-sent events), and learn when the client goes away so the request can
// be cancelled.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>

#include "core/common/result.h"

namespace kvmock {

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
};

using HttpHandler = std::function<void(std::shared_ptr<HttpExchange>)>;

struct HttpServerOptions {
  size_t max_body_bytes = size_t{16} * 1024 * 1024;
  int idle_timeout_s = 300;
};

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
  uint16_t port() const { return port_; }

  struct Registry;  // the open connections; defined in the .cc

 private:
  void accept();

  boost::asio::io_context& io_;
  HttpHandler handler_;
  HttpServerOptions options_;
  boost::asio::ip::tcp::acceptor acceptor_;
  uint16_t port_ = 0;
  std::shared_ptr<Registry> sessions_;
};

}  // namespace kvmock
