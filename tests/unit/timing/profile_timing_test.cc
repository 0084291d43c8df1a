#include "core/timing/profile_timing.h"

#include <gtest/gtest.h>

namespace kvmock {
namespace {

constexpr const char* kProfile = R"({
  "prefill": {"tokens": [100, 200, 400], "ms": [10, 20, 30]},
  "decode": {"active_kv_tokens": [0, 1000], "context_length": [100, 200],
             "ms": [[5, 7], [9, 15]]}
})";

BatchStats prefill_of(uint64_t tokens) {
  BatchStats s;
  s.prefill_requests = 1;
  s.prefill_isl_sum = tokens;
  return s;
}

BatchStats decode_at(uint64_t kv, uint64_t ctx) {
  BatchStats s;
  s.decode_requests = 1;
  s.decode_context_sum = ctx;
  s.active_kv_tokens = kv;
  return s;
}

ProfileTiming parsed() {
  auto p = ProfileTiming::parse(kProfile);
  EXPECT_TRUE(p.ok()) << (p.ok() ? "" : p.error().message);
  return std::move(p).value();
}

TEST(ProfileTiming, PrefillInterpolatesLinearlyBetweenPoints) {
  const auto model = parsed();
  EXPECT_DOUBLE_EQ(model.prefill_ms(prefill_of(150)), 15);
  EXPECT_DOUBLE_EQ(model.prefill_ms(prefill_of(300)), 25);
  EXPECT_DOUBLE_EQ(model.prefill_ms(prefill_of(200)), 20);
}

TEST(ProfileTiming, PrefillExtrapolatesFromTheEdgeSegments) {
  const auto model = parsed();
  EXPECT_DOUBLE_EQ(model.prefill_ms(prefill_of(600)), 40);
  EXPECT_DOUBLE_EQ(model.prefill_ms(prefill_of(50)), 5);
  EXPECT_EQ(model.prefill_ms(BatchStats{}), 0.0);
}

TEST(ProfileTiming, ExtrapolationBelowZeroIsClampedToZero) {
  auto p = ProfileTiming::parse(
      R"({"prefill":{"tokens":[100,200],"ms":[1,11]},
          "decode":{"active_kv_tokens":[0],"context_length":[1],"ms":[[3]]}})");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->prefill_ms(prefill_of(10)), 0.0);
}

TEST(ProfileTiming, DecodeIsBilinearInOccupancyAndContext) {
  const auto model = parsed();
  EXPECT_DOUBLE_EQ(model.decode_ms(decode_at(0, 100)), 5);
  EXPECT_DOUBLE_EQ(model.decode_ms(decode_at(1000, 200)), 15);
  EXPECT_DOUBLE_EQ(model.decode_ms(decode_at(500, 150)), 9);  // mean of the four corners
}

TEST(ProfileTiming, DecodeExtrapolatesBeyondTheTable) {
  const auto model = parsed();
  EXPECT_DOUBLE_EQ(model.decode_ms(decode_at(2000, 100)), 13);
  EXPECT_DOUBLE_EQ(model.decode_ms(decode_at(0, 300)), 9);
}

TEST(ProfileTiming, SinglePointAxisIsConstant) {
  auto p = ProfileTiming::parse(
      R"({"prefill":{"tokens":[100],"ms":[42]},
          "decode":{"active_kv_tokens":[0],"context_length":[1],"ms":[[3]]}})");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->prefill_ms(prefill_of(5000)), 42.0);
  EXPECT_EQ(p->decode_ms(decode_at(123, 456)), 3.0);
}

struct BadCase {
  const char* json;
  const char* message_part;
};

TEST(ProfileTiming, MalformedTablesAreErrorsNamingTheProblem) {
  const BadCase cases[] = {
      {"{", "not valid JSON"},
      {"[]", "JSON object"},
      {R"({"decode":{}})", "prefill object"},
      {R"({"prefill":{"tokens":[1],"ms":[1]}})", "decode object"},
      {R"({"prefill":{"ms":[1]},"decode":{}})", "prefill.tokens is missing"},
      {R"({"prefill":{"tokens":[],"ms":[]},"decode":{}})", "prefill.tokens must be a non-empty"},
      {R"({"prefill":{"tokens":[1,"x"],"ms":[1,2]},"decode":{}})", "prefill.tokens[1]"},
      {R"({"prefill":{"tokens":[1,2],"ms":[1]},"decode":{}})", "differ in length"},
      {R"({"prefill":{"tokens":[2,1],"ms":[1,2]},"decode":{}})", "strictly increasing"},
      {R"({"prefill":{"tokens":[1],"ms":[1]},"decode":{"active_kv_tokens":[0,1],
          "context_length":[1],"ms":[[1]]}})",
       "1 rows, expected 2"},
      {R"({"prefill":{"tokens":[1],"ms":[1]},"decode":{"active_kv_tokens":[0],
          "context_length":[1,2],"ms":[[1]]}})",
       "row 0 has 1 values, expected 2"},
      {R"({"prefill":{"tokens":[1],"ms":[1]},"decode":{"active_kv_tokens":[0],
          "context_length":[1],"ms":[5]}})",
       "decode.ms[0]"},
  };
  for (const auto& c : cases) {
    auto p = ProfileTiming::parse(c.json);
    ASSERT_FALSE(p.ok()) << c.json;
    EXPECT_EQ(p.error().reason, "bad_profile");
    EXPECT_NE(p.error().message.find(c.message_part), std::string::npos)
        << p.error().message << " / expected: " << c.message_part;
  }
}

}  // namespace
}  // namespace kvmock
