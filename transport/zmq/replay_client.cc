#include "transport/zmq/replay_client.h"

#include <algorithm>
#include <chrono>
#include <optional>
#include <zmq_addon.hpp>

#include "transport/time/system_clock.h"
#include "transport/zmq/seq_frame.h"

namespace kvmock {
namespace {

std::span<const uint8_t> bytes(const zmq::message_t& frame) {
  return {frame.data<uint8_t>(), frame.size()};
}

constexpr int kPollSliceMs = 50;

bool implausibly_far(uint64_t seq, const ReplayRequest& request) {
  const uint64_t stop = request.stop_before_seq;
  return seq >= stop && seq - stop >= request.max_seq_ahead;
}

}  // namespace

Result<ReplayResult> fetch_replay(zmq::context_t& context, const ReplayRequest& request,
                                  const std::atomic<bool>* cancel) {
  ReplayResult result;
  // Real time: the socket polls below wait.
  const Clock& clock = SystemClock::instance();
  const auto deadline =
      clock.steady_now() + std::chrono::milliseconds(std::max(request.timeout_ms, 0));
  try {
    zmq::socket_t dealer(context, zmq::socket_type::dealer);
    dealer.set(zmq::sockopt::linger, 0);
    dealer.connect(request.endpoint);
    const auto start = encode_seq_frame(request.start_seq);
    std::array<zmq::const_buffer, 2> ask = {zmq::const_buffer(nullptr, 0), zmq::buffer(start)};
    // A DEALER queues the request until the connection is up, so this does not block.
    if (!zmq::send_multipart(dealer, ask, zmq::send_flags::dontwait)) {
      return make_error("replay_connect", "replay request to " + request.endpoint + " not queued");
    }
    std::vector<zmq::message_t> frames;
    std::optional<uint64_t> last_seq;  // of the previous reply batch
    while (result.batches.size() < request.max_batches) {
      if (cancel != nullptr && cancel->load(std::memory_order_relaxed)) break;
      const auto now = clock.steady_now();
      if (now >= deadline) break;
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now).count();
      zmq::pollitem_t item{dealer.handle(), 0, ZMQ_POLLIN, 0};
      zmq::poll(&item, 1, std::chrono::milliseconds(std::min<long>(left + 1, kPollSliceMs)));
      if ((item.revents & ZMQ_POLLIN) == 0) continue;
      frames.clear();
      if (!zmq::recv_multipart(dealer, std::back_inserter(frames), zmq::recv_flags::dontwait)) {
        continue;
      }
      ++result.replies;
      // ["", topic, seq, payload] or ["", seq, payload].
      if ((frames.size() != 3 && frames.size() != 4) || frames[0].size() != 0) {
        ++result.malformed_replies;
        continue;
      }
      const zmq::message_t& payload = frames.back();
      const std::optional<uint64_t> seq = decode_seq_frame(bytes(frames[frames.size() - 2]));
      if (!seq) {
        ++result.malformed_replies;
        continue;
      }
      if (*seq == kReplayEndSeq && payload.size() == 0) {
        result.complete = true;
        break;
      }
      if (*seq == kReplayEndSeq || payload.size() == 0) {
        ++result.malformed_replies;  // half an end marker: neither a batch nor the end
        continue;
      }
      if ((last_seq && *seq <= *last_seq) || implausibly_far(*seq, request)) {
        ++result.wrong_seq_replies;
        break;
      }
      last_seq = *seq;
      if (*seq >= request.stop_before_seq) {
        result.complete = true;
        break;
      }
      if (*seq < request.start_seq) continue;  // the server sent more than asked
      const auto data = bytes(payload);
      result.batches.push_back({*seq, std::vector<uint8_t>(data.begin(), data.end())});
    }
  } catch (const zmq::error_t& e) {
    if (result.batches.empty()) {
      return make_error("replay_connect", "replay from " + request.endpoint + ": " + e.what());
    }
  }
  return result;
}

}  // namespace kvmock
