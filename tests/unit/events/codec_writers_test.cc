// JsonWriter and MsgpackWriter: the same calls give the same document in both formats.
#include <gtest/gtest.h>

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/events/json_writer.h"
#include "core/events/msgpack_writer.h"
#include "tests/unit/events/codec_test_util.h"

namespace kvmock {
namespace {

using testing_util::to_hex;

// {"a":[1,null,"x",{}],"b":7,"c":null}, written once for both writers.
template <class W>
void write_sample(W& w) {
  w.begin_map(3);
  w.key("a");
  w.begin_array(4);
  w.u64(1);
  w.null();
  w.str("x");
  w.begin_map(0);
  w.end_map();
  w.end_array();
  w.key("b");
  w.optional_u64(7);
  w.key("c");
  w.optional_u64(std::nullopt);
  w.end_map();
}

TEST(CodecWriters, JsonWriterPlacesCommasBetweenSiblingsOnly) {
  std::string out;
  codec::JsonWriter w(out);
  write_sample(w);
  EXPECT_EQ(out, R"({"a":[1,null,"x",{}],"b":7,"c":null})");
}

TEST(CodecWriters, MsgpackWriterWritesMinimalForms) {
  std::vector<uint8_t> out;
  codec::MsgpackWriter w(out);
  write_sample(w);
  EXPECT_EQ(to_hex(out), "83a1619401c0a17880a16207a163c0");
}

TEST(CodecWriters, BothWritersDescribeTheSameDocument) {
  std::string json;
  codec::JsonWriter jw(json);
  write_sample(jw);
  std::vector<uint8_t> msgpack;
  codec::MsgpackWriter mw(msgpack);
  write_sample(mw);
  EXPECT_EQ(nlohmann::json::parse(json), nlohmann::json::from_msgpack(msgpack));
}

TEST(CodecWriters, JsonWriterEscapesStringValues) {
  std::string out;
  codec::JsonWriter w(out);
  w.begin_array(3);
  w.str("q\"b\\\n");
  w.str("\x01");
  w.str("\xff");
  w.end_array();
  EXPECT_EQ(out, "[\"q\\\"b\\\\\\n\",\"\\u0001\",\"\xef\xbf\xbd\"]");
  EXPECT_FALSE(nlohmann::json::parse(out, nullptr, /*allow_exceptions=*/false).is_discarded());
}

TEST(CodecWriters, JsonWriterWritesBinAsAnArrayOfBytes) {
  std::string json;
  codec::JsonWriter jw(json);
  const std::vector<uint8_t> bytes = {0, 255};
  jw.bin(bytes);
  EXPECT_EQ(json, "[0,255]");
  std::vector<uint8_t> msgpack;
  codec::MsgpackWriter mw(msgpack);
  mw.bin(bytes);
  EXPECT_EQ(to_hex(msgpack), "c40200ff");
}

// The msgpack writer gathers small writes in a stage of its own: a document several
// stages long, with values longer than a stage between short ones, must come out whole
// and in order.
TEST(CodecWriters, MsgpackWriterKeepsOrderAcrossItsStage) {
  const std::string long_text(codec::StagedVectorSink::kStageBytes + 44, 't');
  const std::vector<uint8_t> long_bin(codec::StagedVectorSink::kStageBytes * 2, 0xab);
  nlohmann::json expected = nlohmann::json::object();
  std::vector<uint8_t> msgpack;
  {
    codec::MsgpackWriter w(msgpack);
    w.begin_map(61);
    for (int i = 0; i < 60; ++i) {
      const std::string key = "key" + std::to_string(i);
      w.key(key);
      if (i == 20) {
        w.str(long_text);
        expected[key] = long_text;
      } else if (i == 40) {
        w.bin(long_bin);
        expected[key] = nlohmann::json::binary(long_bin);
      } else {
        w.u64(uint64_t{1} << i);
        expected[key] = uint64_t{1} << i;
      }
    }
    w.key("last");
    w.null();
    expected["last"] = nullptr;
    w.end_map();
    EXPECT_GT(msgpack.size(), 4 * codec::StagedVectorSink::kStageBytes);
  }
  EXPECT_EQ(nlohmann::json::from_msgpack(msgpack), expected);
}

// Callers read the vector as soon as a top-level value is complete, with the writer
// still in scope.
TEST(CodecWriters, MsgpackWriterOutputIsCompleteAfterEachTopLevelValue) {
  std::vector<uint8_t> out;
  codec::MsgpackWriter w(out);
  w.u64(300);
  EXPECT_EQ(to_hex(out), "cd012c");
  w.begin_array(1);
  w.str("x");
  w.end_array();
  EXPECT_EQ(to_hex(out), "cd012c91a178");
}

}  // namespace
}  // namespace kvmock
