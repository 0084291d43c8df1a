#include "transport/dynamo/tcp_request_server.h"

#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <set>

#include "core/dynamo/big_endian.h"
#include "core/dynamo/request_frame.h"
#include "transport/log/logger.h"
#include "transport/metrics/metrics_registry.h"

namespace kvmock {

namespace net = boost::asio;
using tcp = net::ip::tcp;

namespace {

constexpr size_t kReadChunk = 64 * 1024;
// ACK bytes waiting for a frontend that does not read them: reading pauses past this.
constexpr size_t kMaxPendingAckBytes = 64 * 1024;
constexpr std::chrono::milliseconds kFirstBackoff{10};
constexpr std::chrono::milliseconds kMaxBackoff{1000};

bool is_per_connection_error(const boost::system::error_code& ec) {
  return ec == net::error::connection_aborted || ec.value() == EPROTO || ec.value() == EPERM ||
         ec.value() == ECONNRESET;
}

// The payload of a frame whose lengths are consistent (request_frame_size() accepted it)
// but whose path or headers are not: it is the frame's tail.
std::string_view frame_payload(std::span<const uint8_t> frame) {
  const size_t path_len = dynamo::load_be<uint16_t>(frame.data());
  const size_t headers_len = dynamo::load_be<uint16_t>(frame.data() + 2 + path_len);
  const size_t payload_at = 2 + path_len + 2 + headers_len + 4;
  return {reinterpret_cast<const char*>(frame.data()) + payload_at, frame.size() - payload_at};
}

class Connection;

}  // namespace

namespace dynamo_detail {
// Shared by the server and its connections, so neither outlives what it touches.
struct TcpListenerState {
  std::mutex mutex;
  bool stopped = false;
  std::set<std::shared_ptr<Connection>> connections;
};
}  // namespace dynamo_detail

namespace {

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(tcp::socket socket, DynamoRequestDispatcher& dispatcher,
             const DynamoTcpServerSettings& settings,
             std::shared_ptr<dynamo_detail::TcpListenerState> state)
      : socket_(std::move(socket)),
        timer_(socket_.get_executor()),
        dispatcher_(dispatcher),
        settings_(settings),
        state_(std::move(state)) {}

  void start() {
    boost::system::error_code ignored;
    socket_.set_option(tcp::no_delay(true), ignored);
    net::post(socket_.get_executor(), [self = shared_from_this()] { self->read(); });
  }

  // From stop(): any thread.
  void close() {
    net::post(socket_.get_executor(), [self = shared_from_this()] { self->shut(); });
  }

 private:
  void read() {
    if (closed_ || closing_) return;
    if (pending_ack_bytes() > kMaxPendingAckBytes) {
      paused_ = true;  // resumed once the frontend has read its ACKs
      return;
    }
    if (buffer_.size() < size_ + kReadChunk) buffer_.resize(size_ + kReadChunk);
    arm_stall_timer();
    socket_.async_read_some(net::buffer(buffer_.data() + size_, buffer_.size() - size_),
                            [self = shared_from_this()](boost::system::error_code ec, size_t n) {
                              self->on_read(ec, n);
                            });
  }

