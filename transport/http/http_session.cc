#include "transport/http/http_session.h"

#include <poll.h>
#include <sys/socket.h>

#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>

#include "transport/http/openai_errors.h"

namespace kvmock::http_detail {

namespace beast = boost::beast;
namespace http = boost::beast::http;
namespace net = boost::asio;
using tcp = boost::asio::ip::tcp;

namespace {

constexpr auto kWriteTimeout = std::chrono::seconds(30);
// After the last answer of a connection: how long, and how many bytes, unread client data
// is drained before the socket is closed.
constexpr auto kLingerTime = std::chrono::seconds(2);
constexpr size_t kLingerBytes = size_t{1} << 20;
// Pipelined bytes held while a request is being answered; reading pauses above this.
constexpr size_t kMaxBufferedBytes = size_t{1} << 20;
// A client that closed its sending side is checked this often while its answer is pending.
constexpr auto kPeerCheckInterval = std::chrono::milliseconds(20);
constexpr std::string_view kInterimContinue = "HTTP/1.1 100 Continue\r\n\r\n";

bool expects_continue(const http::request_parser<http::string_body>::value_type& header) {
  const auto expect = header.find(http::field::expect);
  return expect != header.end() && beast::iequals(expect->value(), "100-continue");
}

}  // namespace

void ListenerState::count(const std::string& name, const std::string& help, const std::string& key,
                          const std::string& value) {
  if (metrics == nullptr) return;
  MetricLabels series = labels;
  series.emplace_back(key, value);
  metrics->counter(name, help, std::move(series)).inc();
}

Session::Session(tcp::socket socket, const HttpHandler& handler, const HttpServerOptions& options,
                 std::shared_ptr<ListenerState> state, bool refusing)
    : stream_(std::move(socket)),
      timer_(stream_.get_executor()),
      handler_(handler),
      options_(options),
      state_(std::move(state)),
      refusing_(refusing) {
  (refusing_ ? state_->refusing : state_->open).fetch_add(1);
}

Session::~Session() { release_slot(); }

// The connection no longer counts against the limit once it is closed, even while a
// handler still holds the exchange.
void Session::release_slot() {
  if (slot_released_.exchange(true)) return;
  (refusing_ ? state_->refusing : state_->open).fetch_sub(1);
}

void Session::start() {
  net::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->read_request(); });
}

void Session::refuse() {
  net::dispatch(stream_.get_executor(), [self = shared_from_this()] {
    self->phase_ = Phase::kHandling;
    self->keep_alive_ = false;
    self->send_full(503, "application/json",
                    openai_error_json(503,
                                      "too many open connections on this port (limit " +
                                          std::to_string(self->options_.max_connections) + ")",
                                      "too_many_connections", "")
                        .dump(),
                    {{"retry-after", "1"}});
  });
}

void Session::close_from_server() {
  net::post(stream_.get_executor(), [self = shared_from_this()] {
    // An answer already handed over (the last chunk of a stream ended by shutdown) is
    // written first; the write timeout bounds how long that can take.
    if (self->writing_ || !self->pending_.empty()) {
      self->close_when_written_ = true;
    } else {
      self->close();
    }
  });
}

void Session::respond(int status, std::string content_type, std::string body,
                      std::map<std::string, std::string> headers) {
  net::post(stream_.get_executor(),
            [self = shared_from_this(), status, content_type = std::move(content_type),
             body = std::move(body), headers = std::move(headers)]() mutable {
              self->send_full(status, std::move(content_type), std::move(body), std::move(headers));
            });
}

void Session::begin_stream(int status, std::string content_type,
                           std::map<std::string, std::string> headers) {
  net::post(stream_.get_executor(),
            [self = shared_from_this(), status, content_type = std::move(content_type),
             headers = std::move(headers)]() mutable {
              self->send_stream_header(status, std::move(content_type), std::move(headers));
            });
}

