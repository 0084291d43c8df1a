// vLLM's finish reasons and stop conditions in the engine (issue #17): stop() and cancel(),
// stop_token_ids with min_tokens, the EOS drawn from workers.engine.output_length, and the
// per-request seed.
#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <optional>
#include <vector>

#include "core/engine/engine_core.h"
#include "core/timing/fixed_timing.h"
#include "tests/support/engine_requests.h"

namespace kvmock {
namespace {

using testing::make_request;

EngineArgs small_args(uint64_t seed = 0) {
  EngineArgs args;
  args.block_size = 16;
  args.num_gpu_blocks = 1000;
  args.seed = seed;
  return args;
}

// What one request produced, run alone on an engine until it finished.
struct Outcome {
  std::vector<TokenId> tokens;
  FinishReason reason = FinishReason::kNone;
  std::optional<TokenId> matched;
  uint32_t num_generated = 0;
};

Outcome run_alone(const EngineArgs& args, Request request, DpRank rank = 0) {
  EngineCore engine(args, 1, rank, std::make_unique<FixedTiming>(1, 1));
  const RequestId id = request.id;
  EXPECT_TRUE(engine.add_request(std::move(request)).ok());
  Outcome run;
  double now = 0;
  for (int pass = 0; pass < 10000 && engine.has_work(); ++pass) {
    PassOutput out = engine.step(now);
    now = out.end_ms;
    for (const RequestOutput& o : out.outputs) {
      if (o.id != id) continue;
      run.tokens.insert(run.tokens.end(), o.tokens.begin(), o.tokens.end());
      if (o.finished) {
        run.reason = o.finish_reason;
        run.matched = o.matched_stop_token;
        run.num_generated = o.num_generated;
      }
    }
  }
  return run;
}

// The first position at or after `from` whose id does not occur before it, so a stop on that
// id can only fire there.
size_t first_unique_position(const std::vector<TokenId>& tokens, size_t from) {
  for (size_t p = from; p < tokens.size(); ++p) {
    if (std::find(tokens.begin(), tokens.begin() + static_cast<long>(p), tokens[p]) ==
        tokens.begin() + static_cast<long>(p)) {
      return p;
    }
  }
  return tokens.size();
}

TEST(StopConditions, FinishReasonsHaveVllmsNames) {
  EXPECT_EQ(finish_reason_name(FinishReason::kLength), "length");
  EXPECT_EQ(finish_reason_name(FinishReason::kStop), "stop");
  EXPECT_EQ(finish_reason_name(FinishReason::kAbort), "abort");
  EXPECT_EQ(finish_reason_name(FinishReason::kError), "error");
}

TEST(StopConditions, WithoutStopConditionsARequestRunsToMaxTokensAndFinishesLength) {
  const Outcome run = run_alone(small_args(), make_request(1, 40, 20));
  EXPECT_EQ(run.tokens.size(), 20u);
  EXPECT_EQ(run.reason, FinishReason::kLength);
  EXPECT_FALSE(run.matched.has_value());
}

TEST(StopConditions, StopEndsARunningRequestWithStopAndFreesItsBlocks) {
  EngineCore engine(small_args(), 1, 0, std::make_unique<FixedTiming>(1, 1));
  ASSERT_TRUE(engine.add_request(make_request(1, 40, 50)).ok());
  (void)engine.step(0);
  (void)engine.step(2);
  ASSERT_GT(engine.kv_used_blocks(), 0u);
  ASSERT_TRUE(engine.stop(1));
  EXPECT_EQ(engine.kv_used_blocks(), 0u);
  const PassOutput pass = engine.step(4);
  ASSERT_EQ(pass.outputs.size(), 1u);
  EXPECT_TRUE(pass.outputs[0].finished);
  EXPECT_EQ(pass.outputs[0].finish_reason, FinishReason::kStop);
  EXPECT_EQ(pass.outputs[0].num_generated, 2u);
  EXPECT_FALSE(engine.has_work());
  EXPECT_FALSE(engine.stop(1)) << "no longer live";
}

TEST(StopConditions, StopEndsAWaitingRequestToo) {
  EngineArgs args = small_args();
  args.max_num_seqs = 1;
  EngineCore engine(args, 1, 0, std::make_unique<FixedTiming>(1, 1));
  ASSERT_TRUE(engine.add_request(make_request(1, 40, 50)).ok());
  ASSERT_TRUE(engine.add_request(make_request(2, 40, 50, 500)).ok());
  (void)engine.step(0);
  ASSERT_EQ(engine.metrics().waiting_requests, 1u);
  ASSERT_TRUE(engine.stop(2));
  const PassOutput pass = engine.step(2);
  ASSERT_FALSE(pass.outputs.empty());
  EXPECT_EQ(pass.outputs[0].id, 2u);
  EXPECT_EQ(pass.outputs[0].finish_reason, FinishReason::kStop);
  EXPECT_EQ(engine.metrics().waiting_requests, 0u);
}

TEST(StopConditions, AGeneratedStopTokenEndsTheRequestWithStopAndIsKeptInTheOutput) {
  const Outcome plain = run_alone(small_args(), make_request(1, 40, 30));
  ASSERT_EQ(plain.tokens.size(), 30u);
  const size_t p = first_unique_position(plain.tokens, 6);
  ASSERT_LT(p, 29u);
  Request request = make_request(1, 40, 30);
  request.stop_token_ids = {5, plain.tokens[p]};  // 5 is never synthesized (below 1000)
  const Outcome stopped = run_alone(small_args(), std::move(request));
  EXPECT_EQ(stopped.reason, FinishReason::kStop);
  ASSERT_EQ(stopped.tokens.size(), p + 1);
  EXPECT_EQ(stopped.tokens.back(), plain.tokens[p]);
  EXPECT_EQ(stopped.num_generated, p + 1);
  ASSERT_TRUE(stopped.matched.has_value());
  EXPECT_EQ(*stopped.matched, plain.tokens[p]);
  EXPECT_TRUE(std::equal(stopped.tokens.begin(), stopped.tokens.end(), plain.tokens.begin()));
}

TEST(StopConditions, StopTokensBeforeMinTokensAreIgnoredAsVllmDoes) {
  const Outcome plain = run_alone(small_args(), make_request(1, 40, 30));
  const size_t p = first_unique_position(plain.tokens, 6);
  ASSERT_LT(p, 29u);
  // The stop id is output token p + 1: min_tokens p + 1 lets it stop, p + 2 does not.
  Request at_min = make_request(1, 40, 30);
  at_min.stop_token_ids = {plain.tokens[p]};
  at_min.min_tokens = static_cast<uint32_t>(p + 1);
  EXPECT_EQ(run_alone(small_args(), std::move(at_min)).tokens.size(), p + 1);

  Request past_min = make_request(1, 40, 30);
  past_min.stop_token_ids = {plain.tokens[p]};
  past_min.min_tokens = static_cast<uint32_t>(p + 2);
  const Outcome run = run_alone(small_args(), std::move(past_min));
  const bool recurs = std::find(plain.tokens.begin() + static_cast<long>(p) + 1, plain.tokens.end(),
                                plain.tokens[p]) != plain.tokens.end();
  ASSERT_FALSE(recurs) << "pick a seed whose stop id appears once";
  EXPECT_EQ(run.reason, FinishReason::kLength);
  EXPECT_EQ(run.tokens.size(), 30u);
}

TEST(StopConditions, AStopTokenAtMaxTokensFinishesLengthAsVllmChecksLengthFirst) {
  const Outcome plain = run_alone(small_args(), make_request(1, 40, 8));
  Request request = make_request(1, 40, 8);
  request.stop_token_ids = {plain.tokens.back()};
  const bool earlier = std::find(plain.tokens.begin(), plain.tokens.end() - 1,
                                 plain.tokens.back()) != plain.tokens.end() - 1;
  ASSERT_FALSE(earlier);
  const Outcome run = run_alone(small_args(), std::move(request));
  EXPECT_EQ(run.reason, FinishReason::kLength);
  EXPECT_FALSE(run.matched.has_value());
}

TEST(StopConditions, ThePerRequestSeedMakesTheOutputAFunctionOfSeedAndPromptOnly) {
  Request a = make_request(11, 40, 24);
  a.seed = 1234;
  Request b = make_request(99, 40, 24);  // another id, engine seed and rank
  b.seed = 1234;
  const Outcome on_a = run_alone(small_args(1), std::move(a), 0);
  const Outcome on_b = run_alone(small_args(2), std::move(b), 3);
  ASSERT_EQ(on_a.tokens.size(), 24u);
  EXPECT_EQ(on_a.tokens, on_b.tokens);

  Request other_seed = make_request(11, 40, 24);
  other_seed.seed = 1235;
  EXPECT_NE(run_alone(small_args(1), std::move(other_seed)).tokens, on_a.tokens);
  Request other_prompt = make_request(11, 40, 24, 2);
  other_prompt.seed = 1234;
  EXPECT_NE(run_alone(small_args(1), std::move(other_prompt)).tokens, on_a.tokens);
  // Without a seed the engine's seed and the id decide, as before.
  EXPECT_NE(run_alone(small_args(1), make_request(11, 40, 24)).tokens,
            run_alone(small_args(2), make_request(11, 40, 24)).tokens);
}

EngineArgs eos_args(OutputLengthDistribution distribution, uint32_t mean) {
  EngineArgs args = small_args(7);
  args.output_length.distribution = distribution;
  args.output_length.mean = mean;
  return args;
}

TEST(StopConditions, TheDefaultDistributionAlwaysRunsToMaxTokens) {
  const EngineArgs args = small_args(7);
  EXPECT_EQ(args.output_length.distribution, OutputLengthDistribution::kMaxTokens);
  for (RequestId id = 1; id <= 20; ++id) {
    EXPECT_FALSE(eos_output_length(args.output_length, make_request(id, 40, 500), 7));
  }
}

TEST(StopConditions, AnEosDrawnBeforeMaxTokensFinishesStopAtThatLength) {
  const EngineArgs args = eos_args(OutputLengthDistribution::kUniform, 4);
  const Request request = make_request(3, 40, 100);
  const std::optional<uint32_t> eos = eos_output_length(args.output_length, request, args.seed);
  ASSERT_TRUE(eos.has_value());
  EXPECT_GE(*eos, 1u);
  EXPECT_LE(*eos, 7u);  // uniform over [1, 2 * 4 - 1]
  const Outcome run = run_alone(args, request);
  EXPECT_EQ(run.reason, FinishReason::kStop);
  EXPECT_EQ(run.tokens.size(), *eos);
  EXPECT_FALSE(run.matched.has_value());
}

TEST(StopConditions, IgnoreEosRunsToMaxTokens) {
  const EngineArgs args = eos_args(OutputLengthDistribution::kExponential, 4);
  Request request = make_request(3, 40, 100);
  request.ignore_eos = true;
  EXPECT_FALSE(eos_output_length(args.output_length, request, args.seed));
  const Outcome run = run_alone(args, std::move(request));
  EXPECT_EQ(run.reason, FinishReason::kLength);
  EXPECT_EQ(run.tokens.size(), 100u);
}

TEST(StopConditions, TheEosNeverComesBeforeMinTokens) {
  const EngineArgs args = eos_args(OutputLengthDistribution::kUniform, 4);
  Request request = make_request(3, 40, 100);
  request.min_tokens = 50;  // every uniform draw is at most 7
  EXPECT_EQ(eos_output_length(args.output_length, request, args.seed), 50u);
  const Outcome run = run_alone(args, std::move(request));
  EXPECT_EQ(run.reason, FinishReason::kStop);
  EXPECT_EQ(run.tokens.size(), 50u);

  Request capped = make_request(3, 40, 50);
  capped.min_tokens = 50;  // the EOS would fall on max_tokens: that is "length"
  EXPECT_FALSE(eos_output_length(args.output_length, capped, args.seed));
  EXPECT_EQ(run_alone(args, std::move(capped)).reason, FinishReason::kLength);
}

TEST(StopConditions, DrawnLengthsFollowTheirDistributionAndNeverPassMaxTokens) {
  for (auto distribution :
       {OutputLengthDistribution::kUniform, OutputLengthDistribution::kExponential}) {
    const EngineArgs args = eos_args(distribution, 40);
    double sum = 0;
    uint32_t longest = 0;
    constexpr int kDraws = 4000;
    for (RequestId id = 1; id <= kDraws; ++id) {
      const auto eos = eos_output_length(args.output_length, make_request(id, 8, 100000), 7);
      ASSERT_TRUE(eos.has_value());
      EXPECT_GE(*eos, 1u);
      sum += *eos;
      longest = std::max(longest, *eos);
      // Capped: a draw at or past max_tokens means no EOS.
      const auto capped = eos_output_length(args.output_length, make_request(id, 8, 30), 7);
      if (capped) {
        EXPECT_LT(*capped, 30u);
      }
    }
    EXPECT_NEAR(sum / kDraws, 40.0, 2.5) << static_cast<int>(distribution);
    if (distribution == OutputLengthDistribution::kUniform) {
      EXPECT_LE(longest, 79u);
    } else {
      EXPECT_GT(longest, 150u) << "an exponential has a long tail";
    }
  }
}

TEST(StopConditions, TheEosDrawIsDeterministicAndWithASeedIndependentOfTheRequestId) {
  const EngineArgs args = eos_args(OutputLengthDistribution::kExponential, 40);
  Request a = make_request(1, 40, 100000);
  Request b = make_request(2, 40, 100000);
  EXPECT_EQ(eos_output_length(args.output_length, a, 7),
            eos_output_length(args.output_length, a, 7));
  a.seed = 5;
  b.seed = 5;
  EXPECT_EQ(eos_output_length(args.output_length, a, 7),
            eos_output_length(args.output_length, b, 8));
  // Without a seed, ids draw independently: among a few, not all agree.
  std::vector<uint32_t> draws;
  for (RequestId id = 1; id <= 8; ++id) {
    draws.push_back(*eos_output_length(args.output_length, make_request(id, 40, 100000), 7));
  }
  EXPECT_NE(std::count(draws.begin(), draws.end(), draws[0]), 8);
}

}  // namespace
}  // namespace kvmock