  void arm_stall_timer() {
    if (size_ == 0) {
      timer_.cancel();
      return;
    }
    timer_.expires_after(settings_.stalled_frame_timeout);
    timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
      if (ec || self->closed_ || self->size_ == 0) return;
      self->dispatcher_.count_error("stalled_frame");
      self->shut();
    });
  }

  void on_read(boost::system::error_code ec, size_t n) {
    if (closed_) return;
    if (ec) {
      // The frontend closed its side: ACK what it sent, then close. A partial frame left
      // over cannot be answered.
      if (size_ > 0) dispatcher_.count_error("truncated");
      size_ = 0;
      timer_.cancel();
      return close_after_acks();
    }
    size_ += n;
    handle_frames();
    read();
  }

  void handle_frames() {
    size_t at = 0;
    // Each pass consumes one whole frame (at least 8 bytes), so this ends.
    while (!closing_ && at < size_) {
      const std::span<const uint8_t> rest(buffer_.data() + at, size_ - at);
      auto size = dynamo::request_frame_size(rest, settings_.max_message_bytes);
      if (!size) {
        dispatcher_.count_error(size.error().reason);
        Logger::instance().log_limited(LogSeverity::kWarn, "dynamo-frame", "dynamo",
                                       "request frame refused: " + size.error().message);
        ack("Read error: " + size.error().message);
        close_after_acks();
        break;
      }
      if (!*size || **size > rest.size()) {
        // Room for the whole frame at once, so it is read in big chunks.
        if (*size && buffer_.size() < at + **size) buffer_.resize(at + **size);
        break;
      }
      handle_frame(rest.first(**size));
      at += **size;
    }
    if (at > 0) {
      std::memmove(buffer_.data(), buffer_.data() + at, size_ - at);
      size_ -= at;
    }
    // Bound the idle buffer: a big frame's room is not kept for the small ones after it.
    if (size_ == 0 && buffer_.size() > 4 * kReadChunk) {
      buffer_.resize(kReadChunk);
      buffer_.shrink_to_fit();
    }
  }

  void handle_frame(std::span<const uint8_t> bytes) {
    auto frame = dynamo::decode_request_frame(bytes, settings_.max_message_bytes);
    const DispatchResult result =
        frame ? dispatcher_.dispatch("tcp", frame->path, frame->payload)
              : dispatcher_.reject(frame.error().reason,
                                   "Invalid request frame: " + frame.error().message,
                                   frame_payload(bytes));
    if (result.outcome == DispatchOutcome::kRejectedUnanswered) {
      // Nowhere else to say it; the frontend's pool sees the connection close.
      ack(result.error.empty() ? std::string("Invalid request") : result.error);
      close_after_acks();
      return;
    }
    ack({});
  }

  size_t pending_ack_bytes() const { return acks_writing_.size() + acks_next_.size(); }

  void ack(std::string_view text) {
    acks_next_ += dynamo::encode_request_ack(text);
    write_acks();
  }

  void write_acks() {
    if (writing_ || closed_) return;
    if (acks_next_.empty()) {
      if (closing_) shut();
      return;
    }
    writing_ = true;
    acks_writing_.swap(acks_next_);
    net::async_write(socket_, net::buffer(acks_writing_),
                     [self = shared_from_this()](boost::system::error_code ec, size_t) {
                       self->writing_ = false;
                       self->acks_writing_.clear();
                       if (ec) return self->shut();
                       self->write_acks();
                       if (self->paused_ && !self->closing_) {
                         self->paused_ = false;
                         self->read();
                       }
                     });
  }

  void close_after_acks() {
    closing_ = true;
    write_acks();
  }

  void shut() {
    if (closed_) return;
    closed_ = true;
    boost::system::error_code ignored;
    timer_.cancel();
    socket_.shutdown(tcp::socket::shutdown_both, ignored);
    socket_.close(ignored);
    std::lock_guard lock(state_->mutex);
    state_->connections.erase(shared_from_this());
  }

  tcp::socket socket_;
  net::steady_timer timer_;
  DynamoRequestDispatcher& dispatcher_;
  const DynamoTcpServerSettings settings_;  // a copy: a connection may outlive the server
  std::shared_ptr<dynamo_detail::TcpListenerState> state_;
  std::vector<uint8_t> buffer_;
  size_t size_ = 0;  // bytes of buffer_ received and not yet consumed
  std::string acks_writing_;
  std::string acks_next_;
  bool writing_ = false;
  bool paused_ = false;
  bool closing_ = false;  // no more frames are read; close once the ACKs are written
  bool closed_ = false;
};

}  // namespace

DynamoTcpRequestServer::DynamoTcpRequestServer(net::io_context& io,
                                               DynamoRequestDispatcher& dispatcher,
                                               DynamoTcpServerSettings settings)
    : io_(io),
      dispatcher_(dispatcher),
      settings_(std::move(settings)),
      acceptor_(net::make_strand(io)),
      retry_timer_(acceptor_.get_executor()),
      state_(std::make_shared<dynamo_detail::TcpListenerState>()) {}

