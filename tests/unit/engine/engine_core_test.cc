#include "core/engine/engine_core.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <set>

#include "core/timing/fixed_timing.h"
#include "core/timing/polynomial_timing.h"

namespace kvmock {
namespace {

Request make_request(RequestId id, uint32_t len, uint32_t max_tokens) {
  Request r;
  r.id = id;
  r.prompt.resize(len);
  std::iota(r.prompt.begin(), r.prompt.end(), 1);
  r.max_tokens = max_tokens;
  return r;
}

EngineArgs args_with(double speedup) {
  EngineArgs args;
  args.block_size = 64;
  args.num_gpu_blocks = 1000;
  args.speedup_ratio = speedup;
  return args;
}

TEST(EngineCore, PassEndsAfterModeledPrefillAndDecodeDividedBySpeedup) {
  EngineCore engine(args_with(10), 7, 0, std::make_unique<PolynomialTiming>());
  ASSERT_TRUE(engine.add_request(make_request(1, 1000, 5)).ok());
  const PassOutput pass = engine.step(100.0);
  // 1000 new tokens; 16 active blocks of 64 out of 1000 blocks during decode.
  const double prefill = 4.209989e-07 * 1e6 + 1.518344e-02 * 1000 + 16.50142;
  const double p = 16.0 / 1000.0;
  const double decode = -25.74 * p * p + 54.01 * p + 5.74;
  EXPECT_DOUBLE_EQ(pass.start_ms, 100.0);
  EXPECT_DOUBLE_EQ(pass.prefill_ms, prefill / 10);
  EXPECT_DOUBLE_EQ(pass.decode_ms, decode / 10);
  EXPECT_DOUBLE_EQ(pass.end_ms, 100.0 + (prefill + decode) / 10);
  EXPECT_DOUBLE_EQ(pass.fpm.wall_time_secs, (prefill + decode) / 10 / 1000);
}

// Runs passes until the engine has nothing left; the cached prompt tokens each request
// reported when admitted.
std::vector<uint32_t> run_to_idle(EngineCore& engine) {
  std::vector<uint32_t> cached;
  for (int pass = 0; pass < 100 && engine.has_work(); ++pass) {
    for (const RequestOutput& output : engine.step(pass).outputs) {
      if (output.admitted) cached.push_back(output.cached_tokens);
    }
  }
  return cached;
}

TEST(EngineCore, ResetPrefixCacheForgetsEveryBlockButNotWhileARequestIsLive) {
  EngineCore engine(args_with(0), 7, 0, std::make_unique<PolynomialTiming>());
  ASSERT_TRUE(engine.add_request(make_request(1, 256, 2)).ok());
  EXPECT_FALSE(engine.reset_prefix_cache()) << "refused with a request live";
  run_to_idle(engine);
  ASSERT_TRUE(engine.add_request(make_request(2, 256, 2)).ok());
  EXPECT_EQ(run_to_idle(engine), std::vector<uint32_t>{192}) << "the prefix is cached";

  EXPECT_TRUE(engine.reset_prefix_cache());
  ASSERT_TRUE(engine.add_request(make_request(3, 256, 2)).ok());
  EXPECT_EQ(run_to_idle(engine), std::vector<uint32_t>{0}) << "nothing cached after the reset";
}

TEST(EngineCore, ZeroSpeedupMakesPassesInstant) {
  EngineCore engine(args_with(0), 7, 0, std::make_unique<PolynomialTiming>());
  ASSERT_TRUE(engine.add_request(make_request(1, 100, 5)).ok());
  const PassOutput pass = engine.step(42.0);
  EXPECT_EQ(pass.end_ms, 42.0);
  EXPECT_EQ(pass.outputs.size(), 1u);
}

TEST(EngineCore, EventsAreDeviceTierRouterEventsOfThisWorkerAndRank) {
  EngineCore engine(args_with(1), 1234, 3, std::make_unique<FixedTiming>(1, 1));
  ASSERT_TRUE(engine.add_request(make_request(1, 130, 1)).ok());
  const PassOutput pass = engine.step(0);
  ASSERT_EQ(pass.events.size(), 1u);
  const RouterEvent& e = pass.events[0];
  EXPECT_EQ(e.worker_id, 1234u);
  EXPECT_EQ(e.storage_tier, StorageTier::kDevice);
  EXPECT_EQ(e.event.event_id, 0u);
  EXPECT_EQ(e.event.dp_rank, 3u);
  ASSERT_TRUE(is_store(e.event.data));
  EXPECT_EQ(std::get<StoreData>(e.event.data).blocks.size(), 2u);
}

TEST(EngineCore, LoadAccessorsFollowThePool) {
  EngineCore engine(args_with(1), 1, 0, std::make_unique<FixedTiming>(1, 1));
  ASSERT_TRUE(engine.add_request(make_request(1, 200, 3)).ok());
  EXPECT_EQ(engine.kv_used_blocks(), 0u);
  const PassOutput pass = engine.step(0);
  EXPECT_EQ(engine.active_decode_blocks(), 4u);
  EXPECT_EQ(engine.kv_used_blocks(), 4u);
  EXPECT_EQ(pass.metrics.active_blocks, 4u);
  EXPECT_EQ(pass.metrics.total_blocks, 1000u);
  EXPECT_DOUBLE_EQ(pass.metrics.gpu_cache_usage, 0.004);
  EXPECT_EQ(pass.metrics.running_requests, 1u);
}

TEST(EngineCore, InvalidRequestsAreErrorsNotCrashes) {
  EngineCore engine(args_with(1), 1, 0, std::make_unique<FixedTiming>(1, 1));
  auto empty = engine.add_request(make_request(1, 0, 3));
  ASSERT_FALSE(empty.ok());
  EXPECT_EQ(empty.error().reason, "empty_prompt");
  auto huge = engine.add_request(make_request(2, 64 * 1000 + 1, 3));
  ASSERT_FALSE(huge.ok());
  EXPECT_EQ(huge.error().reason, "exceeds_kv_capacity");
  EXPECT_FALSE(engine.has_work());
}

TEST(EngineCore, NullTimingModelFallsBackToPolynomial) {
  EngineCore engine(args_with(1), 1, 0, nullptr);
  ASSERT_TRUE(engine.add_request(make_request(1, 1000, 1)).ok());
  const PassOutput pass = engine.step(0);
  EXPECT_GT(pass.prefill_ms, 32.0);
}

TEST(EngineCore, CancelledRequestIsReportedOnceWithItsReason) {
  EngineCore engine(args_with(1), 1, 0, std::make_unique<FixedTiming>(1, 1));
  ASSERT_TRUE(engine.add_request(make_request(1, 100, 50)).ok());
  (void)engine.step(0);
  ASSERT_TRUE(engine.cancel(1));
  const PassOutput pass = engine.step(2);
  ASSERT_EQ(pass.outputs.size(), 1u);
  EXPECT_EQ(finish_reason_name(pass.outputs[0].finish_reason), "abort");
  EXPECT_EQ(engine.active_decode_blocks(), 0u);
  EXPECT_FALSE(engine.has_work());
}

TEST(EngineCore, SynthesizedOutputTokensAreDeterministicPerSeedIdAndPosition) {
  EXPECT_EQ(synthesize_output_token(1, 2, 3), synthesize_output_token(1, 2, 3));
  EXPECT_NE(synthesize_output_token(1, 2, 3), synthesize_output_token(1, 2, 4));
  for (uint32_t i = 0; i < 100; ++i) {
    const TokenId t = synthesize_output_token(9, 9, i);
    EXPECT_GE(t, 1000u);
    EXPECT_LT(t, 32000u);
  }
}

TEST(EngineCore, ConstrainedOutputTokensStayInTheVocabularyAndAvoidExcludedIds) {
  for (uint32_t i = 0; i < 200; ++i) {
    EXPECT_EQ(synthesize_output_token(9, 9, i, kDefaultOutputVocabEnd, {}),
              synthesize_output_token(9, 9, i));
    const TokenId small = synthesize_output_token(9, 9, i, 1200, {});
    EXPECT_GE(small, 1000u);
    EXPECT_LT(small, 1200u);
    const TokenId tiny = synthesize_output_token(9, 9, i, 50, {});
    EXPECT_LT(tiny, 50u);
  }
  // A vocabulary of three ids, two of them excluded: only the third is left.
  const std::vector<TokenId> eos = {0, 2};
  for (uint32_t i = 0; i < 20; ++i) EXPECT_EQ(synthesize_output_token(1, 1, i, 3, eos), 1u);
}

TEST(EngineCore, OutputTokensFromAVocabularyListUseOnlyItsAllowedEntries) {
  const std::vector<TokenId> words = {17, 4242, 90001, 12};
  std::set<TokenId> seen;
  for (uint32_t i = 0; i < 200; ++i) {
    const TokenId t = synthesize_output_token_from(5, 6, i, words, {});
    EXPECT_NE(std::find(words.begin(), words.end(), t), words.end()) << t;
    seen.insert(t);
    const std::vector<TokenId> excluded = {4242, 12};
    const TokenId allowed = synthesize_output_token_from(5, 6, i, words, excluded);
    EXPECT_TRUE(allowed == 17 || allowed == 90001) << allowed;
  }
  EXPECT_EQ(seen.size(), words.size());  // every entry gets used

  // Through the engine: a request carrying the list generates only its ids.
  Request request;
  request.id = 3;
  request.prompt = {1, 2, 3};
  request.max_tokens = 40;
  request.output_vocabulary = std::make_shared<const std::vector<TokenId>>(words);
  RequestState state(std::move(request));
  for (int i = 0; i < 40; ++i) {
    const TokenId t = state.append_output(7);
    EXPECT_NE(std::find(words.begin(), words.end(), t), words.end()) << t;
  }
}

TEST(EngineCore, OutputTokensNeverUseTheRequestsExcludedIds) {
  EngineCore engine(args_with(0), 7, 0, std::make_unique<FixedTiming>(1, 1));
  Request request = make_request(1, 10, 200);
  request.output_vocab_end = 1004;
  request.excluded_output_tokens = {1000, 1001, 1003};
  ASSERT_TRUE(engine.add_request(std::move(request)).ok());
  std::vector<TokenId> produced;
  for (int pass = 0; pass < 400 && engine.has_work(); ++pass) {
    for (const RequestOutput& output : engine.step(pass).outputs) {
      produced.insert(produced.end(), output.tokens.begin(), output.tokens.end());
    }
  }
  ASSERT_EQ(produced.size(), 200u);
  for (TokenId t : produced) EXPECT_EQ(t, 1002u);
}

}  // namespace
}  // namespace kvmock
