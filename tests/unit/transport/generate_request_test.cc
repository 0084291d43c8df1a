// A Dynamo PreprocessedRequest's stop conditions and seed reach the worker (issue #17), and
// the finish reasons go back in Dynamo's words.
#include <gtest/gtest.h>

#include "transport/nats/generate_intake.h"

namespace kvmock {
namespace {

TEST(PreprocessedRequest, StopConditionsAndTheSeedAreParsed) {
  auto request = parse_preprocessed_request(R"({
    "token_ids": [1, 2, 3],
    "stop_conditions": {"max_tokens": 9, "min_tokens": 4, "ignore_eos": true,
                        "stop_token_ids": [7, 8], "stop_token_ids_hidden": [2]},
    "eos_token_ids": [0],
    "sampling_options": {"seed": 1234, "temperature": 0.5}
  })");
  ASSERT_TRUE(request.ok()) << request.error().message;
  EXPECT_EQ(request->max_tokens, 9u);
  EXPECT_EQ(request->min_tokens, 4u);
  EXPECT_TRUE(request->ignore_eos);
  EXPECT_EQ(request->stop_token_ids, (std::vector<TokenId>{7, 8}));
  // Hidden stop ids end a Dynamo stream at the frontend: they must never be generated.
  EXPECT_EQ(request->eos_token_ids, (std::vector<TokenId>{0, 2}));
  EXPECT_EQ(request->seed, 1234u);
}

TEST(PreprocessedRequest, WithoutStopConditionsNothingIsSet) {
  auto request = parse_preprocessed_request(R"({"token_ids": [1], "sampling_options": {}})");
  ASSERT_TRUE(request.ok());
  EXPECT_FALSE(request->ignore_eos);
  EXPECT_EQ(request->min_tokens, 0u);
  EXPECT_TRUE(request->stop_token_ids.empty());
  EXPECT_FALSE(request->seed.has_value());
  auto null_seed = parse_preprocessed_request(R"({"token_ids": [1],
                                                  "sampling_options": {"seed": null}})");
  ASSERT_TRUE(null_seed.ok());
  EXPECT_FALSE(null_seed->seed.has_value());
}

TEST(PreprocessedRequest, ANegativeSeedKeepsItsBitsAndANonIntegerIsRefused) {
  auto negative =
      parse_preprocessed_request(R"({"token_ids": [1], "sampling_options": {"seed": -1}})");
  ASSERT_TRUE(negative.ok());
  EXPECT_EQ(negative->seed, UINT64_MAX);
  auto text =
      parse_preprocessed_request(R"({"token_ids": [1], "sampling_options": {"seed": "7"}})");
  ASSERT_FALSE(text.ok());
  EXPECT_EQ(text.error().reason, "bad_request");
  EXPECT_NE(text.error().message.find("sampling_options.seed"), std::string::npos);
  auto stop_ids = parse_preprocessed_request(
      R"({"token_ids": [1], "stop_conditions": {"stop_token_ids": [-3]}})");
  ASSERT_FALSE(stop_ids.ok());
  EXPECT_NE(stop_ids.error().message.find("stop_conditions.stop_token_ids[0]"), std::string::npos);
}

// Dynamo's FinishReason serializes an aborted request as "cancelled".
TEST(PreprocessedRequest, FinishReasonsGoBackInDynamosWords) {
  EXPECT_EQ(dynamo_finish_reason("abort"), "cancelled");
  EXPECT_EQ(dynamo_finish_reason("stop"), "stop");
  EXPECT_EQ(dynamo_finish_reason("length"), "length");
}

}  // namespace
}  // namespace kvmock
