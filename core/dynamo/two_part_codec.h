// Dynamo's two-part message, the unit of its TCP request plane and its response stream
// (docs/wire-formats.md#dynamo-request-plane):
//
//   u64 BE header_len | u64 BE body_len | u64 BE checksum | header bytes | body bytes
//
// The checksum is XXH3-64 (seed 0) of header‖body, or 0; release builds of Dynamo write 0
// and verify nothing, debug builds verify a non-zero one. kvmock writes 0 and verifies a
// non-zero checksum it receives, so a corrupted frame from a debug peer is caught.
//
// Bytes arrive on a stream, so decoding is two steps: two_part_size() says how long the
// message at the front of a buffer is once its prefix has arrived, then decode_two_part()
// takes exactly that many bytes. Both bound the size before anything is allocated.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "core/common/result.h"

namespace kvmock::dynamo {

inline constexpr size_t kTwoPartPrefixBytes = 24;
// Dynamo's default DYN_TCP_MAX_MESSAGE_SIZE, for a whole frame.
inline constexpr size_t kDefaultMaxMessageBytes = 32u << 20;

struct TwoPartMessage {
  std::string header;
  std::string body;
  bool operator==(const TwoPartMessage&) const = default;
};

// The message's encoding with a zero checksum.
std::string encode_two_part(std::string_view header, std::string_view body);

// The total size of the message at the front of `bytes`: nullopt while the 24-byte prefix
// is incomplete. Errors: "too_large" (over `max_message_bytes`, or lengths that overflow).
Result<std::optional<size_t>> two_part_size(std::span<const uint8_t> bytes,
                                            size_t max_message_bytes);

// Decodes one message that spans exactly `bytes`. Errors: "truncated", "trailing_bytes",
// "too_large", "bad_checksum".
Result<TwoPartMessage> decode_two_part(std::span<const uint8_t> bytes, size_t max_message_bytes);

}  // namespace kvmock::dynamo
