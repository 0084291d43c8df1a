#include "core/events/envelope_codec.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tests/unit/events/codec_test_util.h"

namespace kvmock {
namespace {

using testing_util::from_hex;
using testing_util::kGoldenRouterEventHex;
using testing_util::to_hex;

// The §2.4 example: the golden router event wrapped for topic "kv-events".
EventEnvelope example_envelope() {
  EventEnvelope env;
  env.publisher_id = 123456789;
  env.sequence = 0;
  env.published_at = 1700000000000;  // 0x18bcfe56800
  env.topic = "kv-events";
  env.payload = from_hex(kGoldenRouterEventHex);
  return env;
}

// 85 ac"publisher_id" ce075bcd15 a8"sequence" 00 ac"published_at" cf0000018bcfe56800
// a5"topic" a9"kv-events" a7"payload" c4be
constexpr std::string_view kExamplePrefixHex =
    "85ac7075626c69736865725f6964ce075bcd15a873657175656e636500ac7075626c69736865645f6174"
    "cf0000018bcfe56800a5746f706963a96b762d6576656e7473a77061796c6f6164c4be";

TEST(EnvelopeCodec, SpecExampleHasTheDocumentedPrefixAndLength) {
  const auto bytes = encode_event_envelope_msgpack(example_envelope());
  EXPECT_EQ(bytes.size(), 267u);
  const std::string hex = to_hex(bytes);
  EXPECT_EQ(hex.substr(0, kExamplePrefixHex.size()), kExamplePrefixHex);
  EXPECT_EQ(hex.substr(kExamplePrefixHex.size()), kGoldenRouterEventHex);
}

TEST(EnvelopeCodec, RoundTripReproducesEveryField) {
  const EventEnvelope env = example_envelope();
  auto decoded = decode_event_envelope_msgpack(encode_event_envelope_msgpack(env));
  ASSERT_TRUE(decoded.ok()) << decoded.error().message;
  EXPECT_EQ(*decoded, env);
}

TEST(EnvelopeCodec, LargeAndEmptyValuesRoundTrip) {
  EventEnvelope env;
  env.publisher_id = UINT64_MAX;
  env.sequence = 1ull << 63;
  env.published_at = 0;
  env.topic = std::string(40, 't');               // str8 form
  env.payload = std::vector<uint8_t>(300, 0xc1);  // bin16 form; content is opaque
  const auto bytes = encode_event_envelope_msgpack(env);
  const std::string hex = to_hex(bytes);
  EXPECT_NE(hex.find("a5746f706963d928"), std::string::npos);
  EXPECT_NE(hex.find("a77061796c6f6164c5012c"), std::string::npos);
  auto decoded = decode_event_envelope_msgpack(bytes);
  ASSERT_TRUE(decoded.ok()) << decoded.error().message;
  EXPECT_EQ(*decoded, env);

  EventEnvelope empty;
  auto decoded_empty = decode_event_envelope_msgpack(encode_event_envelope_msgpack(empty));
  ASSERT_TRUE(decoded_empty.ok());
  EXPECT_EQ(*decoded_empty, empty);
}

TEST(EnvelopeCodec, EncoderAppends) {
  std::vector<uint8_t> out{1, 2};
  encode_event_envelope_msgpack(example_envelope(), out);
  EXPECT_EQ(out.size(), 269u);
  EXPECT_EQ(out[2], 0x85);
}

TEST(EnvelopeCodec, DecoderAcceptsOtherKeyOrderAndUnknownKeys) {
  // {"topic":"t","payload":bin[1]{0x07},"published_at_ns":5,"sequence":2,
  //  "published_at":3,"publisher_id":1}
  const auto bytes = from_hex(
      "86a5746f706963a174a77061796c6f6164c40107af7075626c69736865645f61745f6e7305a873657175656e"
      "636502ac7075626c69736865645f617403ac7075626c69736865725f696401");
  auto decoded = decode_event_envelope_msgpack(bytes);
  ASSERT_TRUE(decoded.ok()) << decoded.error().message;
  EXPECT_EQ(decoded->publisher_id, 1u);
  EXPECT_EQ(decoded->sequence, 2u);
  EXPECT_EQ(decoded->published_at, 3u);
  EXPECT_EQ(decoded->topic, "t");
  EXPECT_EQ(decoded->payload, std::vector<uint8_t>{7});
}

TEST(EnvelopeCodec, PayloadMustBeBinary) {
  // payload as str "x"
  const auto bytes = from_hex(
      "85ac7075626c69736865725f696401a873657175656e636502ac7075626c69736865645f617403a5746f7069"
      "63a174a77061796c6f6164a178");
  auto decoded = decode_event_envelope_msgpack(bytes);
  ASSERT_FALSE(decoded.ok());
  EXPECT_EQ(decoded.error().reason, "bad_type");
  EXPECT_EQ(decoded.error().message, "payload: expected binary, got string");
}

TEST(EnvelopeCodec, EveryFieldIsRequired) {
  // The example without its payload key.
  auto decoded = decode_event_envelope_msgpack(from_hex(
      "84ac7075626c69736865725f696401a873657175656e636502ac7075626c69736865645f617403a5746f7069"
      "63a174"));
  ASSERT_FALSE(decoded.ok());
  EXPECT_EQ(decoded.error().reason, "missing_field");
  EXPECT_EQ(decoded.error().message, "payload: required field is missing");
}

TEST(EnvelopeCodec, TruncatedEnvelopeIsRejectedAtEveryLength) {
  const auto full = encode_event_envelope_msgpack(example_envelope());
  for (size_t n = 0; n < full.size(); ++n) {
    auto decoded = decode_event_envelope_msgpack(std::span(full.data(), n));
    ASSERT_FALSE(decoded.ok()) << n;
    EXPECT_EQ(decoded.error().reason, "truncated") << n;
  }
}

}  // namespace
}  // namespace kvmock
