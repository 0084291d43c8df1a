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

}  // namespace
}  // namespace kvmock