DynamoTcpRequestServer::~DynamoTcpRequestServer() { stop(); }

Result<uint16_t> DynamoTcpRequestServer::start() {
  boost::system::error_code ec;
  const auto address = net::ip::make_address(settings_.host, ec);
  if (ec) return make_error("address", "bad listen host '" + settings_.host + "': " + ec.message());
  const tcp::endpoint endpoint(address, settings_.port);
  acceptor_.open(endpoint.protocol(), ec);
  if (!ec) acceptor_.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_.bind(endpoint, ec);
  if (!ec) acceptor_.listen(net::socket_base::max_listen_connections, ec);
  if (ec) {
    return make_error("listen", "cannot listen on " + settings_.host + ":" +
                                    std::to_string(settings_.port) + ": " + ec.message());
  }
  port_ = acceptor_.local_endpoint().port();
  dispatcher_.metrics().gauge_callback("kvmock_dynamo_request_plane_connections_open",
                                       "Open connections on the Dynamo TCP request plane listener.",
                                       {{"port", std::to_string(port_)}}, [state = state_] {
                                         std::lock_guard lock(state->mutex);
                                         return static_cast<double>(state->connections.size());
                                       });
  accept();
  return port_;
}

void DynamoTcpRequestServer::stop() {
  std::set<std::shared_ptr<Connection>> connections;
  {
    std::lock_guard lock(state_->mutex);
    if (state_->stopped) return;
    state_->stopped = true;
    connections.swap(state_->connections);
  }
  net::post(acceptor_.get_executor(), [this] {
    boost::system::error_code ignored;
    retry_timer_.cancel();
    acceptor_.close(ignored);
  });
  // The acceptor must be closed before `this` goes; when the io_context is not running
  // (shutdown), close it here: no handler of it can run concurrently then.
  if (io_.stopped()) {
    boost::system::error_code ignored;
    acceptor_.close(ignored);
  }
  for (const auto& connection : connections) connection->close();
}

size_t DynamoTcpRequestServer::open_connections() const {
  std::lock_guard lock(state_->mutex);
  return state_->connections.size();
}

void DynamoTcpRequestServer::accept() {
  acceptor_.async_accept(net::make_strand(io_), [this, state = state_](boost::system::error_code ec,
                                                                       tcp::socket socket) {
    if (ec == net::error::operation_aborted) return;  // stop(): `this` may be gone
    std::shared_ptr<Connection> connection;
    {
      std::lock_guard lock(state->mutex);
      if (state->stopped) return;
      if (ec) {
        // handled below, outside the lock
      } else if (state->connections.size() >= settings_.max_connections) {
        dispatcher_.count_error("connection_limit");
        boost::system::error_code ignored;
        socket.close(ignored);
      } else {
        connection = std::make_shared<Connection>(std::move(socket), dispatcher_, settings_, state);
        state->connections.insert(connection);
      }
    }
    if (ec) return on_accept_error(ec);
    backoff_ = std::chrono::milliseconds(0);
    if (connection) connection->start();
    accept();
  });
}

// Out of descriptors or kernel memory: accepting again at once would spin and giving up
// would leave the port dead, so retry with backoff; clients wait in the backlog.
void DynamoTcpRequestServer::on_accept_error(boost::system::error_code ec) {
  dispatcher_.count_error("accept_error");
  if (is_per_connection_error(ec)) return accept();
  if (backoff_.count() == 0) {
    log_warn("dynamo", "request plane port " + std::to_string(port_) + ": accept failed (" +
                           ec.message() + "); retrying with backoff up to 1 s");
    backoff_ = kFirstBackoff;
  } else {
    backoff_ = std::min(backoff_ * 2, kMaxBackoff);
  }
  retry_timer_.expires_after(backoff_);
  retry_timer_.async_wait([this, state = state_](boost::system::error_code wait_ec) {
    if (wait_ec) return;
    {
      std::lock_guard lock(state->mutex);
      if (state->stopped) return;
    }
    accept();
  });
}

}  // namespace kvmock
