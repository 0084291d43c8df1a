#include "core/events/msgpack_reader.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

namespace kvmock {
namespace {

std::vector<uint8_t> bytes(std::initializer_list<int> list) {
  std::vector<uint8_t> v;
  for (int b : list) v.push_back(static_cast<uint8_t>(b));
  return v;
}

TEST(MsgpackReader, ReadsEveryIntegerWidth) {
  struct Case {
    std::vector<uint8_t> in;
    uint64_t bits;
    bool negative;
  };
  const Case cases[] = {
      {bytes({0x05}), 5, false},
      {bytes({0xe0}), static_cast<uint64_t>(-32), true},
      {bytes({0xcc, 0xff}), 255, false},
      {bytes({0xcd, 0x01, 0x00}), 256, false},
      {bytes({0xce, 0xff, 0xff, 0xff, 0xff}), 0xffffffffull, false},
      {bytes({0xcf, 0x80, 0, 0, 0, 0, 0, 0, 1}), 0x8000000000000001ull, false},
      {bytes({0xd0, 0x80}), static_cast<uint64_t>(-128), true},
      {bytes({0xd1, 0xff, 0x7f}), static_cast<uint64_t>(-129), true},
      {bytes({0xd2, 0xc5, 0x21, 0x97, 0x4f}), static_cast<uint64_t>(-987654321), true},
      {bytes({0xd3, 0, 0, 0, 0, 0, 0, 0, 7}), 7, false},
  };
  for (const auto& c : cases) {
    MsgpackReader r(c.in);
    MsgpackInt v;
    ASSERT_EQ(r.read_int(v), MsgpackStatus::kOk);
    EXPECT_EQ(v.bits, c.bits);
    EXPECT_EQ(v.negative, c.negative);
    EXPECT_TRUE(r.at_end());
  }
}

TEST(MsgpackReader, TheUint32RunReadsSmallUnsignedFormsAndStopsBeforeAnyOther) {
  // fixint, uint8, uint16, uint32, then an int8 (another form, left to read_int).
  const auto in =
      bytes({0x05, 0xcc, 0xff, 0xcd, 0x01, 0x00, 0xce, 0x00, 0x01, 0x00, 0x00, 0xd0, 0x05, 0x07});
  MsgpackReader r(in);
  uint32_t out[6] = {};
  ASSERT_EQ(r.read_uint32_run(out, 6), 4u);
  EXPECT_EQ(out[0], 5u);
  EXPECT_EQ(out[1], 255u);
  EXPECT_EQ(out[2], 256u);
  EXPECT_EQ(out[3], 65536u);
  EXPECT_EQ(r.offset(), 11u) << "stopped at the int8";
  MsgpackInt v;
  ASSERT_EQ(r.read_int(v), MsgpackStatus::kOk);
  EXPECT_EQ(v.bits, 5u);
  EXPECT_EQ(r.read_uint32_run(out, 1), 1u) << "no more than asked for";
  EXPECT_TRUE(r.at_end());

  // A value cut short is not read: read_int then reports it.
  const auto cut = bytes({0x01, 0xcd, 0x01});
  MsgpackReader cut_reader(cut);
  EXPECT_EQ(cut_reader.read_uint32_run(out, 2), 1u);
  EXPECT_EQ(cut_reader.read_int(v), MsgpackStatus::kTruncated);
}

// The run reads long stretches without a per-value bounds check while the input has room
// for the widest form, and value by value near the end: whatever the mix of forms and
// wherever the input is cut, it reads exactly the values that are whole, and stops at the
// first one that is not.
TEST(MsgpackReader, TheUint32RunReadsEveryWholeValueWhereverTheInputIsCut) {
  std::vector<uint32_t> values;
  std::vector<uint8_t> encoded;
  std::vector<size_t> ends;  // byte offset after each value
  uint64_t state = 0x9e3779b97f4a7c15ull;
  for (int i = 0; i < 200; ++i) {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    const uint32_t pick = static_cast<uint32_t>(state >> 33);
    // Mostly uint16, as token ids are, with runs of the other forms between.
    switch (pick % 8) {
      case 0:
        values.push_back(pick % 128);
        encoded.push_back(static_cast<uint8_t>(values.back()));
        break;
      case 1:
        values.push_back(128 + pick % 128);
        encoded.insert(encoded.end(), {0xcc, static_cast<uint8_t>(values.back())});
        break;
      case 2:
        values.push_back(0x10000 + pick);
        encoded.insert(encoded.end(), {0xce, static_cast<uint8_t>(values.back() >> 24),
                                       static_cast<uint8_t>(values.back() >> 16),
                                       static_cast<uint8_t>(values.back() >> 8),
                                       static_cast<uint8_t>(values.back())});
        break;
      default:
        values.push_back(256 + pick % 65280);
        encoded.insert(encoded.end(), {0xcd, static_cast<uint8_t>(values.back() >> 8),
                                       static_cast<uint8_t>(values.back())});
        break;
    }
    ends.push_back(encoded.size());
  }
  for (size_t cut = 0; cut <= encoded.size(); ++cut) {
    const std::span<const uint8_t> input(encoded.data(), cut);
    MsgpackReader r(input);
    std::vector<uint32_t> out(values.size() + 1, 0xdeadbeef);
    const size_t whole =
        static_cast<size_t>(std::upper_bound(ends.begin(), ends.end(), cut) - ends.begin());
    ASSERT_EQ(r.read_uint32_run(out.data(), values.size()), whole) << "cut at " << cut;
    EXPECT_EQ(r.offset(), whole == 0 ? 0 : ends[whole - 1]) << "cut at " << cut;
    for (size_t i = 0; i < whole; ++i) ASSERT_EQ(out[i], values[i]) << "value " << i;
    EXPECT_EQ(out[whole], 0xdeadbeefu) << "nothing written past the last whole value";
  }
  // Asked for fewer than there are, it reads that many and no byte more.
  MsgpackReader r(encoded);
  std::vector<uint32_t> out(values.size());
  ASSERT_EQ(r.read_uint32_run(out.data(), 150), 150u);
  EXPECT_EQ(r.offset(), ends[149]);
  ASSERT_EQ(r.read_uint32_run(out.data() + 150, values.size() - 150), values.size() - 150);
  EXPECT_EQ(out, values);
  EXPECT_TRUE(r.at_end());
}

TEST(MsgpackReader, TheUint64WordReadsOnlyTheEightByteForm) {
  const auto in = bytes({0xcf, 0x80, 0, 0, 0, 0, 0, 0, 1, 0x05, 0xcf, 0x01});
  MsgpackReader r(in);
  uint64_t out = 0;
  ASSERT_TRUE(r.read_uint64_word(out));
  EXPECT_EQ(out, 0x8000000000000001ull);
  EXPECT_FALSE(r.read_uint64_word(out)) << "a fixint is another form";
  EXPECT_EQ(r.offset(), 9u);
  MsgpackInt v;
  ASSERT_EQ(r.read_int(v), MsgpackStatus::kOk);
  EXPECT_FALSE(r.read_uint64_word(out)) << "cut short";
  EXPECT_EQ(r.offset(), 10u);
}

TEST(MsgpackReader, TheFixstrReadsOnlyAWholeShortString) {
  const auto in = bytes({0xa2, 'i', 'd', 0xa0, 0xd9, 0x01, 'x', 0xa3, 'a', 'b'});
  MsgpackReader r(in);
  std::string_view s;
  ASSERT_TRUE(r.read_fixstr(s));
  EXPECT_EQ(s, "id");
  ASSERT_TRUE(r.read_fixstr(s)) << "the empty string";
  EXPECT_EQ(s, "");
  EXPECT_FALSE(r.read_fixstr(s)) << "str8 is another form";
  EXPECT_EQ(r.offset(), 4u);
  ASSERT_EQ(r.read_str(s), MsgpackStatus::kOk);
  EXPECT_FALSE(r.read_fixstr(s)) << "cut short";
  EXPECT_EQ(r.offset(), 7u);
  EXPECT_EQ(r.read_str(s), MsgpackStatus::kTruncated);
}

TEST(MsgpackReader, WrongTypeConsumesNothing) {
  const auto in = bytes({0xa1, 'x'});
  MsgpackReader r(in);
  MsgpackInt v;
  EXPECT_EQ(r.read_int(v), MsgpackStatus::kWrongType);
  EXPECT_EQ(r.offset(), 0u);
  std::string_view s;
  ASSERT_EQ(r.read_str(s), MsgpackStatus::kOk);
  EXPECT_EQ(s, "x");
}

TEST(MsgpackReader, LengthClaimsBeyondTheInputAreTruncated) {
  const auto arr = bytes({0xdd, 0xff, 0xff, 0xff, 0xff, 0xc0});
  uint32_t n = 0;
  EXPECT_EQ(MsgpackReader(arr).read_array(n), MsgpackStatus::kTruncated);
  const auto map = bytes({0x82, 0xc0, 0xc0, 0xc0});  // 2 pairs need 4 bytes, 3 remain
  EXPECT_EQ(MsgpackReader(map).read_map(n), MsgpackStatus::kTruncated);
  const auto str = bytes({0xdb, 0xff, 0xff, 0xff, 0xff, 'a'});
  std::string_view s;
  EXPECT_EQ(MsgpackReader(str).read_str(s), MsgpackStatus::kTruncated);
  const auto bin = bytes({0xc5, 0x00});
  std::span<const uint8_t> b;
  EXPECT_EQ(MsgpackReader(bin).read_bin(b), MsgpackStatus::kTruncated);
}

TEST(MsgpackReader, SkipConsumesOneWholeValueOfAnyType) {
  // [nil, true, 1.5f, 2.5, "ab", bin "c", fixext1, ext8, {1: [-1]}] then a trailing 0x07.
  const auto in = bytes({0x99, 0xc0, 0xc3, 0xca, 0x3f, 0xc0, 0,   0,    0xcb, 0x40, 4,    0,
                         0,    0,    0,    0,    0,    0xa2, 'a', 'b',  0xc4, 1,    'c',  0xd4,
                         1,    2,    0xc7, 2,    5,    9,    9,   0x81, 0x01, 0x91, 0xff, 0x07});
  MsgpackReader r(in);
  ASSERT_EQ(r.skip(4), MsgpackStatus::kOk);
  EXPECT_EQ(r.remaining(), 1u);
}

TEST(MsgpackReader, SkipFailureLeavesTheOffsetUnchanged) {
  const auto in = bytes({0x92, 0x01, 0xa5, 'a'});
  MsgpackReader r(in);
  EXPECT_EQ(r.skip(8), MsgpackStatus::kTruncated);
  EXPECT_EQ(r.offset(), 0u);
  const auto bad = bytes({0x92, 0x01, 0xc1});
  EXPECT_EQ(MsgpackReader(bad).skip(8), MsgpackStatus::kInvalid);
}

TEST(MsgpackReader, SkipCountsNestingLevels) {
  std::vector<uint8_t> in(5, 0x91);
  in.push_back(0xc0);
  EXPECT_EQ(MsgpackReader(in).skip(5), MsgpackStatus::kOk);
  EXPECT_EQ(MsgpackReader(in).skip(4), MsgpackStatus::kTooDeep);
  const auto scalar = bytes({0x01});
  EXPECT_EQ(MsgpackReader(scalar).skip(0), MsgpackStatus::kOk);
  std::vector<uint8_t> hostile(100000, 0x91);
  EXPECT_EQ(MsgpackReader(hostile).skip(32), MsgpackStatus::kTooDeep);
}

TEST(MsgpackReader, PeekNamesTheNextType) {
  MsgpackType t{};
  const auto f = bytes({0xcb});
  ASSERT_EQ(MsgpackReader(f).peek(t), MsgpackStatus::kOk);
  EXPECT_EQ(t, MsgpackType::kFloat);
  const auto m = bytes({0xde});
  ASSERT_EQ(MsgpackReader(m).peek(t), MsgpackStatus::kOk);
  EXPECT_EQ(t, MsgpackType::kMap);
  EXPECT_EQ(MsgpackReader(std::span<const uint8_t>()).peek(t), MsgpackStatus::kTruncated);
  const auto c1 = bytes({0xc1});
  EXPECT_EQ(MsgpackReader(c1).peek(t), MsgpackStatus::kInvalid);
}

}  // namespace
}  // namespace kvmock