void Session::write(std::string chunk) {
  net::post(stream_.get_executor(),
            [self = shared_from_this(), chunk = std::move(chunk)]() mutable {
              self->queue_chunk(std::move(chunk), false);
            });
}

void Session::finish() {
  net::post(stream_.get_executor(),
            [self = shared_from_this()] { self->queue_chunk(std::string(), true); });
}

void Session::on_client_gone(std::function<void()> callback) {
  net::post(stream_.get_executor(),
            [self = shared_from_this(), callback = std::move(callback)]() mutable {
              if (self->gone_) {
                callback();
              } else {
                self->gone_callback_ = std::move(callback);
              }
            });
}

void Session::abort(bool reset) {
  if (!reset) {
    close_from_server();
    return;
  }
  net::post(stream_.get_executor(), [self = shared_from_this()] { self->close(true); });
}

template <typename Fn>
void Session::arm_timer(std::chrono::milliseconds after, Fn fn) {
  const uint64_t generation = ++timer_generation_;
  timer_.expires_after(after);
  timer_.async_wait([self = shared_from_this(), generation, fn](beast::error_code ec) {
    if (!ec && generation == self->timer_generation_ && self->phase_ != Phase::kDone) fn(*self);
  });
}

// Reading: one socket read at a time, into read_chunk_, appended to buffer_; the parser is
// fed from buffer_. Reading goes on while a request is answered, so pipelined requests are
// kept (and answered in order afterwards) and a hang-up is noticed.
void Session::read_request() {
  phase_ = Phase::kReading;
  responded_ = false;
  interim_sent_ = false;
  finishing_ = false;
  parser_.emplace();
  parser_->eager(true);
  parser_->header_limit(static_cast<std::uint32_t>(options_.max_header_bytes));
  parser_->body_limit(options_.max_body_bytes);
  arm_timer(std::chrono::seconds(options_.idle_timeout_s), [](Session& s) { s.close(); });
  parse();
}

void Session::read_more() {
  if (reading_ || peer_eof_ || phase_ == Phase::kDone) return;
  if (phase_ != Phase::kClosing && buffer_.size() >= kMaxBufferedBytes) return;
  reading_ = true;
  stream_.socket().async_read_some(
      net::buffer(read_chunk_),
      [self = shared_from_this()](beast::error_code ec, size_t n) { self->on_read(ec, n); });
}

void Session::on_read(beast::error_code ec, size_t n) {
  reading_ = false;
  if (phase_ == Phase::kDone) return;
  if (ec == net::error::eof) {
    peer_eof_ = true;
    return on_peer_eof();
  }
  if (ec) return close();
  if (phase_ == Phase::kClosing) {
    drained_ += n;
    return drained_ > kLingerBytes ? close() : read_more();
  }
  net::buffer_copy(buffer_.prepare(n), net::buffer(read_chunk_.data(), n));
  buffer_.commit(n);
  if (phase_ == Phase::kReading) return parse();
  read_more();
}

void Session::parse() {
  while (phase_ == Phase::kReading && buffer_.size() > 0) {
    beast::error_code ec;
    const size_t used = parser_->put(buffer_.data(), ec);
    buffer_.consume(used);
    if (ec == http::error::need_more) break;
    if (ec) return reject(ec);
    if (parser_->is_done()) return dispatch();
    if (parser_->is_header_done()) send_continue_if_expected();
    if (used == 0) break;
  }
  if (phase_ != Phase::kReading) return;
  if (peer_eof_) return on_peer_eof();
  read_more();
}

