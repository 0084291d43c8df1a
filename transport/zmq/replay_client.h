// Client side of vLLM's KV-event replay protocol (docs/wire-formats.md#engine-replay-protocol):
// ask an engine's replay ROUTER for every buffered batch from a start seq and collect the
// replies until the end marker, a seq we no longer need, the batch cap or the deadline.
//
// A fresh DEALER socket is used per request (linger 0), so a late reply to an earlier,
// abandoned request can never be mistaken for an answer to this one.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>
#include <zmq.hpp>

#include "core/common/result.h"

namespace kvmock {

struct ReplayRequest {
  std::string endpoint;  // the rank's replay ROUTER, already offset for the dp rank
  uint64_t start_seq = 0;
  // Stop as soon as a batch with seq >= stop_before_seq arrives: the caller already has
  // it from the live stream. kReplayEndSeq (the default) reads to the end marker.
  uint64_t stop_before_seq = ~uint64_t{0};
  int timeout_ms = 2000;       // bound on the whole exchange
  size_t max_batches = 10000;  // bound on the batches kept
  // A reply seq at or beyond stop_before_seq + max_seq_ahead is not believed: the live
  // stream cannot have moved that far during one exchange, so it is garbage, not the
  // "already have it" signal.
  uint64_t max_seq_ahead = ~uint64_t{0};
};

struct ReplayedBatch {
  uint64_t seq = 0;
  std::vector<uint8_t> payload;
};

struct ReplayResult {
  // In arrival order (the server's buffer order), only seq in [start_seq, stop_before_seq).
  std::vector<ReplayedBatch> batches;
  // True when the end marker or a seq >= stop_before_seq arrived: nothing more is owed.
  // False after the deadline, the batch cap or a cancel.
  bool complete = false;
  uint64_t replies = 0;            // reply messages received, whatever their content
  uint64_t malformed_replies = 0;  // wrong frame count, no delimiter, bad seq frame
  // A seq not above the previous reply's, or beyond max_seq_ahead: the exchange ends at
  // once (complete == false), since nothing after it can be trusted either.
  uint64_t wrong_seq_replies = 0;
  bool bad_answer() const { return malformed_replies > 0 || wrong_seq_replies > 0; }
};

// Sends ["", start_seq as 8-byte BE] and reads replies of either layout: with the topic
// frame ["", topic, seq, payload] (vLLM >= #45177) or without it ["", seq, payload]
// (older vLLM, SGLang). The end marker is seq ff×8 with an empty payload. Returns an Error
// only when the socket cannot be set up ("replay_connect"); a short or timed-out replay is
// a ReplayResult with complete == false. `cancel`, if given, is polled every 50 ms.
// `context` must outlive the call.
Result<ReplayResult> fetch_replay(zmq::context_t& context, const ReplayRequest& request,
                                  const std::atomic<bool>* cancel = nullptr);

}  // namespace kvmock
