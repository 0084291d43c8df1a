#include "transport/http/http_server.h"

#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <deque>
#include <optional>

namespace kvmock {

namespace beast = boost::beast;
namespace http = boost::beast::http;
namespace net = boost::asio;
using tcp = boost::asio::ip::tcp;

namespace {

constexpr auto kWriteTimeout = std::chrono::seconds(30);

class Session;

}  // namespace

struct HttpServer::Registry {
  std::mutex mutex;
  std::set<std::shared_ptr<void>> sessions;  // type-erased Session, removed on close
  bool stopped = false;
};

namespace {

class Session : public std::enable_shared_from_this<Session>, public HttpExchange {
 public:
  Session(tcp::socket socket, const HttpHandler& handler, const HttpServerOptions& options,
          std::shared_ptr<HttpServer::Registry> registry)
      : stream_(std::move(socket)),
        handler_(handler),
        options_(options),
        registry_(std::move(registry)) {}

  void start() {
    net::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->read_request(); });
  }

  void close_from_server() {
    net::post(stream_.get_executor(), [self = shared_from_this()] { self->close(); });
  }

  // HttpExchange. Every call hops onto the connection's strand.
  const HttpRequest& request() const override { return request_; }

  void respond(int status, std::string content_type, std::string body,
               std::map<std::string, std::string> headers) override {
    net::post(stream_.get_executor(),
              [self = shared_from_this(), status, content_type = std::move(content_type),
               body = std::move(body), headers = std::move(headers)]() mutable {
                self->send_full(status, std::move(content_type), std::move(body),
                                std::move(headers));
              });
  }

  void begin_stream(int status, std::string content_type,
                    std::map<std::string, std::string> headers) override {
    net::post(stream_.get_executor(),
              [self = shared_from_this(), status, content_type = std::move(content_type),
               headers = std::move(headers)]() mutable {
                self->send_stream_header(status, std::move(content_type), std::move(headers));
              });
  }

  void write(std::string chunk) override {
    net::post(stream_.get_executor(),
              [self = shared_from_this(), chunk = std::move(chunk)]() mutable {
                self->queue_chunk(std::move(chunk), false);
              });
  }

  void finish() override {
    net::post(stream_.get_executor(),
              [self = shared_from_this()] { self->queue_chunk(std::string(), true); });
  }

  bool client_gone() const override { return gone_.load(); }

  void on_client_gone(std::function<void()> callback) override {
    net::post(stream_.get_executor(),
              [self = shared_from_this(), callback = std::move(callback)]() mutable {
                if (self->gone_) {
                  callback();
                } else {
                  self->gone_callback_ = std::move(callback);
                }
              });
  }

 private:
  enum class Phase { kReading, kHandling, kStreaming, kDone };

  void read_request() {
    phase_ = Phase::kReading;
    responded_ = false;
    parser_.emplace();
    parser_->body_limit(options_.max_body_bytes);
    stream_.expires_after(std::chrono::seconds(options_.idle_timeout_s));
    http::async_read(
        stream_, buffer_, *parser_,
        [self = shared_from_this()](beast::error_code ec, size_t) { self->on_request(ec); });
  }

  void on_request(beast::error_code ec) {
    if (ec == http::error::body_limit) {
      keep_alive_ = false;
      phase_ = Phase::kHandling;
      send_full(
          413, "application/json",
          R"({"error":{"message":"request body too large","type":"invalid_request_error","code":413}})",
          {});
      return;
    }
    if (ec) {
      close();
      return;
    }
    const auto& message = parser_->get();
    request_ = HttpRequest{};
    request_.method = std::string(message.method_string());
    request_.target = std::string(message.target());
    request_.body = message.body();
    for (const auto& field : message) {
      std::string name(field.name_string());
      for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      request_.headers[name] = std::string(field.value());
    }
    keep_alive_ = message.keep_alive();
    version_ = message.version();
    phase_ = Phase::kHandling;
    stream_.expires_never();
    watch_for_disconnect();
    handler_(shared_from_this());
  }

  // While a request is being answered nothing should arrive from the client; a read that
  // completes with an error means the client went away.
  void watch_for_disconnect() {
    stream_.socket().async_read_some(
        net::buffer(probe_), [self = shared_from_this()](beast::error_code ec, size_t n) {
          if (ec) {
            self->mark_gone();
          } else if (n > 0) {
            self->keep_alive_ = false;  // pipelined bytes we cannot serve: close after this
          }
        });
  }

  void mark_gone() {
    if (gone_ || phase_ == Phase::kReading) return;
    gone_ = true;
    if (auto callback = std::move(gone_callback_)) callback();
  }

  void send_full(int status, std::string content_type, std::string body,
                 std::map<std::string, std::string> headers) {
    if (responded_ || phase_ == Phase::kDone) return;
    responded_ = true;
    auto response = std::make_shared<http::response<http::string_body>>(
        static_cast<http::status>(status), version_);
    response->set(http::field::server, "kvmockd");
    response->set(http::field::content_type, content_type);
    for (auto& [name, value] : headers) response->set(name, value);
    response->keep_alive(keep_alive_);
    response->body() = std::move(body);
    response->prepare_payload();
    stream_.expires_after(kWriteTimeout);
    http::async_write(stream_, *response,
                      [self = shared_from_this(), response](beast::error_code ec, size_t) {
                        self->after_response(ec);
                      });
  }

