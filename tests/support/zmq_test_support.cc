#include "tests/support/zmq_test_support.h"

#include <gtest/gtest.h>

#include <thread>
#include <zmq_addon.hpp>

#include "core/events/engine_payload_codec.h"
#include "transport/zmq/seq_frame.h"
#include "transport/zmq/zmq_endpoint.h"

namespace kvmock::testing {

std::string bind_ephemeral(zmq::socket_t& socket) {
  socket.bind("tcp://127.0.0.1:0");
  return last_endpoint(socket);
}

bool wait_until(const std::function<bool()>& done, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!done()) {
    if (std::chrono::steady_clock::now() >= deadline) return done();
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

std::vector<uint8_t> payload_for(uint64_t seq, size_t size) {
  std::vector<uint8_t> payload(size);
  for (size_t i = 0; i < size; ++i) payload[i] = static_cast<uint8_t>(seq * 31 + i * 7 + 1);
  return payload;
}

void RecordingSink::on_batch(uint32_t dp_rank, uint64_t seq, std::span<const uint8_t> payload,
                             bool replayed) {
  std::lock_guard lock(mutex_);
  calls_.push_back({false, dp_rank, seq, {payload.begin(), payload.end()}, replayed});
  ++batches_;
}

void RecordingSink::on_restart(uint32_t dp_rank) {
  std::lock_guard lock(mutex_);
  calls_.push_back({true, dp_rank, 0, {}, false});
}

std::vector<RecordingSink::Call> RecordingSink::calls() const {
  std::lock_guard lock(mutex_);
  return calls_;
}

size_t RecordingSink::batch_count() const {
  std::lock_guard lock(mutex_);
  return batches_;
}

bool RecordingSink::wait_for_batches(size_t n, std::chrono::milliseconds timeout) {
  return wait_until([&] { return batch_count() >= n; }, timeout);
}

RawEngine::RawEngine(zmq::context_t& context) : socket_(context, zmq::socket_type::xpub) {
  socket_.set(zmq::sockopt::linger, 0);
  endpoint_ = bind_ephemeral(socket_);
}

bool RawEngine::wait_for_subscriber(std::chrono::milliseconds timeout) {
  zmq::pollitem_t item{socket_.handle(), 0, ZMQ_POLLIN, 0};
  zmq::poll(&item, 1, timeout);
  if ((item.revents & ZMQ_POLLIN) == 0) return false;
  zmq::message_t subscription;
  return socket_.recv(subscription, zmq::recv_flags::dontwait).has_value();
}

void RawEngine::send_frames(const std::vector<std::vector<uint8_t>>& frames) {
  std::vector<zmq::const_buffer> buffers;
  for (const auto& frame : frames) buffers.push_back(zmq::buffer(frame));
  (void)zmq::send_multipart(socket_, buffers);
}

void RawEngine::send_batch(uint64_t seq, const std::vector<uint8_t>& payload,
                           const std::string& topic) {
  const auto seq_frame = encode_seq_frame(seq);
  send_frames({std::vector<uint8_t>(topic.begin(), topic.end()),
               std::vector<uint8_t>(seq_frame.begin(), seq_frame.end()), payload});
}

std::unique_ptr<RelayedEngineSubscriber> start_subscriber(zmq::context_t& context,
                                                          RelayedEngineSubscriberOptions options,
                                                          RelayedEngineStreamSink& sink) {
  Result<std::unique_ptr<RelayedEngineSubscriber>> subscriber =
      RelayedEngineSubscriber::start(context, std::move(options), sink);
  EXPECT_TRUE(subscriber.ok()) << (subscriber.ok() ? "" : subscriber.error().message);
  if (!subscriber.ok()) return nullptr;
  return std::move(subscriber).value();
}

void read_engine_batches(zmq::socket_t& sub, std::chrono::milliseconds span,
                         const std::function<void(const ReceivedEngineBatch&)>& on_batch) {
  const auto deadline = std::chrono::steady_clock::now() + span;
  for (int i = 0; i < 10000; ++i) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return;
    zmq::pollitem_t item{sub.handle(), 0, ZMQ_POLLIN, 0};
    zmq::poll(&item, 1, left);
    if (!(item.revents & ZMQ_POLLIN)) continue;
    std::vector<zmq::message_t> frames;
    if (!zmq::recv_multipart(sub, std::back_inserter(frames), zmq::recv_flags::dontwait)) {
      continue;
    }
    ASSERT_EQ(frames.size(), 3u) << "[topic, seq, payload]";
    const auto seq = decode_seq_frame({frames[1].data<uint8_t>(), frames[1].size()});
    ASSERT_TRUE(seq.has_value());
    auto batch = decode_engine_payload({frames[2].data<uint8_t>(), frames[2].size()});
    ASSERT_TRUE(batch.ok()) << batch.error().message;
    on_batch(ReceivedEngineBatch{frames[0].to_string(), *seq, std::move(*batch)});
  }
}

}  // namespace kvmock::testing
