// The frontend side of Dynamo's TCP request plane, for tests. Written from the wire
// description in docs/wire-formats.md (Dynamo request plane / response stream), with its
// own encoders, so it checks the worker's code rather than mirroring it.
//
// It plays a Dynamo frontend: it listens for call-home connections on 127.0.0.1, sends
// request frames (path, headers, two-part payload whose control header names that
// listener) on a request-plane connection, reads the ACKs, accepts each request's
// response stream, and can write "stop" or "kill" on it. Every read is bounded by a
// timeout, so a worker that does not answer fails the test instead of hanging it.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace kvmock::testing {

using namespace std::chrono_literals;

// One two-part message (u64 header_len | u64 body_len | u64 checksum | header | body).
struct FrontendMessage {
  std::string header;
  std::string body;
};

std::string frontend_encode_two_part(const std::string& header, const std::string& body);
std::string frontend_encode_request_frame(const std::string& path, const std::string& headers,
                                          const std::string& payload);

// What a response stream carried, read to its end.
struct FrontendResponse {
  bool handshake_ok = false;          // the handshake named the expected subject
  std::optional<std::string> error;   // the prologue's error, when not null
  std::vector<nlohmann::json> items;  // each item's "data"
  bool complete_final = false;
  bool sentinel = false;
  bool timed_out = false;
  std::string protocol_error;  // anything out of order; empty when the stream was well formed
};

// One accepted response stream.
class FrontendResponseStream {
 public:
  FrontendResponseStream(int fd, std::string subject);
  ~FrontendResponseStream();
  FrontendResponseStream(const FrontendResponseStream&) = delete;
  FrontendResponseStream& operator=(const FrontendResponseStream&) = delete;

  const std::string& subject() const { return subject_; }
  // The next message, nullopt on EOF, timeout (timed_out() then true) or a malformed one.
  std::optional<FrontendMessage> read_message(std::chrono::milliseconds timeout = 5s);
  bool timed_out() const { return timed_out_; }
  // Reads the prologue; true on {"error":null}. Otherwise `error` gets the error text.
  bool read_prologue(std::string* error = nullptr, std::chrono::milliseconds timeout = 5s);
  // The next item's "data", or nullopt (EOF, control message, complete_final).
  std::optional<nlohmann::json> read_item(std::chrono::milliseconds timeout = 5s);
  // Reads everything after the handshake to the sentinel (or EOF / timeout).
  FrontendResponse read_all(std::chrono::milliseconds timeout = 5s);
  // True when the worker closes the stream within `timeout` with nothing more sent.
  bool closed_without_more(std::chrono::milliseconds timeout = 5s);
  void send_stop();
  void send_kill();
  void close();

 private:
  friend class DynamoFrontendClient;  // names the stream once its handshake is read
  int fd_;
  std::string subject_;
  std::string buffer_;
  bool timed_out_ = false;
};

class DynamoFrontendClient {
 public:
  DynamoFrontendClient();  // starts the call-home listener
  ~DynamoFrontendClient();
  DynamoFrontendClient(const DynamoFrontendClient&) = delete;
  DynamoFrontendClient& operator=(const DynamoFrontendClient&) = delete;

  uint16_t call_home_port() const { return call_home_port_; }

  // A request-plane connection to 127.0.0.1:`port`; several may be open.
  bool connect(uint16_t port);
  // Each request gets a fresh id and subject. The payload is a header+data two-part
  // message: the RequestControlMessage naming the call-home listener, and `body`.
  struct Sent {
    std::string request_id;
    std::string subject;
  };
  Sent make_request(std::string* payload, const std::string& body);
  // Sends the frame for `path` on connection `connection` (index in connect() order).
  Sent send_request(const std::string& path, const std::string& body, size_t connection = 0);
  void send_raw(const std::string& bytes, size_t connection = 0);
  void shutdown_send(size_t connection = 0);
  // The next ACK's text (empty = queued), or nullopt on EOF / timeout.
  std::optional<std::string> read_ack(size_t connection = 0,
                                      std::chrono::milliseconds timeout = 5s);
  // True when the worker closed the connection (EOF) within the timeout.
  bool connection_closed(size_t connection = 0, std::chrono::milliseconds timeout = 5s);

  // Accepts the next call-home connection and checks its handshake; nullptr on timeout or
  // a bad handshake.
  std::unique_ptr<FrontendResponseStream> accept_stream(std::chrono::milliseconds timeout = 5s);
  // Accepts streams until the one for `subject`; others accepted meanwhile are kept for
  // later calls.
  std::unique_ptr<FrontendResponseStream> stream_for(const std::string& subject,
                                                     std::chrono::milliseconds timeout = 5s);

 private:
  int listen_fd_ = -1;
  uint16_t call_home_port_ = 0;
  std::vector<int> connections_;
  std::vector<std::string> ack_buffers_;
  std::vector<std::unique_ptr<FrontendResponseStream>> unclaimed_;
  uint64_t next_request_ = 1;
};

}  // namespace kvmock::testing
