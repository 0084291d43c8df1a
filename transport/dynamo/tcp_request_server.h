// Dynamo's TCP request plane, the worker side (docs/wire-formats.md#dynamo-request-plane):
// one listener per process for every mock worker's endpoints. A frontend keeps persistent
// connections and pipelines request frames on them; each frame gets exactly one answer, in
// order: an empty ACK once the request is queued (the response itself goes over the
// call-home stream, see DynamoRequestDispatcher).
//
// Bad input never stops other requests or connections. A frame that names a response
// stream is refused there (error prologue) and ACKed; a frame that cannot be answered
// (payload or control header undecodable) gets a non-empty ACK with the reason and the
// connection is closed after the ACKs before it; a frame over the size limit, or the
// connection ending or stalling inside a frame, closes the connection (the stream can no
// longer be trusted). All are counted in kvmock_dynamo_request_plane_errors_total{reason}.
//
// Listener limits: at most `max_connections` at once (more are closed at once, counted as
// "connection_limit"); accept() failures (out of descriptors) are retried with backoff
// (10 ms doubling to 1 s), counted as "accept_error".
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "core/common/result.h"
#include "core/dynamo/two_part_codec.h"
#include "transport/dynamo/request_dispatcher.h"

namespace kvmock {

struct DynamoTcpServerSettings {
  std::string host = "0.0.0.0";
  uint16_t port = 0;  // 0: an ephemeral port
  // Largest request frame, like Dynamo's DYN_TCP_MAX_MESSAGE_SIZE.
  size_t max_message_bytes = dynamo::kDefaultMaxMessageBytes;
  size_t max_connections = 1024;
  // A connection that stops sending in the middle of a frame is closed after this long.
  // Idle connections between frames stay open: the frontend pools them.
  std::chrono::milliseconds stalled_frame_timeout{30000};
};

namespace dynamo_detail {
struct TcpListenerState;
}

class DynamoTcpRequestServer {
 public:
  // `dispatcher` must outlive the server.
  DynamoTcpRequestServer(boost::asio::io_context& io, DynamoRequestDispatcher& dispatcher,
                         DynamoTcpServerSettings settings);
  ~DynamoTcpRequestServer();
  DynamoTcpRequestServer(const DynamoTcpRequestServer&) = delete;
  DynamoTcpRequestServer& operator=(const DynamoTcpRequestServer&) = delete;

  // Binds and starts accepting; returns the bound port (the advertised address is
  // "{host}:{port}").
  Result<uint16_t> start();
  // Stops accepting and closes every connection. Idempotent.
  void stop();
  uint16_t port() const { return port_; }
  size_t open_connections() const;

 private:
  void accept();
  void on_accept_error(boost::system::error_code ec);

  boost::asio::io_context& io_;
  DynamoRequestDispatcher& dispatcher_;
  const DynamoTcpServerSettings settings_;
  boost::asio::ip::tcp::acceptor acceptor_;
  boost::asio::steady_timer retry_timer_;
  std::chrono::milliseconds backoff_{0};
  uint16_t port_ = 0;
  std::shared_ptr<dynamo_detail::TcpListenerState> state_;
};

}  // namespace kvmock