// A client that sent `Expect: 100-continue` waits for this interim answer (curl: up to 1 s)
// before it sends the body; the header passed its limits, so the body is welcome.
// Nothing else is being written while a request is read, so the interim goes out at once.
void Session::send_continue_if_expected() {
  if (interim_sent_ || version_of_request() < 11 || !expects_continue(parser_->get())) return;
  interim_sent_ = true;
  const ssize_t sent = ::send(stream_.socket().native_handle(), kInterimContinue.data(),
                              kInterimContinue.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
  if (sent != static_cast<ssize_t>(kInterimContinue.size())) close();
}

void Session::dispatch() {
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
  ++timer_generation_;  // no idle timeout while the answer is being produced
  timer_.cancel();
  if (peer_eof_) {
    watch_half_closed_peer();
  } else {
    read_more();
  }
  handler_(shared_from_this());
}

// A request the parser refused: 431 for a request line or header over the limit, 413 for
// a body over the limit, 400 for anything malformed; then the connection closes.
void Session::reject(beast::error_code ec) {
  int status = 400;
  std::string message = "malformed HTTP request: " + ec.message();
  std::string_view code = "malformed_request";
  if (ec == http::error::header_limit) {
    status = 431;
    message = "request header fields too large (limit " +
              std::to_string(options_.max_header_bytes) + " bytes)";
    code = "header_fields_too_large";
  } else if (ec == http::error::body_limit) {
    status = 413;
    message =
        "request body too large (limit " + std::to_string(options_.max_body_bytes) + " bytes)";
    code = "request_body_too_large";
  }
  state_->count("kvmock_http_bad_requests_total",
                "Requests refused before reaching a handler (400 malformed, 413 body too "
                "large, 431 header too large).",
                "status", std::to_string(status));
  phase_ = Phase::kHandling;
  keep_alive_ = false;
  version_ = 11;
  ++timer_generation_;
  send_full(status, "application/json", openai_error_json(status, message, code, "").dump(), {});
}

void Session::on_peer_eof() {
  switch (phase_) {
    case Phase::kReading:
      // Nothing more will come: a request cut short is answered, an idle connection closed.
      if (parser_ && parser_->got_some()) return reject(http::error::partial_message);
      return close();
    case Phase::kHandling:
      return watch_half_closed_peer();
    case Phase::kStreaming:
      // The client closed after its answer began. Nothing can provoke a reset without
      // writing into the stream, and the stream may stall (a queued request), so this is
      // taken as a hang-up, as a browser's or SDK's cancel is.
      return close();
    case Phase::kClosing:
    case Phase::kDone:
      return close();
  }
}

// The client sent FIN while its answer is pending: either it only shut down its sending
// side and still reads, or it has gone. Only a TCP reset, which a gone client sends in
// reply to data, tells them apart; an HTTP/1.1 client whose answer is not ready yet gets
// an interim 100 (Continue) to provoke it. HTTP/1.0 forbids interim answers, so there
// only the answer itself can show that the client has gone.
void Session::watch_half_closed_peer() {
  arm_timer(kPeerCheckInterval, [](Session& s) {
    if (s.phase_ != Phase::kHandling && s.phase_ != Phase::kStreaming) return;
    if (s.peer_reset()) return s.close();
    if (s.phase_ == Phase::kHandling && !s.responded_ && !s.interim_sent_ && s.version_ >= 11) {
      s.interim_sent_ = true;
      const ssize_t sent = ::send(s.stream_.socket().native_handle(), kInterimContinue.data(),
                                  kInterimContinue.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
      if (sent != static_cast<ssize_t>(kInterimContinue.size())) return s.close();
    }
    s.watch_half_closed_peer();
  });
}

bool Session::peer_reset() {
  pollfd fd{};
  fd.fd = stream_.socket().native_handle();
  fd.events = POLLOUT;
  if (::poll(&fd, 1, 0) < 0) return false;
  return (fd.revents & (POLLERR | POLLHUP)) != 0;
}

void Session::mark_gone() {
  if (gone_ || phase_ == Phase::kReading || phase_ == Phase::kClosing) return;
  gone_ = true;
  if (auto callback = std::move(gone_callback_)) callback();
}

void Session::send_full(int status, std::string content_type, std::string body,
                        std::map<std::string, std::string> headers) {
  if (responded_ || phase_ == Phase::kDone) return;
  responded_ = true;
  auto response = std::make_shared<http::response<http::string_body>>(
      static_cast<http::status>(status), version_);
  response->set(http::field::server, "kvmockd");
  response->set(http::field::content_type, content_type);
  for (auto& [name, value] : headers) response->set(name, value);
  response->keep_alive(keep_alive_);
  if (!keep_alive_ && version_ < 11) response->set(http::field::connection, "close");
  response->body() = std::move(body);
  response->prepare_payload();
  writing_ = true;
  stream_.expires_after(kWriteTimeout);
  http::async_write(stream_, *response,
                    [self = shared_from_this(), response](beast::error_code ec, size_t) {
                      self->writing_ = false;
                      self->after_response(ec);
                    });
}

void Session::after_response(beast::error_code ec) {
  if (ec || gone_ || close_when_written_) return close();
  stream_.expires_never();
  if (!keep_alive_) return linger_then_close();
  read_request();  // a pipelined request may already be buffered
}

// HTTP/1.1 streams chunked. HTTP/1.0 has no chunked encoding: the body is written as is
// and ends when the connection closes.
void Session::send_stream_header(int status, std::string content_type,
                                 std::map<std::string, std::string> headers) {
  if (responded_ || phase_ == Phase::kDone) return;
  responded_ = true;
  phase_ = Phase::kStreaming;
  chunked_ = version_ >= 11;
  if (!chunked_) keep_alive_ = false;
  stream_header_ = std::make_shared<http::response<http::empty_body>>(
      static_cast<http::status>(status), version_);
  stream_header_->set(http::field::server, "kvmockd");
  stream_header_->set(http::field::content_type, content_type);
  stream_header_->set(http::field::cache_control, "no-cache");
  for (auto& [name, value] : headers) stream_header_->set(name, value);
  stream_header_->keep_alive(keep_alive_);
  if (chunked_) {
    stream_header_->chunked(true);
  } else {
    stream_header_->set(http::field::connection, "close");
  }
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

void Session::queue_chunk(std::string chunk, bool last) {
  if (phase_ != Phase::kStreaming || finishing_) return;
  if (last) {
    finishing_ = true;
  } else if (chunk.empty()) {
    return;  // an empty chunk would end the stream early
  }
  pending_.push_back(std::move(chunk));
  if (!writing_) write_next();
}

void Session::write_next() {
  if (writing_) return;
  if (pending_.empty()) {
    if (close_when_written_) close();
    return;
  }
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
  if (!chunked_) {
    if (last) return done({}, 0);
    net::async_write(stream_, net::buffer(*chunk), std::move(done));
  } else if (last) {
    net::async_write(stream_, http::make_chunk_last(), std::move(done));
  } else {
    net::async_write(stream_, http::make_chunk(net::buffer(*chunk)), std::move(done));
  }
}

// Closing right away with unread client bytes makes the kernel send a reset, which can
// destroy the answer before the client reads it; so our side is shut down first and the
// rest of what the client sends is read and dropped, briefly.
void Session::linger_then_close() {
  if (peer_eof_) return close();
  phase_ = Phase::kClosing;
  buffer_.consume(buffer_.size());
  beast::error_code ignored;
  stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
  arm_timer(std::chrono::duration_cast<std::chrono::milliseconds>(kLingerTime),
            [](Session& s) { s.close(); });
  read_more();
}

void Session::close(bool reset) {
  if (phase_ == Phase::kDone) return;
  mark_gone();
  phase_ = Phase::kDone;
  ++timer_generation_;
  timer_.cancel();
  beast::error_code ignored;
  if (reset) {
    // SO_LINGER with a zero timeout makes close() send RST instead of FIN.
    stream_.socket().set_option(net::socket_base::linger(true, 0), ignored);
  } else {
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
  }
  stream_.close();
  release_slot();
  std::lock_guard lock(state_->mutex);
  state_->sessions.erase(shared_from_this());
}

}  // namespace kvmock::http_detail
