// Internals of HttpServer (transport/http only): one accepted connection, and what the
// connections of one listener share.
#pragma once

#include <atomic>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>

#include "transport/http/http_server.h"
#include "transport/metrics/metrics_registry.h"

namespace kvmock::http_detail {

// The open sessions of one listener (so stop() can close them) and its metrics.
struct ListenerState {
  std::mutex mutex;
  std::set<std::shared_ptr<void>> sessions;  // type-erased Session, removed on close
  bool stopped = false;
  std::atomic<size_t> open{0};      // sessions serving requests (the limit counts these)
  std::atomic<size_t> refusing{0};  // sessions answering 503 because of the limit

  MetricsRegistry* metrics = nullptr;
  MetricLabels labels;  // listener, port
  Counter fallback_refused;
  Counter* refused = &fallback_refused;

  // Counts one series of `name` with `labels` plus {key, value} (registered on first use:
  // these are rare events, so the registry lock is fine here).
  void count(const std::string& name, const std::string& help, const std::string& key,
             const std::string& value);
};

class Session : public std::enable_shared_from_this<Session>, public HttpExchange {
 public:
  Session(boost::asio::ip::tcp::socket socket, const HttpHandler& handler,
          const HttpServerOptions& options, std::shared_ptr<ListenerState> state, bool refusing);
  ~Session() override;

  // Serves requests until the client or the server closes the connection.
  void start();
  // Answers 503 at once (the listener is at its connection limit) and closes.
  void refuse();
  void close_from_server();

  // HttpExchange. Every call hops onto the connection's strand.
  const HttpRequest& request() const override { return request_; }
  void respond(int status, std::string content_type, std::string body,
               std::map<std::string, std::string> headers) override;
  void begin_stream(int status, std::string content_type,
                    std::map<std::string, std::string> headers) override;
  void write(std::string chunk) override;
  void finish() override;
  bool client_gone() const override { return gone_.load(); }
  void on_client_gone(std::function<void()> callback) override;
  void abort(bool reset) override;

 private:
  // kClosing: the last answer is written and our side shut down; unread client bytes are
  // drained for a moment so closing does not reset the connection under the answer.
  enum class Phase { kReading, kHandling, kStreaming, kClosing, kDone };

  void read_request();
  void read_more();
  void on_read(boost::beast::error_code ec, size_t n);
  void parse();
  void dispatch();
  void reject(boost::beast::error_code ec);
  void on_peer_eof();
  void watch_half_closed_peer();
  bool peer_reset();
  void send_continue_if_expected();
  unsigned version_of_request() const { return parser_->get().version(); }
  void release_slot();
  void mark_gone();
  void send_full(int status, std::string content_type, std::string body,
                 std::map<std::string, std::string> headers);
  void after_response(boost::beast::error_code ec);
  void send_stream_header(int status, std::string content_type,
                          std::map<std::string, std::string> headers);
  void queue_chunk(std::string chunk, bool last);
  void write_next();
  void linger_then_close();
  // Closes the connection; `reset` sends a TCP reset instead of an orderly close.
  void close(bool reset = false);
  template <typename Fn>
  void arm_timer(std::chrono::milliseconds after, Fn fn);

  boost::beast::tcp_stream stream_;
  boost::asio::steady_timer timer_;  // idle (reading), peer check (handling), linger (closing)
  uint64_t timer_generation_ = 0;
  std::array<char, 8192> read_chunk_{};
  boost::beast::flat_buffer buffer_;  // received, not yet parsed (pipelined requests)
  size_t drained_ = 0;
  const HttpHandler& handler_;
  const HttpServerOptions& options_;
  std::shared_ptr<ListenerState> state_;
  const bool refusing_;
  std::atomic<bool> slot_released_{false};
  std::optional<boost::beast::http::request_parser<boost::beast::http::string_body>> parser_;
  HttpRequest request_;
  unsigned version_ = 11;
  bool keep_alive_ = true;
  bool chunked_ = true;
  bool responded_ = false;
  bool reading_ = false;   // a socket read is in flight
  bool peer_eof_ = false;  // the client shut down its sending side (or closed)
  bool interim_sent_ = false;
  bool writing_ = false;
  // The server is stopping: close once what was handed over has been written.
  bool close_when_written_ = false;
  bool finishing_ = false;
  Phase phase_ = Phase::kReading;
  std::atomic<bool> gone_{false};
  std::function<void()> gone_callback_;
  std::shared_ptr<boost::beast::http::response<boost::beast::http::empty_body>> stream_header_;
  std::optional<boost::beast::http::response_serializer<boost::beast::http::empty_body>>
      header_serializer_;
  std::deque<std::string> pending_;
};

}  // namespace kvmock::http_detail
