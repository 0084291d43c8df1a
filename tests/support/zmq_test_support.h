// Helpers for tests that talk over real ZMQ sockets on 127.0.0.1: ephemeral ports, a
// recording RelayedEngineStreamSink, a raw engine stand-in whose frames the test controls, and
// bounded waiting (no test loop may spin forever).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>
#include <zmq.hpp>

#include "core/events/engine_event.h"
#include "transport/zmq/relayed_engine_subscriber.h"

namespace kvmock::testing {

// Binds `socket` to tcp://127.0.0.1:0 and returns the endpoint it got.
std::string bind_ephemeral(zmq::socket_t& socket);

// Polls `done` every millisecond until it is true or `timeout` passes; returns its last value.
bool wait_until(const std::function<bool()>& done,
                std::chrono::milliseconds timeout = std::chrono::seconds(5));

std::vector<uint8_t> payload_for(uint64_t seq, size_t size = 16);  // distinct per seq

// Records every sink call; thread-safe.
class RecordingSink : public RelayedEngineStreamSink {
 public:
  struct Call {
    bool restart = false;
    uint32_t dp_rank = 0;
    uint64_t seq = 0;
    std::vector<uint8_t> payload;
    bool replayed = false;
  };

  void on_batch(uint32_t dp_rank, uint64_t seq, std::span<const uint8_t> payload,
                bool replayed) override;
  void on_restart(uint32_t dp_rank) override;

  std::vector<Call> calls() const;
  size_t batch_count() const;
  // Waits until at least `n` batches arrived.
  bool wait_for_batches(size_t n, std::chrono::milliseconds timeout = std::chrono::seconds(5));

 private:
  mutable std::mutex mutex_;
  std::vector<Call> calls_;
  size_t batches_ = 0;
};

// A live PUB side the test drives frame by frame. It is an XPUB so the test can wait for
// the subscription to arrive before sending (a PUB drops everything sent before that).
class RawEngine {
 public:
  explicit RawEngine(zmq::context_t& context);
  const std::string& endpoint() const { return endpoint_; }
  // Waits for one subscription message; false on timeout.
  bool wait_for_subscriber(std::chrono::milliseconds timeout = std::chrono::seconds(5));
  void send_frames(const std::vector<std::vector<uint8_t>>& frames);
  void send_batch(uint64_t seq, const std::vector<uint8_t>& payload, const std::string& topic = "");

 private:
  zmq::socket_t socket_;
  std::string endpoint_;
};

// What a SUB socket receives from a vLLM-format PUB: [topic, seq, payload] frames, the
// payload decoded with the engine schema.
struct ReceivedEngineBatch {
  std::string topic;
  uint64_t seq = 0;
  EngineBatch batch;
};

// Reads from `sub` for `span` (bounded), handing each batch to `on_batch`. A message of the
// wrong shape, seq or payload is a test failure.
void read_engine_batches(zmq::socket_t& sub, std::chrono::milliseconds span,
                         const std::function<void(const ReceivedEngineBatch&)>& on_batch);

// Starts a subscriber with `options`, reporting to `sink`; a failure to start is a test
// failure (and the returned pointer is then null).
std::unique_ptr<RelayedEngineSubscriber> start_subscriber(zmq::context_t& context,
                                                          RelayedEngineSubscriberOptions options,
                                                          RelayedEngineStreamSink& sink);

}  // namespace kvmock::testing
