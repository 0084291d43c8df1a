#include "core/dynamo/two_part_codec.h"

#include <gtest/gtest.h>

#include "core/dynamo/call_home.h"
#include "core/dynamo/request_frame.h"
#include "core/tokens/block_hash.h"

namespace kvmock::dynamo {
namespace {

std::string from_hex(std::string_view hex) {
  std::string out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) {
    out.push_back(static_cast<char>(std::stoi(std::string(hex.substr(i, 2)), nullptr, 16)));
  }
  return out;
}

std::span<const uint8_t> bytes_of(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

// Byte vectors of Dynamo 1.0's response stream, checksum 0 (docs/wire-formats.md).
TEST(DynamoTwoPart, ResponseStreamMessagesAreByteExact) {
  EXPECT_EQ(encode_handshake("5f0e6c1a-2b3c-4d5e-8f90-a1b2c3d4e5f6"),
            from_hex("000000000000004b00000000000000000000000000000000"
                     "7b227375626a656374223a2235663065366331612d326233632d346435652d386639"
                     "302d613162326333643465356636222c2273747265616d5f74797065223a22726573"
                     "706f6e7365227d"));
  EXPECT_EQ(encode_prologue(std::nullopt),
            from_hex("000000000000000e00000000000000000000000000000000"
                     "7b226572726f72223a6e756c6c7d"));
  EXPECT_EQ(encode_complete_final(), from_hex("000000000000000000000000000000170000000000000000"
                                              "7b22636f6d706c6574655f66696e616c223a747275657d"));
  EXPECT_EQ(encode_sentinel(), from_hex("000000000000000a00000000000000000000000000000000"
                                        "2273656e74696e656c22"));
}

TEST(DynamoTwoPart, StopAndKillFromTheFrontendAreRecognised) {
  const std::string stop = from_hex("0000000000000006000000000000000000000000000000002273746f7022");
  const std::string kill = from_hex("000000000000000600000000000000000000000000000000226b696c6c22");
  auto stop_message = decode_two_part(bytes_of(stop), kDefaultMaxMessageBytes);
  auto kill_message = decode_two_part(bytes_of(kill), kDefaultMaxMessageBytes);
  ASSERT_TRUE(stop_message && kill_message);
  EXPECT_EQ(*parse_stream_control(*stop_message), StreamControl::kStop);
  EXPECT_EQ(*parse_stream_control(*kill_message), StreamControl::kKill);
  EXPECT_EQ(parse_stream_control({"\"sentinel\"", ""}).error().reason, "bad_control");
  EXPECT_EQ(parse_stream_control({"\"stop\"", "x"}).error().reason, "bad_control");
}

TEST(DynamoTwoPart, ErrorPrologueEscapesTheMessage) {
  auto decoded = decode_two_part(bytes_of(encode_prologue("bad \"x\"\n")), 1024);
  ASSERT_TRUE(decoded);
  EXPECT_EQ(decoded->header, R"({"error":"bad \"x\"\n"})");
  EXPECT_TRUE(decoded->body.empty());
}

TEST(DynamoTwoPart, ItemsWrapTheirJsonAndRoundTrip) {
  const std::string encoded = encode_stream_item(R"({"token_ids":[7]})");
  auto size = two_part_size(bytes_of(encoded), 1024);
  ASSERT_TRUE(size && size->has_value());
  EXPECT_EQ(**size, encoded.size());
  auto decoded = decode_two_part(bytes_of(encoded), 1024);
  ASSERT_TRUE(decoded);
  EXPECT_TRUE(decoded->header.empty());
  EXPECT_EQ(decoded->body, R"({"data":{"token_ids":[7]},"complete_final":false})");
}

TEST(DynamoTwoPart, ANonZeroChecksumIsVerified) {
  // Dynamo's own test pair: xxh3_64("header databody data", 0) = 5441388205477529151.
  EXPECT_EQ(xxh3_64(std::string_view("header databody data"), 0), 5441388205477529151u);
  std::string message = encode_two_part("header data", "body data");
  const uint64_t checksum = 5441388205477529151u;
  for (int i = 0; i < 8; ++i) message[16 + i] = static_cast<char>(checksum >> (8 * (7 - i)));
  auto good = decode_two_part(bytes_of(message), 1024);
  ASSERT_TRUE(good) << good.error().message;
  EXPECT_EQ(good->header, "header data");
  EXPECT_EQ(good->body, "body data");
  message.back() = 'X';
  EXPECT_EQ(decode_two_part(bytes_of(message), 1024).error().reason, "bad_checksum");
}

TEST(DynamoTwoPart, SizeIsBoundedBeforeAnythingIsRead) {
  const std::string exact = encode_two_part("h", std::string(100 - 24 - 1, 'b'));
  ASSERT_EQ(exact.size(), 100u);
  EXPECT_TRUE(decode_two_part(bytes_of(exact), 100));
  EXPECT_EQ(decode_two_part(bytes_of(exact), 99).error().reason, "too_large");
  EXPECT_EQ(two_part_size(bytes_of(exact), 99).error().reason, "too_large");
  // Lengths near 2^64 must not wrap around into a small total.
  std::string huge = from_hex("ffffffffffffffff00000000000000200000000000000000");
  EXPECT_EQ(two_part_size(bytes_of(huge), kDefaultMaxMessageBytes).error().reason, "too_large");
  EXPECT_FALSE(two_part_size(bytes_of(huge).first(23), 100)->has_value());
  EXPECT_EQ(decode_two_part(bytes_of(exact).first(50), 100).error().reason, "truncated");
  EXPECT_EQ(decode_two_part(bytes_of(exact + "z"), 200).error().reason, "trailing_bytes");
}

TEST(DynamoRequestFrame, RoundTripsAndIsSizedIncrementally) {
  RequestFrame frame;
  frame.path = "694d99c0acbd2001/generate";
  frame.headers = {{"x-endpoint-path", frame.path}, {"x-request-id", "r1"}};
  frame.payload = encode_two_part("{}", "{}");
  const std::string encoded = encode_request_frame(frame);
  for (size_t prefix = 0; prefix < encoded.size(); ++prefix) {
    auto size = request_frame_size(bytes_of(encoded).first(prefix), 1 << 20);
    ASSERT_TRUE(size);
    if (size->has_value()) {
      EXPECT_EQ(**size, encoded.size()) << prefix;
    }
  }
  auto decoded = decode_request_frame(bytes_of(encoded), 1 << 20);
  ASSERT_TRUE(decoded) << decoded.error().message;
  EXPECT_EQ(decoded->path, frame.path);
  EXPECT_EQ(decoded->headers, frame.headers);
  EXPECT_EQ(decoded->payload, frame.payload);
  EXPECT_EQ(encode_request_ack(), std::string(4, '\0'));
}

TEST(DynamoRequestFrame, MalformedFramesGetANamedError) {
  RequestFrame frame{"1/generate", {}, "p"};
  const std::string good = encode_request_frame(frame);
  EXPECT_EQ(request_frame_size(bytes_of(good), 5).error().reason, "too_large");
  EXPECT_EQ(decode_request_frame(bytes_of(good).first(3), 100).error().reason, "truncated");
  EXPECT_EQ(decode_request_frame(bytes_of(good).first(good.size() - 1), 100).error().reason,
            "truncated");
  EXPECT_EQ(decode_request_frame(bytes_of(good + "x"), 100).error().reason, "trailing_bytes");
  RequestFrame no_slash{"generate", {}, ""};
  const std::string bad_path = encode_request_frame(no_slash);
  EXPECT_EQ(decode_request_frame(bytes_of(bad_path), 100).error().reason, "bad_path");
  std::string bad_headers = good;
  // Replace "{}" (the empty header object) with "[]".
  bad_headers.replace(2 + frame.path.size() + 2, 2, "[]");
  EXPECT_EQ(decode_request_frame(bytes_of(bad_headers), 100).error().reason, "bad_headers");
}

TEST(DynamoCallHome, RequestControlHeaderGivesWhereToAnswer) {
  const std::string header =
      R"({"id":"req-1","request_type":"single_in","response_type":"many_out",)"
      R"("connection_info":{"transport":"tcp_server","info":"{\"address\":\"10.0.0.9:37221\",)"
      R"(\"subject\":\"5f0e6c1a\",\"context\":\"req-1\",\"stream_type\":\"response\"}"}})";
  auto info = parse_request_control(header);
  ASSERT_TRUE(info) << info.error().message;
  EXPECT_EQ(info->request_id, "req-1");
  EXPECT_EQ(info->address, "10.0.0.9:37221");
  EXPECT_EQ(info->subject, "5f0e6c1a");

  std::string mismatch = header;
  const std::string context = R"(\"context\":\"req-1\")";
  mismatch.replace(mismatch.find(context), context.size(), R"(\"context\":\"req-2\")");
  EXPECT_EQ(parse_request_control(mismatch).error().reason, "context_mismatch");
  std::string nats = header;
  nats.replace(nats.find("tcp_server"), 10, "nats_tcp00");
  EXPECT_EQ(parse_request_control(nats).error().reason, "unsupported_transport");
  EXPECT_EQ(parse_request_control("not json").error().reason, "bad_control");
  EXPECT_EQ(parse_request_control(R"({"id":"x"})").error().reason, "bad_control");
}

}  // namespace
}  // namespace kvmock::dynamo
