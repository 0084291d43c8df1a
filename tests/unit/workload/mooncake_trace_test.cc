#include "core/workload/mooncake_trace.h"

#include <gtest/gtest.h>

namespace kvmock {
namespace {

TraceOptions block(uint32_t size) {
  TraceOptions options;
  options.trace_block_size = size;
  return options;
}

TEST(MooncakeTrace, EachHashIdBecomesABlockOfItsTokenTruncatedToInputLength) {
  auto parsed = parse_mooncake_trace(
      R"({"timestamp": 0, "input_length": 5, "output_length": 3, "hash_ids": [7, 9]})", block(4));
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  ASSERT_EQ(parsed->size(), 1u);
  EXPECT_EQ((*parsed)[0].prompt, (std::vector<TokenId>{7, 7, 7, 7, 9}));
  EXPECT_EQ((*parsed)[0].max_tokens, 3u);
  EXPECT_FALSE((*parsed)[0].after);
}

TEST(MooncakeTrace, InputLengthIsClampedToTheHashIdBlocks) {
  auto parsed = parse_mooncake_trace(
      R"({"timestamp": 0, "input_length": 100, "output_length": 1, "hash_ids": [1, 2]})", block(3));
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ((*parsed)[0].prompt.size(), 6u);
}

TEST(MooncakeTrace, EqualHashIdPrefixesGiveEqualTokenPrefixes) {
  auto parsed = parse_mooncake_trace(
      "{\"timestamp\": 0, \"input_length\": 8, \"output_length\": 1, \"hash_ids\": [1, 2]}\n"
      "{\"timestamp\": 5, \"input_length\": 8, \"output_length\": 1, \"hash_ids\": [1, 3]}\n",
      block(4));
  ASSERT_TRUE(parsed.ok());
  const auto& a = (*parsed)[0].prompt;
  const auto& b = (*parsed)[1].prompt;
  EXPECT_TRUE(std::equal(a.begin(), a.begin() + 4, b.begin()));
  EXPECT_NE(a[4], b[4]);
}

TEST(MooncakeTrace, ArrivalsStartAtZeroAndAreDividedBySpeedup) {
  TraceOptions options = block(2);
  options.arrival_speedup = 2;
  auto parsed = parse_mooncake_trace(
      "{\"timestamp\": 1000, \"input_length\": 2, \"output_length\": 1, \"hash_ids\": [1]}\n"
      "\n"
      "{\"created_time\": 3000, \"input_length\": 2, \"output_length\": 1, \"hash_ids\": [1]}\n",
      options);
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  ASSERT_EQ(parsed->size(), 2u);
  EXPECT_DOUBLE_EQ((*parsed)[0].arrival_ms, 0);
  EXPECT_DOUBLE_EQ((*parsed)[1].arrival_ms, 1000);
}

TEST(MooncakeTrace, LaterSessionTurnsFollowThePreviousTurnWithItsDelay) {
  auto parsed = parse_mooncake_trace(
      "{\"timestamp\": 0, \"input_length\": 2, \"output_length\": 1, \"hash_ids\": [1], "
      "\"session_id\": \"a\"}\n"
      "{\"timestamp\": 10, \"input_length\": 2, \"output_length\": 1, \"hash_ids\": [2]}\n"
      "{\"input_length\": 2, \"output_length\": 1, \"hash_ids\": [1], \"session_id\": \"a\", "
      "\"delay\": 250}\n"
      "{\"input_length\": 2, \"output_length\": 1, \"hash_ids\": [1], "
      "\"session_id\": \"a\", \"delay_ms\": 0}\n",
      block(2));
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  ASSERT_EQ(parsed->size(), 4u);
  EXPECT_FALSE((*parsed)[1].after);
  ASSERT_TRUE((*parsed)[2].after);
  EXPECT_EQ(*(*parsed)[2].after, 0u);
  EXPECT_DOUBLE_EQ((*parsed)[2].delay_ms, 250);
  ASSERT_TRUE((*parsed)[3].after);
  EXPECT_EQ(*(*parsed)[3].after, 2u);
}

TEST(MooncakeTrace, LaterTurnWithoutDelayOrTimestampsIsAnError) {
  auto parsed = parse_mooncake_trace(
      "{\"timestamp\": 0, \"input_length\": 2, \"output_length\": 1, \"hash_ids\": [1], "
      "\"session_id\": 1}\n"
      "{\"input_length\": 2, \"output_length\": 1, \"hash_ids\": [1], \"session_id\": 1}\n",
      block(2));
  ASSERT_FALSE(parsed.ok());
  EXPECT_NE(parsed.error().message.find("line 2: \"delay\" is missing"), std::string::npos);
}

TEST(MooncakeTrace, MissingDelayIsInferredFromTimestamps) {
  auto parsed = parse_mooncake_trace(
      "{\"timestamp\": 100, \"input_length\": 2, \"output_length\": 1, \"hash_ids\": [1], "
      "\"session_id\": 5}\n"
      "{\"timestamp\": 400, \"input_length\": 2, \"output_length\": 1, \"hash_ids\": [1], "
      "\"session_id\": 5}\n",
      block(2));
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  ASSERT_TRUE((*parsed)[1].after);
  EXPECT_DOUBLE_EQ((*parsed)[1].delay_ms, 300);
}

struct BadLine {
  const char* text;
  const char* expected;  // a substring of the message
};

TEST(MooncakeTrace, BadLinesAreErrorsNamingTheLineAndField) {
  const std::string good =
      "{\"timestamp\": 0, \"input_length\": 2, \"output_length\": 1, \"hash_ids\": [1]}\n";
  const BadLine cases[] = {
      {"{not json", "line 2: not valid JSON"},
      {"[1, 2]", "line 2: not a JSON object"},
      {R"({"timestamp": 0, "output_length": 1, "hash_ids": [1]})",
       "line 2: \"input_length\" is missing"},
      {R"({"timestamp": 0, "input_length": 0, "output_length": 1, "hash_ids": [1]})",
       "line 2: \"input_length\" must be"},
      {R"({"timestamp": 0, "input_length": -3, "output_length": 1, "hash_ids": [1]})",
       "line 2: \"input_length\""},
      {R"({"timestamp": 0, "input_length": 2.5, "output_length": 1, "hash_ids": [1]})",
       "line 2: \"input_length\""},
      {R"({"timestamp": 0, "input_length": 2, "hash_ids": [1]})",
       "line 2: \"output_length\" is missing"},
      {R"({"timestamp": 0, "input_length": 2, "output_length": 99999999999, "hash_ids": [1]})",
       "line 2: \"output_length\""},
      {R"({"timestamp": 0, "input_length": 2, "output_length": 1})",
       "line 2: \"hash_ids\" is missing"},
      {R"({"timestamp": 0, "input_length": 2, "output_length": 1, "hash_ids": []})",
       "line 2: \"hash_ids\""},
      {R"({"timestamp": 0, "input_length": 2, "output_length": 1, "hash_ids": [1, "x"]})",
       "line 2: \"hash_ids\""},
      {R"({"timestamp": -1, "input_length": 2, "output_length": 1, "hash_ids": [1]})",
       "line 2: \"timestamp\""},
      {R"({"input_length": 2, "output_length": 1, "hash_ids": [1]})",
       "line 2: \"timestamp\" is missing"},
      {R"({"timestamp": 0, "input_length": 2, "output_length": 1, "hash_ids": [1], "delay": 5})",
       "line 2: \"delay\" is not allowed"},
      {R"({"timestamp": 0, "input_length": 2, "output_length": 1, "hash_ids": [1], "session_id": []})",
       "line 2: \"session_id\""},
      {R"({"timestamp": 0, "input_length": 99999999, "output_length": 1, "hash_ids": [1]})",
       "line 2: \"input_length\" exceeds"},
  };
  for (const BadLine& c : cases) {
    auto parsed = parse_mooncake_trace(good + c.text + "\n" + good, block(2));
    ASSERT_FALSE(parsed.ok()) << c.text;
    EXPECT_EQ(parsed.error().reason, "bad_trace") << c.text;
    EXPECT_NE(parsed.error().message.find(c.expected), std::string::npos)
        << c.text << " -> " << parsed.error().message;
  }
}

TEST(MooncakeTrace, EmptyTraceAndBadOptionsAreErrors) {
  auto empty = parse_mooncake_trace("\n  \n", block(2));
  ASSERT_FALSE(empty.ok());
  EXPECT_EQ(empty.error().reason, "empty_trace");
  auto zero_block = parse_mooncake_trace("", block(0));
  ASSERT_FALSE(zero_block.ok());
  EXPECT_EQ(zero_block.error().reason, "bad_trace_options");
  TraceOptions options = block(2);
  options.arrival_speedup = 0;
  auto zero_speed = parse_mooncake_trace("", options);
  ASSERT_FALSE(zero_speed.ok());
  EXPECT_EQ(zero_speed.error().reason, "bad_trace_options");
}

}  // namespace
}  // namespace kvmock
