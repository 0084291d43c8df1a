#include "transport/zmq/seq_frame.h"

#include <gtest/gtest.h>

#include <vector>

namespace kvmock {
namespace {

TEST(SeqFrameTest, EncodesBigEndian) {
  const auto frame = encode_seq_frame(0x0102030405060708ull);
  EXPECT_EQ(std::vector<uint8_t>(frame.begin(), frame.end()),
            (std::vector<uint8_t>{1, 2, 3, 4, 5, 6, 7, 8}));
}

TEST(SeqFrameTest, EndMarkerIsAllOnes) {
  const auto frame = encode_seq_frame(kReplayEndSeq);
  for (uint8_t byte : frame) EXPECT_EQ(byte, 0xff);
}

TEST(SeqFrameTest, DecodeInvertsEncode) {
  for (uint64_t seq : {0ull, 1ull, 255ull, 256ull, 0x8000000000000000ull, ~0ull}) {
    const auto frame = encode_seq_frame(seq);
    EXPECT_EQ(decode_seq_frame(frame), seq);
  }
}

TEST(SeqFrameTest, DecodeRejectsAnyOtherLength) {
  const std::vector<uint8_t> bytes(9, 0);
  for (size_t size : {0u, 1u, 7u, 9u}) {
    EXPECT_FALSE(decode_seq_frame(std::span<const uint8_t>(bytes.data(), size)).has_value())
        << size;
  }
}

}  // namespace
}  // namespace kvmock
