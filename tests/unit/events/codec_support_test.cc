// The shared decoding plumbing, and the malformed-input table that runs every decoder
// of the router-facing codecs against hostile bytes.
#include "core/events/codec_support.h"

#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

#include "core/events/active_load_codec.h"
#include "core/events/envelope_codec.h"
#include "core/events/kv_query_codec.h"
#include "core/events/router_event_codec.h"
#include "tests/unit/events/codec_test_util.h"

namespace kvmock {
namespace {

using testing_util::from_hex;
using testing_util::kGoldenRouterEventHex;
using testing_util::to_hex;

std::string golden_hex_with(std::string_view from, std::string_view to) {
  std::string hex(kGoldenRouterEventHex);
  const size_t at = hex.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  hex.replace(at, from.size(), to);
  return hex;
}

// --- Path and JSON string writing -----------------------------------------------------------

TEST(CodecSupport, PathRendersFieldsAndIndices) {
  const codec::Path root;
  const codec::Path event = root.field("event");
  const codec::Path blocks = event.field("blocks");
  const codec::Path second = blocks.index(2);
  const codec::Path hash = second.field("tokens_hash");
  EXPECT_EQ(hash.to_string(), "event.blocks[2].tokens_hash");
  EXPECT_EQ(root.to_string(), "");
  EXPECT_EQ(codec::path_error("bad_type", root, "expected map").message, "document: expected map");
}

TEST(CodecSupport, JsonStringsEscapeControlsAndKeepValidUtf8) {
  std::string out;
  codec::append_json_string(out, "q\"b\\s/\b\f\n\r\t\x01\x7f \xe2\x82\xac \xf0\x9f\x98\x80");
  EXPECT_EQ(out, "\"q\\\"b\\\\s/\\b\\f\\n\\r\\t\\u0001\x7f \xe2\x82\xac \xf0\x9f\x98\x80\"");
}

TEST(CodecSupport, JsonStringsReplaceInvalidUtf8) {
  std::string out;
  // overlong '/', surrogate U+D800, beyond U+10FFFF, lone continuation
  codec::append_json_string(out, "\xc0\xaf|\xed\xa0\x80|\xf4\x90\x80\x80|\x80");
  EXPECT_EQ(out.find("\xc0"), std::string::npos);
  EXPECT_EQ(out.find("\xed\xa0"), std::string::npos);
  auto parsed = codec::parse_json(out);
  EXPECT_TRUE(parsed.ok()) << out;
}

TEST(CodecSupport, DecimalWriterCoversTheWholeU64Range) {
  std::string out;
  codec::append_u64(out, 0);
  out.push_back(' ');
  codec::append_u64(out, UINT64_MAX);
  EXPECT_EQ(out, "0 18446744073709551615");
}

TEST(CodecSupport, BracketsInsideJsonStringsDoNotCountTowardsDepth) {
  const std::string deep_text =
      "[\"" + std::string(100, '[') + "\\\"" + std::string(100, '{') + "\"]";
  EXPECT_TRUE(codec::parse_json(deep_text).ok());
  EXPECT_TRUE(codec::parse_json(std::string(32, '[') + std::string(32, ']')).ok());
  EXPECT_EQ(codec::parse_json(std::string(33, '[') + std::string(33, ']')).error().reason,
            "too_deep");
}

TEST(CodecSupport, MsgpackNestingUpToTheLimitIsAccepted) {
  std::vector<uint8_t> ok(32, 0x91);
  ok.push_back(0xc0);
  EXPECT_TRUE(codec::unpack_msgpack(ok).ok());
  std::vector<uint8_t> deep(33, 0x91);
  deep.push_back(0xc0);
  EXPECT_EQ(codec::unpack_msgpack(deep).error().reason, "too_deep");
}

TEST(CodecSupport, MsgpackContainerClaimsAreBoundedByTheBytesLeft) {
  // [nil, nil] claims exactly what is there; [nil, nil, nil] one value too many.
  EXPECT_TRUE(codec::unpack_msgpack(from_hex("92c0c0")).ok());
  auto r = codec::unpack_msgpack(from_hex("93c0c0"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().reason, "truncated");
  // Open containers share the budget: the inner array claims 2 values, but the outer
  // one still needs its second value, so only 1 byte is left for them.
  auto shared = codec::unpack_msgpack(from_hex("9292c0c0"));
  ASSERT_FALSE(shared.ok());
  EXPECT_EQ(shared.error().reason, "truncated");
  EXPECT_TRUE(codec::unpack_msgpack(from_hex("9292c0c0c0")).ok());
}

TEST(CodecSupport, EveryPrefixOfTheGoldenVectorIsTruncated) {
  const auto golden = from_hex(kGoldenRouterEventHex);
  for (size_t n = 0; n < golden.size(); ++n) {
    auto r = decode_router_event_msgpack(std::span(golden.data(), n));
    ASSERT_FALSE(r.ok()) << "prefix " << n;
    EXPECT_EQ(r.error().reason, "truncated") << "prefix " << n << ": " << r.error().message;
  }
}

// --- The malformed-input table -------------------------------------------------------------

enum class Decoder {
  kRouterMsgpack,
  kRouterJson,
  kEnvelope,
  kActiveLoadMsgpack,
  kActiveLoadJson,
  kQueryRequest,
  kQueryResponse,
};

struct Malformed {
  const char* name;
  Decoder decoder;
  std::string input;  // hex for msgpack decoders, text for JSON decoders
  std::string_view reason;
};

std::optional<Error> run(const Malformed& c) {
  auto error_of = [](const auto& result) -> std::optional<Error> {
    if (result.ok()) return std::nullopt;
    return result.error();
  };
  switch (c.decoder) {
    case Decoder::kRouterMsgpack:
      return error_of(decode_router_event_msgpack(from_hex(c.input)));
    case Decoder::kRouterJson:
      return error_of(decode_router_event_json(c.input));
    case Decoder::kEnvelope:
      return error_of(decode_event_envelope_msgpack(from_hex(c.input)));
    case Decoder::kActiveLoadMsgpack:
      return error_of(decode_active_load_msgpack(from_hex(c.input)));
    case Decoder::kActiveLoadJson:
      return error_of(decode_active_load_json(c.input));
    case Decoder::kQueryRequest:
      return error_of(decode_worker_kv_query_request_json(c.input));
    case Decoder::kQueryResponse:
      return error_of(decode_worker_kv_query_response_json(c.input));
  }
  return std::nullopt;
}

std::string cleared_json_with(std::string_view top_level_extra) {
  return "{\"worker_id\":1," + std::string(top_level_extra) +
         "\"event\":{\"event_id\":1,\"data\":\"cleared\"}}";
}

std::string removed_json_with_hash(std::string_view hash) {
  return R"({"worker_id":1,"event":{"event_id":1,"data":{"removed":{"block_hashes":[)" +
         std::string(hash) + "]}}}}";
}

std::string repeat(std::string_view s, size_t n) {
  std::string out;
  for (size_t i = 0; i < n; ++i) out.append(s);
  return out;
}

std::vector<Malformed> malformed_inputs() {
  const std::string golden(kGoldenRouterEventHex);
  return {
      // msgpack router events
      {"empty msgpack", Decoder::kRouterMsgpack, "", "truncated"},
      {"golden + trailing byte", Decoder::kRouterMsgpack, golden + "00", "trailing_bytes"},
      {"huge array32 header", Decoder::kRouterMsgpack, "ddffffffff", "truncated"},
      {"huge map32 header", Decoder::kRouterMsgpack, "dfffffffff00", "truncated"},
      {"huge str32 header", Decoder::kRouterMsgpack, "dbffffffff41", "truncated"},
      {"huge blocks array inside the golden event", Decoder::kRouterMsgpack,
       golden_hex_with("a6626c6f636b7391", "a6626c6f636b73ddffffffff"), "truncated"},
      {"deep nesting", Decoder::kRouterMsgpack, repeat("91", 40) + "c0", "too_deep"},
      {"reserved byte 0xc1", Decoder::kRouterMsgpack, "c1", "msgpack"},
      {"top level is an array", Decoder::kRouterMsgpack, "90", "bad_type"},
      {"negative block_hash", Decoder::kRouterMsgpack,
       golden_hex_with("cf7ee2cbedc694ab46", "d3ffffffffffffffff"), "bad_value"},
      {"negative fixint tokens_hash", Decoder::kRouterMsgpack,
       golden_hex_with("ab746f6b656e735f68617368cf7ee2cbedc694ab46", "ab746f6b656e735f68617368ff"),
       "bad_value"},
      {"float block_hash", Decoder::kRouterMsgpack,
       golden_hex_with("cf7ee2cbedc694ab46", "cb3ff0000000000000"), "bad_type"},
      {"worker_id as string", Decoder::kRouterMsgpack, golden_hex_with("696407", "6964a137"),
       "bad_type"},
      {"residency_domain nil", Decoder::kRouterMsgpack, golden_hex_with("a6776f726b6572", "c0"),
       "bad_type"},
      {"dp_rank nil", Decoder::kRouterMsgpack,
       golden_hex_with("a764705f72616e6b00", "a764705f72616e6bc0"), "bad_type"},
      {"event missing", Decoder::kRouterMsgpack, "81a9776f726b65725f696401", "missing_field"},
      {"bin where str expected", Decoder::kRouterMsgpack,
       golden_hex_with("a6646576696365", "c406646576696365"), "bad_type"},
      // JSON router events
      {"empty JSON", Decoder::kRouterJson, "", "json"},
      {"invalid JSON", Decoder::kRouterJson, R"({"worker_id":1,)", "json"},
      {"JSON trailing garbage", Decoder::kRouterJson, cleared_json_with("") + " x", "json"},
      {"JSON invalid UTF-8", Decoder::kRouterJson, cleared_json_with("\"k\xff\":1,"), "json"},
      {"JSON hash as string", Decoder::kRouterJson, removed_json_with_hash("\"5\""), "bad_type"},
      {"JSON hash 2^64", Decoder::kRouterJson, removed_json_with_hash("18446744073709551616"),
       "bad_value"},
      {"JSON hash far above 2^64", Decoder::kRouterJson,
       removed_json_with_hash("123456789012345678901234567890"), "bad_value"},
      {"JSON negative hash", Decoder::kRouterJson, removed_json_with_hash("-1"), "bad_value"},
      {"JSON float hash", Decoder::kRouterJson, removed_json_with_hash("1.5"), "bad_type"},
      {"JSON integral float hash", Decoder::kRouterJson, removed_json_with_hash("1.0"), "bad_type"},
      {"JSON exponent hash", Decoder::kRouterJson, removed_json_with_hash("1e3"), "bad_type"},
      {"JSON null hash", Decoder::kRouterJson, removed_json_with_hash("null"), "bad_type"},
      {"JSON deep nesting", Decoder::kRouterJson, std::string(40, '[') + std::string(40, ']'),
       "too_deep"},
      {"JSON residency_domain null", Decoder::kRouterJson,
       cleared_json_with("\"residency_domain\":null,"), "bad_type"},
      {"JSON residency_domain number", Decoder::kRouterJson,
       cleared_json_with("\"residency_domain\":1,"), "bad_type"},
      {"JSON storage_tier number", Decoder::kRouterJson, cleared_json_with("\"storage_tier\":0,"),
       "bad_type"},
      {"JSON storage_tier null", Decoder::kRouterJson, cleared_json_with("\"storage_tier\":null,"),
       "bad_type"},
      {"JSON stored without payload", Decoder::kRouterJson,
       R"({"worker_id":1,"event":{"event_id":1,"data":"stored"}})", "bad_type"},
      {"JSON blocks missing", Decoder::kRouterJson,
       R"({"worker_id":1,"event":{"event_id":1,"data":{"stored":{"parent_hash":null}}}})",
       "missing_field"},
      {"JSON block_hashes not an array", Decoder::kRouterJson,
       R"({"worker_id":1,"event":{"event_id":1,"data":{"removed":{"block_hashes":5}}}})",
       "bad_type"},
      {"JSON offsets triple", Decoder::kRouterJson,
       R"({"worker_id":1,"event":{"event_id":1,"data":{"stored":{"parent_hash":null,"blocks":[{"block_hash":1,"tokens_hash":2,"mm_extra_info":{"mm_objects":[{"mm_hash":3,"offsets":[[1,2,3]]}]}}]}}}})",
       "bad_value"},
      {"JSON start_position above u32", Decoder::kRouterJson,
       R"({"worker_id":1,"event":{"event_id":1,"data":{"stored":{"start_position":4294967296,"blocks":[]}}}})",
       "bad_value"},
      {"JSON top level is a string", Decoder::kRouterJson, R"("cleared")", "bad_type"},
      // envelope
      {"envelope topic as bin", Decoder::kEnvelope,
       "85ac7075626c69736865725f696401a873657175656e636502ac7075626c69736865645f617403a5746f7069"
       "63c40174a77061796c6f6164c400",
       "bad_type"},
      {"envelope negative sequence", Decoder::kEnvelope,
       "85ac7075626c69736865725f696401a873657175656e6365ffac7075626c69736865645f617403a5746f7069"
       "63a174a77061796c6f6164c400",
       "bad_value"},
      {"envelope trailing bytes", Decoder::kEnvelope, "80c0", "trailing_bytes"},
      // ActiveLoad
      {"ActiveLoad worker_id boolean", Decoder::kActiveLoadMsgpack, "81a9776f726b65725f6964c3",
       "bad_type"},
      {"ActiveLoad JSON kv_used_blocks string", Decoder::kActiveLoadJson,
       R"({"worker_id":1,"kv_used_blocks":"4"})", "bad_type"},
      // indexer query
      {"query request is an array", Decoder::kQueryRequest, "[]", "bad_type"},
      {"query request dp_rank null", Decoder::kQueryRequest, R"({"worker_id":1,"dp_rank":null})",
       "bad_type"},
      {"query response with two variants", Decoder::kQueryResponse,
       R"({"Error":"a","TooNew":{"requested_start":1,"requested_end":1,"newest_available":0}})",
       "bad_value"},
      {"query response TooNew field missing", Decoder::kQueryResponse,
       R"({"TooNew":{"requested_start":1,"requested_end":1}})", "missing_field"},
      {"query response invalid JSON", Decoder::kQueryResponse, R"({"Events":{)", "json"},
  };
}

TEST(CodecSupport, MalformedInputsAreRejectedWithTheExpectedReason) {
  const auto cases = malformed_inputs();
  ASSERT_GE(cases.size(), 20u);
  for (const Malformed& c : cases) {
    const auto error = run(c);
    ASSERT_TRUE(error.has_value()) << c.name << " was accepted";
    EXPECT_EQ(error->reason, c.reason) << c.name << ": " << error->message;
    EXPECT_FALSE(error->message.empty()) << c.name;
  }
}

}  // namespace
}  // namespace kvmock