  void after_response(beast::error_code ec) {
    if (ec || !keep_alive_ || gone_) {
      close();
      return;
    }
    // Cancel the disconnect probe before reading the next request on this connection.
    beast::error_code ignored;
    stream_.socket().cancel(ignored);
    net::post(stream_.get_executor(), [self = shared_from_this()] { self->read_request(); });
  }

  void send_stream_header(int status, std::string content_type,
                          std::map<std::string, std::string> headers) {
    if (responded_ || phase_ == Phase::kDone) return;
    responded_ = true;
    phase_ = Phase::kStreaming;
    stream_header_ = std::make_shared<http::response<http::empty_body>>(
        static_cast<http::status>(status), version_);
    stream_header_->set(http::field::server, "kvmockd");
    stream_header_->set(http::field::content_type, content_type);
    stream_header_->set(http::field::cache_control, "no-cache");
    for (auto& [name, value] : headers) stream_header_->set(name, value);
    stream_header_->keep_alive(keep_alive_);
    stream_header_->chunked(true);
    header_serializer_.emplace(*stream_header_);
    writing_ = true;
    stream_.expires_after(kWriteTimeout);
    http::async_write_header(stream_, *header_serializer_,
                             [self = shared_from_this()](beast::error_code ec, size_t) {
                               self->writing_ = false;
                               if (ec) return self->close();
                               self->write_next();
                             });
  }

  void queue_chunk(std::string chunk, bool last) {
    if (phase_ != Phase::kStreaming || finishing_) return;
    if (last) {
      finishing_ = true;
    } else if (chunk.empty()) {
      return;  // an empty chunk would end the stream early
    }
    pending_.push_back(std::move(chunk));
    if (!writing_) write_next();
  }

  void write_next() {
    if (writing_ || pending_.empty()) return;
    if (gone_) return close();
    writing_ = true;
    auto chunk = std::make_shared<std::string>(std::move(pending_.front()));
    pending_.pop_front();
    const bool last = chunk->empty();
    stream_.expires_after(kWriteTimeout);
    auto done = [self = shared_from_this(), chunk, last](beast::error_code ec, size_t) {
      self->writing_ = false;
      if (ec) return self->close();
      if (last) return self->after_response({});
      self->write_next();
    };
    if (last) {
      net::async_write(stream_, http::make_chunk_last(), std::move(done));
    } else {
      net::async_write(stream_, http::make_chunk(net::buffer(*chunk)), std::move(done));
    }
  }

  void close() {
    if (phase_ == Phase::kDone) return;
    if (phase_ != Phase::kReading) mark_gone();
    phase_ = Phase::kDone;
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.close();
    std::lock_guard lock(registry_->mutex);
    registry_->sessions.erase(shared_from_this());
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  const HttpHandler& handler_;
  const HttpServerOptions& options_;
  std::shared_ptr<HttpServer::Registry> registry_;
  std::optional<http::request_parser<http::string_body>> parser_;
  HttpRequest request_;
  unsigned version_ = 11;
  bool keep_alive_ = true;
  bool responded_ = false;
  bool writing_ = false;
  bool finishing_ = false;
  Phase phase_ = Phase::kReading;
  std::atomic<bool> gone_{false};
  std::function<void()> gone_callback_;
  std::array<char, 1> probe_{};
  std::shared_ptr<http::response<http::empty_body>> stream_header_;
  std::optional<http::response_serializer<http::empty_body>> header_serializer_;
  std::deque<std::string> pending_;
};

}  // namespace

HttpServer::HttpServer(net::io_context& io, HttpHandler handler, HttpServerOptions options)
    : io_(io),
      handler_(std::move(handler)),
      options_(options),
      acceptor_(net::make_strand(io)),
      sessions_(std::make_shared<Registry>()) {}

HttpServer::~HttpServer() { stop(); }

Result<uint16_t> HttpServer::listen(const std::string& host, uint16_t port) {
  beast::error_code ec;
  const auto address = net::ip::make_address(host, ec);
  if (ec) return make_error("address", "bad listen host '" + host + "': " + ec.message());
  const tcp::endpoint endpoint(address, port);
  acceptor_.open(endpoint.protocol(), ec);
  if (!ec) acceptor_.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_.bind(endpoint, ec);
  if (!ec) acceptor_.listen(net::socket_base::max_listen_connections, ec);
  if (ec) {
    return make_error(
        "listen", "cannot listen on " + host + ":" + std::to_string(port) + ": " + ec.message());
  }
  port_ = acceptor_.local_endpoint().port();
  accept();
  return port_;
}

void HttpServer::accept() {
  acceptor_.async_accept(net::make_strand(io_), [this](beast::error_code ec, tcp::socket socket) {
    if (ec) return;  // acceptor closed
    {
      std::lock_guard lock(sessions_->mutex);
      if (sessions_->stopped) return;
      auto session = std::make_shared<Session>(std::move(socket), handler_, options_, sessions_);
      sessions_->sessions.insert(session);
      session->start();
    }
    accept();
  });
}

void HttpServer::stop() {
  std::set<std::shared_ptr<void>> sessions;
  {
    std::lock_guard lock(sessions_->mutex);
    if (sessions_->stopped) return;
    sessions_->stopped = true;
    // Emptied here, not by each session's close(): a session and the registry own each
    // other, and the posted closes may never run if the io_context stops first.
    sessions.swap(sessions_->sessions);
  }
  net::post(acceptor_.get_executor(), [this] {
    beast::error_code ignored;
    acceptor_.close(ignored);
  });
  for (const auto& session : sessions)
    std::static_pointer_cast<Session>(session)->close_from_server();
}

}  // namespace kvmock
