// The 8-byte big-endian sequence frame of vLLM's KV-event stream and replay replies
// (docs/wire-formats.md#engine-zmq-stream and #engine-replay-protocol).
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>

namespace kvmock {

inline constexpr size_t kSeqFrameSize = 8;
// Seq of the replay end marker: -1 as a signed 64-bit integer, ff×8 on the wire.
inline constexpr uint64_t kReplayEndSeq = ~uint64_t{0};

inline std::array<uint8_t, kSeqFrameSize> encode_seq_frame(uint64_t seq) {
  std::array<uint8_t, kSeqFrameSize> out{};
  for (size_t i = 0; i < kSeqFrameSize; ++i) {
    out[i] = static_cast<uint8_t>(seq >> (8 * (kSeqFrameSize - 1 - i)));
  }
  return out;
}

// nullopt unless the frame is exactly 8 bytes.
inline std::optional<uint64_t> decode_seq_frame(std::span<const uint8_t> frame) {
  if (frame.size() != kSeqFrameSize) return std::nullopt;
  uint64_t seq = 0;
  for (uint8_t byte : frame) seq = (seq << 8) | byte;
  return seq;
}

}  // namespace kvmock
