// One request's response stream to a Dynamo frontend, "call home"
// (docs/wire-formats.md#dynamo-response-stream): a new TCP connection to the address the
// request's control header names, carrying handshake, prologue, items, complete_final
// and the sentinel (the messages of core/dynamo/call_home.h).
//
// The frontend may write "stop" or "kill" on the connection; the stream then ends at once
// without a sentinel and calls the cancel callback, so the request is cancelled and its
// blocks freed. A connection that cannot be made, breaks, or is closed by the frontend
// before the stream completed cancels the request the same way.
//
// Threading: every public method may be called from any thread (worker threads deliver
// tokens); the work is posted to the stream's strand and never blocks the caller. Calls
// after the stream ended are ignored.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/dynamo/call_home.h"

namespace kvmock {

class MetricsRegistry;

struct CallHomeSettings {
  size_t max_message_bytes = dynamo::kDefaultMaxMessageBytes;  // control frames read back
  // Bytes queued for a frontend that does not read; past this the request is cancelled.
  size_t max_pending_bytes = size_t{64} << 20;
  // After the sentinel, how long to wait for the frontend to close (Dynamo waits 10 s).
  std::chrono::milliseconds close_wait{10000};
  std::chrono::milliseconds connect_timeout{5000};
};

// How a stream ended; the label of kvmock_dynamo_response_streams_total{result}.
enum class CallHomeEnd { kCompleted, kFailed, kStopped, kKilled, kDisconnected, kConnectFailed };
std::string_view call_home_end_name(CallHomeEnd end);

class CallHomeStream : public std::enable_shared_from_this<CallHomeStream> {
 public:
  // Not connected until start(); set the cancel callback in between. `metrics` may be null.
  static std::shared_ptr<CallHomeStream> create(boost::asio::io_context& io,
                                                dynamo::CallHomeInfo info,
                                                CallHomeSettings settings,
                                                MetricsRegistry* metrics);
  ~CallHomeStream();
  CallHomeStream(const CallHomeStream&) = delete;
  CallHomeStream& operator=(const CallHomeStream&) = delete;

  // Called at most once, on the stream's strand, when the stream ends before complete()
  // or fail() was called: the frontend stopped or killed it, or the connection failed.
  // Must be set before start().
  void set_on_cancel(std::function<void()> on_cancel);
  void start();

  // One response item (its JSON, wrapped here). The success prologue goes first.
  void send_item(std::string item_json);
  // complete_final and the sentinel, then waits (bounded) for the frontend to close.
  void complete();
  // Before any item: an error prologue. After items: an error item, complete_final and the
  // sentinel. Either way the request has failed and nothing more is sent.
  void fail(std::string message);

  const dynamo::CallHomeInfo& info() const { return info_; }

 private:
  CallHomeStream(boost::asio::io_context& io, dynamo::CallHomeInfo info, CallHomeSettings settings,
                 MetricsRegistry* metrics);
  void connect();
  void on_connected();
  void enqueue(std::string bytes);
  void ensure_prologue();
  void write_next();
  void read_control();
  void on_control_bytes(size_t n);
  void finish_writing_then(CallHomeEnd end, bool wait_for_close);
  void end(CallHomeEnd end);

  enum class State { kIdle, kConnecting, kOpen, kEnded };

  const dynamo::CallHomeInfo info_;
  const CallHomeSettings settings_;
  MetricsRegistry* metrics_;
  boost::asio::ip::tcp::socket socket_;  // its executor is the stream's strand
  boost::asio::ip::tcp::resolver resolver_;
  boost::asio::steady_timer timer_;
  std::function<void()> on_cancel_;
  State state_ = State::kIdle;
  bool prologue_sent_ = false;
  bool answered_ = false;  // complete() or fail() was called: no cancel any more
  bool writing_ = false;
  std::deque<std::string> pending_;
  size_t pending_bytes_ = 0;
  // What to do once the write queue drains after the last message.
  std::optional<CallHomeEnd> end_after_writes_;
  bool wait_for_close_ = false;
  std::vector<uint8_t> read_buffer_;
  size_t read_size_ = 0;
};

}  // namespace kvmock
