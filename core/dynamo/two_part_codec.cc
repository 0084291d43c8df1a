#include "core/dynamo/two_part_codec.h"

#include "core/dynamo/big_endian.h"
#include "core/tokens/block_hash.h"

namespace kvmock::dynamo {
namespace {

struct Prefix {
  uint64_t header_len;
  uint64_t body_len;
  uint64_t checksum;
};

Prefix read_prefix(std::span<const uint8_t> bytes) {
  return Prefix{load_be<uint64_t>(bytes.data()), load_be<uint64_t>(bytes.data() + 8),
                load_be<uint64_t>(bytes.data() + 16)};
}

// The message's total size, or nullopt when the lengths overflow or pass the limit.
std::optional<size_t> total_size(const Prefix& prefix, size_t max_message_bytes) {
  const uint64_t limit = max_message_bytes;
  if (prefix.header_len > limit || prefix.body_len > limit) return std::nullopt;
  const uint64_t total = kTwoPartPrefixBytes + prefix.header_len + prefix.body_len;
  if (total > limit) return std::nullopt;
  return static_cast<size_t>(total);
}

Error too_large(const Prefix& prefix, size_t max_message_bytes) {
  return make_error("too_large", "two-part message with a " + std::to_string(prefix.header_len) +
                                     "-byte header and a " + std::to_string(prefix.body_len) +
                                     "-byte body exceeds " + std::to_string(max_message_bytes) +
                                     " bytes");
}

}  // namespace

std::string encode_two_part(std::string_view header, std::string_view body) {
  std::string out;
  out.reserve(kTwoPartPrefixBytes + header.size() + body.size());
  append_be<uint64_t>(out, header.size());
  append_be<uint64_t>(out, body.size());
  append_be<uint64_t>(out, 0);
  out.append(header);
  out.append(body);
  return out;
}

Result<std::optional<size_t>> two_part_size(std::span<const uint8_t> bytes,
                                            size_t max_message_bytes) {
  if (bytes.size() < kTwoPartPrefixBytes) return std::optional<size_t>();
  const Prefix prefix = read_prefix(bytes);
  const auto total = total_size(prefix, max_message_bytes);
  if (!total) return too_large(prefix, max_message_bytes);
  return total;
}

Result<TwoPartMessage> decode_two_part(std::span<const uint8_t> bytes, size_t max_message_bytes) {
  if (bytes.size() < kTwoPartPrefixBytes) {
    return make_error("truncated", "two-part message shorter than its 24-byte prefix");
  }
  const Prefix prefix = read_prefix(bytes);
  const auto total = total_size(prefix, max_message_bytes);
  if (!total) return too_large(prefix, max_message_bytes);
  if (bytes.size() < *total) {
    return make_error("truncated", "two-part message needs " + std::to_string(*total) +
                                       " bytes, has " + std::to_string(bytes.size()));
  }
  if (bytes.size() > *total) {
    return make_error("trailing_bytes",
                      std::to_string(bytes.size() - *total) + " bytes after the two-part message");
  }
  const auto content = bytes.subspan(kTwoPartPrefixBytes);
  if (prefix.checksum != 0 && xxh3_64(content, 0) != prefix.checksum) {
    return make_error("bad_checksum", "two-part checksum does not match its contents");
  }
  const auto* text = reinterpret_cast<const char*>(content.data());
  return TwoPartMessage{std::string(text, prefix.header_len),
                        std::string(text + prefix.header_len, prefix.body_len)};
}

}  // namespace kvmock::dynamo
