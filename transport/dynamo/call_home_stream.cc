#include "transport/dynamo/call_home_stream.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>

#include "core/events/json_writer.h"
#include "transport/log/logger.h"
#include "transport/metrics/metrics_registry.h"

namespace kvmock {

namespace net = boost::asio;
using tcp = net::ip::tcp;

namespace {

constexpr size_t kReadChunk = 4096;

// "host:port" or "[v6]:port" → (host, port); empty host on a malformed address.
std::pair<std::string, std::string> split_address(const std::string& address) {
  const size_t colon = address.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == address.size()) return {};
  std::string host = address.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  return {host, address.substr(colon + 1)};
}

std::string error_item(std::string_view message) {
  std::string item = R"({"event":"error","error":{"error_type":"Unknown","message":)";
  codec::append_json_string(item, message);
  item += "}}";
  return item;
}

}  // namespace

std::string_view call_home_end_name(CallHomeEnd end) {
  switch (end) {
    case CallHomeEnd::kCompleted:
      return "completed";
    case CallHomeEnd::kFailed:
      return "failed";
    case CallHomeEnd::kStopped:
      return "stopped";
    case CallHomeEnd::kKilled:
      return "killed";
    case CallHomeEnd::kDisconnected:
      return "disconnected";
    case CallHomeEnd::kConnectFailed:
      return "connect_failed";
  }
  return "unknown";
}

std::shared_ptr<CallHomeStream> CallHomeStream::create(net::io_context& io,
                                                       dynamo::CallHomeInfo info,
                                                       CallHomeSettings settings,
                                                       MetricsRegistry* metrics) {
  return std::shared_ptr<CallHomeStream>(
      new CallHomeStream(io, std::move(info), std::move(settings), metrics));
}

CallHomeStream::CallHomeStream(net::io_context& io, dynamo::CallHomeInfo info,
                               CallHomeSettings settings, MetricsRegistry* metrics)
    : info_(std::move(info)),
      settings_(std::move(settings)),
      metrics_(metrics),
      socket_(net::make_strand(io)),
      resolver_(socket_.get_executor()),
      timer_(socket_.get_executor()) {}

CallHomeStream::~CallHomeStream() = default;

void CallHomeStream::set_on_cancel(std::function<void()> on_cancel) {
  on_cancel_ = std::move(on_cancel);
}

void CallHomeStream::start() {
  net::post(socket_.get_executor(), [self = shared_from_this()] { self->connect(); });
}

void CallHomeStream::connect() {
  if (state_ != State::kIdle) return;
  state_ = State::kConnecting;
  auto [host, port] = split_address(info_.address);
  if (host.empty()) {
    log_warn("dynamo", "call-home address '" + info_.address + "' is not host:port");
    return end(CallHomeEnd::kConnectFailed);
  }
  timer_.expires_after(settings_.connect_timeout);
  timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
    if (!ec && self->state_ == State::kConnecting) self->end(CallHomeEnd::kConnectFailed);
  });
  resolver_.async_resolve(
      host, port,
      [self = shared_from_this()](boost::system::error_code ec, tcp::resolver::results_type found) {
        if (self->state_ != State::kConnecting) return;
        if (ec) return self->end(CallHomeEnd::kConnectFailed);
        net::async_connect(self->socket_, found,
                           [self](boost::system::error_code connect_ec, const tcp::endpoint&) {
                             if (self->state_ != State::kConnecting) return;
                             if (connect_ec) return self->end(CallHomeEnd::kConnectFailed);
                             self->on_connected();
                           });
      });
}

void CallHomeStream::on_connected() {
  timer_.cancel();
  state_ = State::kOpen;
  boost::system::error_code ignored;
  socket_.set_option(tcp::no_delay(true), ignored);
  // The handshake precedes whatever the handler queued while the connection was made.
  std::string handshake = dynamo::encode_handshake(info_.subject);
  pending_bytes_ += handshake.size();
  pending_.push_front(std::move(handshake));
  read_control();
  write_next();
}

void CallHomeStream::send_item(std::string item_json) {
  net::post(socket_.get_executor(), [self = shared_from_this(), item = std::move(item_json)] {
    if (self->state_ == State::kEnded || self->answered_) return;
    self->ensure_prologue();
    self->enqueue(dynamo::encode_stream_item(item));
  });
}

void CallHomeStream::complete() {
  net::post(socket_.get_executor(), [self = shared_from_this()] {
    if (self->state_ == State::kEnded || self->answered_) return;
    self->answered_ = true;
    self->ensure_prologue();
    self->enqueue(dynamo::encode_complete_final());
    self->enqueue(dynamo::encode_sentinel());
    self->finish_writing_then(CallHomeEnd::kCompleted, /*wait_for_close=*/true);
  });
}

