#include "core/events/active_load_codec.h"

#include <gtest/gtest.h>

#include "tests/unit/events/codec_test_util.h"

namespace kvmock {
namespace {

using testing_util::from_hex;
using testing_util::to_hex;

ActiveLoad worker_load() {
  ActiveLoad load;
  load.worker_id = 7;
  load.dp_rank = 0;
  load.active_decode_blocks = 12;
  load.kv_used_blocks = 40;
  return load;
}

TEST(ActiveLoadCodec, WorkerExampleEncodesAsDocumentedJson) {
  EXPECT_EQ(
      encode_active_load_json(worker_load()),
      R"({"worker_id":7,"dp_rank":0,"active_decode_blocks":12,"active_prefill_tokens":null,"kv_used_blocks":40})");
}

TEST(ActiveLoadCodec, WorkerExampleEncodesAsNamedMsgpackInFieldOrder) {
  // {"worker_id":7,"dp_rank":0,"active_decode_blocks":12,"active_prefill_tokens":nil,
  //  "kv_used_blocks":40}
  EXPECT_EQ(to_hex(encode_active_load_msgpack(worker_load())),
            "85a9776f726b65725f696407a764705f72616e6b00b4616374697665"
            "5f6465636f64655f626c6f636b730cb56163746976655f707265"
            "66696c6c5f746f6b656e73c0ae6b765f757365645f626c6f636b7328");
}

TEST(ActiveLoadCodec, RoundTripsInBothCodecsWithSetAndUnsetCounters) {
  ActiveLoad all_set{UINT64_MAX, 3, 1ull << 63, 5, 0};
  ActiveLoad none_set{1, 0, std::nullopt, std::nullopt, std::nullopt};
  for (const ActiveLoad& load : {worker_load(), all_set, none_set}) {
    auto from_json = decode_active_load_json(encode_active_load_json(load));
    ASSERT_TRUE(from_json.ok()) << from_json.error().message;
    EXPECT_EQ(*from_json, load);
    auto from_msgpack = decode_active_load_msgpack(encode_active_load_msgpack(load));
    ASSERT_TRUE(from_msgpack.ok()) << from_msgpack.error().message;
    EXPECT_EQ(*from_msgpack, load);
  }
}

TEST(ActiveLoadCodec, OlderShapeAndRouterOnlyFieldsDecode) {
  auto older = decode_active_load_json(R"({"worker_id":9,"active_decode_blocks":4})");
  ASSERT_TRUE(older.ok()) << older.error().message;
  EXPECT_EQ(*older, (ActiveLoad{9, 0, 4, std::nullopt, std::nullopt}));
  auto router = decode_active_load_json(
      R"({"worker_id":9,"dp_rank":1,"active_decode_blocks":null,"active_prefill_tokens":100,)"
      R"("scheduler_load_scope":"local","kv_used_blocks":null})");
  ASSERT_TRUE(router.ok()) << router.error().message;
  EXPECT_EQ(*router, (ActiveLoad{9, 1, std::nullopt, 100, std::nullopt}));
}

TEST(ActiveLoadCodec, WorkerIdIsRequiredAndCountersMustBeUnsigned) {
  auto missing = decode_active_load_json(R"({"dp_rank":1})");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().reason, "missing_field");
  auto negative = decode_active_load_json(R"({"worker_id":1,"kv_used_blocks":-1})");
  ASSERT_FALSE(negative.ok());
  EXPECT_EQ(negative.error().reason, "bad_value");
  EXPECT_EQ(negative.error().message,
            "kv_used_blocks: expected unsigned integer, got a negative number");
  // {"worker_id":1,"active_decode_blocks":1.5}
  auto float_counter = decode_active_load_msgpack(from_hex(
      "82a9776f726b65725f696401b46163746976655f6465636f64655f626c6f636b73cb3ff8000000000000"));
  ASSERT_FALSE(float_counter.ok());
  EXPECT_EQ(float_counter.error().reason, "bad_type");
}

TEST(ActiveLoadCodec, EncodersAppend) {
  std::string text = "x";
  encode_active_load_json(worker_load(), text);
  EXPECT_EQ(text.substr(0, 2), "x{");
  std::vector<uint8_t> bytes{0};
  encode_active_load_msgpack(worker_load(), bytes);
  EXPECT_EQ(bytes[1], 0x85);
}

}  // namespace
}  // namespace kvmock