void CallHomeStream::fail(std::string message) {
  net::post(socket_.get_executor(), [self = shared_from_this(), message = std::move(message)] {
    if (self->state_ == State::kEnded || self->answered_) return;
    self->answered_ = true;
    if (!self->prologue_sent_) {
      self->prologue_sent_ = true;
      self->enqueue(dynamo::encode_prologue(message));
      // Dynamo's frontend fails the request on an error prologue and drops the stream.
      return self->finish_writing_then(CallHomeEnd::kFailed, /*wait_for_close=*/false);
    }
    self->enqueue(dynamo::encode_stream_item(error_item(message)));
    self->enqueue(dynamo::encode_complete_final());
    self->enqueue(dynamo::encode_sentinel());
    self->finish_writing_then(CallHomeEnd::kFailed, /*wait_for_close=*/true);
  });
}

void CallHomeStream::ensure_prologue() {
  if (prologue_sent_) return;
  prologue_sent_ = true;
  enqueue(dynamo::encode_prologue(std::nullopt));
}

void CallHomeStream::enqueue(std::string bytes) {
  pending_bytes_ += bytes.size();
  pending_.push_back(std::move(bytes));
  if (pending_bytes_ > settings_.max_pending_bytes) {
    Logger::instance().log_limited(LogSeverity::kWarn, "call-home-backlog", "dynamo",
                                   "frontend at " + info_.address +
                                       " does not read its response stream; request " +
                                       info_.request_id + " cancelled");
    return end(CallHomeEnd::kDisconnected);
  }
  if (state_ == State::kOpen) write_next();
}

void CallHomeStream::write_next() {
  if (writing_ || state_ != State::kOpen) return;
  if (pending_.empty()) {
    if (!end_after_writes_) return;
    if (!wait_for_close_) return end(*end_after_writes_);
    // The frontend closes after the sentinel; the read loop sees its EOF. Bounded wait.
    timer_.expires_after(settings_.close_wait);
    timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
      if (!ec && self->end_after_writes_) self->end(*self->end_after_writes_);
    });
    return;
  }
  writing_ = true;
  net::async_write(socket_, net::buffer(pending_.front()),
                   [self = shared_from_this()](boost::system::error_code ec, size_t) {
                     self->writing_ = false;
                     if (self->state_ == State::kEnded) return;
                     if (ec) {
                       return self->end(self->end_after_writes_ ? *self->end_after_writes_
                                                                : CallHomeEnd::kDisconnected);
                     }
                     self->pending_bytes_ -= self->pending_.front().size();
                     self->pending_.pop_front();
                     self->write_next();
                   });
}

void CallHomeStream::finish_writing_then(CallHomeEnd end_as, bool wait_for_close) {
  end_after_writes_ = end_as;
  wait_for_close_ = wait_for_close;
  write_next();
}

void CallHomeStream::read_control() {
  if (read_buffer_.size() < read_size_ + kReadChunk) read_buffer_.resize(read_size_ + kReadChunk);
  socket_.async_read_some(net::buffer(read_buffer_.data() + read_size_, kReadChunk),
                          [self = shared_from_this()](boost::system::error_code ec, size_t n) {
                            if (self->state_ == State::kEnded) return;
                            if (ec) {
                              // EOF after the answer is the frontend's normal close; before it, a
                              // hang-up.
                              return self->end(self->end_after_writes_ && self->pending_.empty()
                                                   ? *self->end_after_writes_
                                                   : CallHomeEnd::kDisconnected);
                            }
                            self->on_control_bytes(n);
                          });
}

void CallHomeStream::on_control_bytes(size_t n) {
  read_size_ += n;
  const std::span<const uint8_t> bytes(read_buffer_.data(), read_size_);
  auto size = dynamo::two_part_size(bytes, settings_.max_message_bytes);
  if (!size) return end(CallHomeEnd::kDisconnected);
  if (!*size || **size > read_size_) return read_control();
  auto message = dynamo::decode_two_part(bytes.first(**size), settings_.max_message_bytes);
  auto control = message ? dynamo::parse_stream_control(*message)
                         : Result<dynamo::StreamControl>(message.error());
  if (!control) {
    Logger::instance().log_limited(LogSeverity::kWarn, "call-home-control", "dynamo",
                                   "unexpected message from the frontend on the response stream "
                                   "of request " +
                                       info_.request_id + ": " + control.error().message);
    return end(CallHomeEnd::kDisconnected);
  }
  // After stop or kill nothing more is sent, not even the sentinel.
  end(*control == dynamo::StreamControl::kStop ? CallHomeEnd::kStopped : CallHomeEnd::kKilled);
}

void CallHomeStream::end(CallHomeEnd end_as) {
  if (state_ == State::kEnded) return;
  state_ = State::kEnded;
  boost::system::error_code ignored;
  timer_.cancel();
  resolver_.cancel();
  socket_.shutdown(tcp::socket::shutdown_both, ignored);
  socket_.close(ignored);
  pending_.clear();
  pending_bytes_ = 0;
  if (metrics_ != nullptr) {
    metrics_
        ->counter("kvmock_dynamo_response_streams_total",
                  "Dynamo call-home response streams, by how they ended.",
                  {{"result", std::string(call_home_end_name(end_as))}})
        .inc();
  }
  if (!answered_) {
    answered_ = true;
    if (on_cancel_) on_cancel_();
  }
  on_cancel_ = nullptr;  // it may hold the request's state, which holds this stream
}

}  // namespace kvmock
