#include "core/scheduler/scheduler.h"

#include <gtest/gtest.h>

#include <numeric>

#include "tests/support/engine_requests.h"

namespace kvmock {
namespace {

EngineArgs small_args(uint32_t block_size, uint64_t blocks, uint32_t budget = 8192) {
  EngineArgs args;
  args.block_size = block_size;
  args.num_gpu_blocks = blocks;
  args.max_num_batched_tokens = budget;
  return args;
}

using testing::make_request;

const RequestOutput* find_output(const SchedulerPass& pass, RequestId id) {
  for (const auto& o : pass.outputs) {
    if (o.id == id) return &o;
  }
  return nullptr;
}

std::vector<StoreData> stored_events(const SchedulerPass& pass) {
  std::vector<StoreData> out;
  for (const auto& e : pass.events) {
    if (auto* s = std::get_if<StoreData>(&e)) out.push_back(*s);
  }
  return out;
}

TEST(Scheduler, ZeroOutputRequestCompletesAfterPrefillWithoutAToken) {
  Scheduler s(small_args(4, 16));
  ASSERT_TRUE(s.add(make_request(1, 8, 0)).ok());
  const auto pass = s.run_pass();
  const auto* out = find_output(pass, 1);
  ASSERT_NE(out, nullptr);
  EXPECT_TRUE(out->finished);
  EXPECT_EQ(out->finish_reason, FinishReason::kLength);
  EXPECT_TRUE(out->tokens.empty());
  EXPECT_EQ(pass.fpm.num_decode_requests, 0u);
  EXPECT_EQ(pass.batch.decode_requests, 0u);
  EXPECT_EQ(s.pool().num_active(), 0u);
  EXPECT_FALSE(s.has_work());
}

TEST(Scheduler, FirstTokenIsEmittedInThePassThatFinishesPrefill) {
  Scheduler s(small_args(4, 16));
  ASSERT_TRUE(s.add(make_request(1, 8, 3)).ok());
  const auto pass = s.run_pass();
  const auto* out = find_output(pass, 1);
  ASSERT_NE(out, nullptr);
  EXPECT_TRUE(out->admitted);
  EXPECT_TRUE(out->first_token);
  EXPECT_EQ(out->tokens.size(), 1u);
  EXPECT_FALSE(out->finished);
  EXPECT_EQ(pass.batch.prefill_requests, 1u);
  EXPECT_EQ(pass.batch.decode_requests, 1u);
}

TEST(Scheduler, SampledTokenSlotIsTakenInTheNextPass) {
  Scheduler s(small_args(4, 16));
  ASSERT_TRUE(s.add(make_request(1, 4, 3)).ok());
  (void)s.run_pass();
  EXPECT_EQ(s.pool().num_active(), 1u);  // token 5 has no slot yet
  (void)s.run_pass();
  EXPECT_EQ(s.pool().num_active(), 2u);
}

TEST(Scheduler, RequestFinishesAtItsOutputLengthAndFreesItsBlocks) {
  Scheduler s(small_args(4, 16));
  ASSERT_TRUE(s.add(make_request(1, 5, 3)).ok());
  std::vector<TokenId> tokens;
  bool finished = false;
  for (int i = 0; i < 10 && !finished; ++i) {
    const auto pass = s.run_pass();
    const auto* out = find_output(pass, 1);
    ASSERT_NE(out, nullptr);
    tokens.insert(tokens.end(), out->tokens.begin(), out->tokens.end());
    finished = out->finished;
  }
  EXPECT_TRUE(finished);
  EXPECT_EQ(tokens.size(), 3u);
  EXPECT_EQ(s.pool().num_active(), 0u);
  // Block 0 stays cached; block 1 never filled (the last token is never computed).
  EXPECT_EQ(s.pool().num_inactive(), 1u);
}

TEST(Scheduler, FullBlockStaysHiddenUntilThePassThatComputesItsLastToken) {
  Scheduler s(small_args(4, 16, /*budget=*/3));
  ASSERT_TRUE(s.add(make_request(1, 10, 1)).ok());
  const auto p1 = s.run_pass();  // tokens 0..3: block 0 not complete
  EXPECT_TRUE(stored_events(p1).empty());
  const auto p2 = s.run_pass();  // tokens 3..6: block 0 complete
  auto st2 = stored_events(p2);
  ASSERT_EQ(st2.size(), 1u);
  ASSERT_EQ(st2[0].blocks.size(), 1u);
  EXPECT_EQ(st2[0].parent_hash, std::nullopt);
  const auto p3 = s.run_pass();  // tokens 6..9: block 1 complete, block 2 not
  auto st3 = stored_events(p3);
  ASSERT_EQ(st3.size(), 1u);
  ASSERT_EQ(st3[0].blocks.size(), 1u);
  EXPECT_EQ(st3[0].parent_hash, std::optional<BlockHash>(st2[0].blocks[0].block_hash));
}

TEST(Scheduler, StoredBlocksCarryDynamoSequenceAndContentHashes) {
  Scheduler s(small_args(4, 16));
  Request r;
  r.id = 1;
  r.prompt = {11, 22, 33, 44, 55, 66, 77, 88, 99};
  r.max_tokens = 1;
  ASSERT_TRUE(s.add(r).ok());
  const auto stored = stored_events(s.run_pass());
  ASSERT_EQ(stored.size(), 1u);
  ASSERT_EQ(stored[0].blocks.size(), 2u);
  EXPECT_EQ(stored[0].blocks[0].block_hash, 4117275816416024698ull);
  EXPECT_EQ(stored[0].blocks[0].tokens_hash, 4117275816416024698ull);
  EXPECT_EQ(stored[0].blocks[1].block_hash, 5947898228081096063ull);
  EXPECT_EQ(stored[0].blocks[1].tokens_hash, 6081346995852963768ull);
}

TEST(Scheduler, ChunkedPrefillReportsEachChunkNotTheFullPrompt) {
  Scheduler s(small_args(4, 16, /*budget=*/8));
  ASSERT_TRUE(s.add(make_request(1, 16, 2)).ok());
  const auto p1 = s.run_pass();
  EXPECT_EQ(p1.fpm.sum_prefill_tokens, 8u);
  EXPECT_EQ(p1.fpm.sum_prefill_kv_tokens, 0u);
  EXPECT_EQ(find_output(p1, 1)->tokens.size(), 0u);
  const auto p2 = s.run_pass();
  EXPECT_EQ(p2.fpm.sum_prefill_tokens, 8u);
  EXPECT_EQ(p2.fpm.sum_prefill_kv_tokens, 8u);
  EXPECT_EQ(p2.batch.prefill_new_tokens(), 8u);
  EXPECT_EQ(find_output(p2, 1)->tokens.size(), 1u);
}

TEST(Scheduler, PrefillLengthVarianceIsOverFullPromptLengths) {
  Scheduler s(small_args(4, 16));
  ASSERT_TRUE(s.add(make_request(1, 4, 1, 100)).ok());
  ASSERT_TRUE(s.add(make_request(2, 12, 1, 200)).ok());
  const auto pass = s.run_pass();
  EXPECT_EQ(pass.fpm.num_prefill_requests, 2u);
  EXPECT_DOUBLE_EQ(pass.fpm.var_prefill_length, 16.0);
}

TEST(Scheduler, WithoutChunkedPrefillAPromptWaitsForRoomForAllOfIt) {
  EngineArgs args = small_args(4, 16, /*budget=*/10);
  args.enable_chunked_prefill = false;
  Scheduler s(args);
  ASSERT_TRUE(s.add(make_request(1, 8, 2, 100)).ok());
  ASSERT_TRUE(s.add(make_request(2, 8, 2, 200)).ok());
  const auto pass = s.run_pass();
  EXPECT_EQ(pass.fpm.sum_prefill_tokens, 8u);
  EXPECT_EQ(s.num_running(), 1u);
  EXPECT_EQ(s.num_waiting(), 1u);
}

TEST(Scheduler, AddRejectsRequestsThatCanNeverRun) {
  EngineArgs args = small_args(4, 2, /*budget=*/5);
  args.max_model_len = 7;
  args.enable_chunked_prefill = false;
  Scheduler s(args);
  EXPECT_EQ(s.add(make_request(1, 0, 1)).error().reason, "empty_prompt");
  EXPECT_EQ(s.add(make_request(2, 7, 1)).error().reason, "prompt_too_long");
  EXPECT_EQ(s.add(make_request(3, 6, 1)).error().reason, "exceeds_batch_budget");
  Scheduler tiny(small_args(4, 2));
  EXPECT_EQ(tiny.add(make_request(4, 9, 1)).error().reason, "exceeds_kv_capacity");
  ASSERT_TRUE(s.add(make_request(5, 4, 1)).ok());
  EXPECT_EQ(s.add(make_request(5, 4, 1)).error().reason, "duplicate_request_id");
  EXPECT_EQ(s.num_waiting(), 1u);
}

TEST(Scheduler, AdmissionIsStrictFifoWhenTheHeadDoesNotFit) {
  Scheduler s(small_args(4, 4));
  ASSERT_TRUE(s.add(make_request(1, 12, 10, 100)).ok());  // holds 3 of 4 blocks
  (void)s.run_pass();
  ASSERT_TRUE(s.add(make_request(2, 8, 1, 200)).ok());  // needs 2: must wait
  ASSERT_TRUE(s.add(make_request(3, 4, 1, 300)).ok());  // would fit, but is behind 2
  const auto pass = s.run_pass();
  EXPECT_EQ(find_output(pass, 3), nullptr);
  EXPECT_EQ(s.num_waiting(), 2u);
}

TEST(Scheduler, MaxNumSeqsCapsRunningRequests) {
  EngineArgs args = small_args(4, 64);
  args.max_num_seqs = 2;
  Scheduler s(args);
  for (RequestId id = 1; id <= 3; ++id) ASSERT_TRUE(s.add(make_request(id, 4, 5, id * 100)).ok());
  (void)s.run_pass();
  EXPECT_EQ(s.num_running(), 2u);
  EXPECT_EQ(s.num_waiting(), 1u);
}

TEST(Scheduler, FullyCachedPromptRecomputesItsLastBlock) {
  Scheduler s(small_args(4, 16));
  ASSERT_TRUE(s.add(make_request(1, 8, 1)).ok());
  (void)s.run_pass();
  ASSERT_FALSE(s.has_work());
  ASSERT_TRUE(s.add(make_request(2, 8, 1)).ok());
  const auto pass = s.run_pass();
  const auto* out = find_output(pass, 2);
  ASSERT_NE(out, nullptr);
  EXPECT_EQ(out->cached_tokens, 4u);
  EXPECT_EQ(pass.fpm.sum_prefill_tokens, 4u);
  EXPECT_EQ(pass.fpm.sum_prefill_kv_tokens, 4u);
  EXPECT_TRUE(pass.events.empty());  // the recomputed block is a second copy of a known hash
}

TEST(Scheduler, LaterRequestInTheSamePassHitsBlocksComputedEarlierInIt) {
  Scheduler s(small_args(4, 16));
  ASSERT_TRUE(s.add(make_request(1, 9, 1)).ok());
  ASSERT_TRUE(s.add(make_request(2, 9, 1)).ok());
  const auto pass = s.run_pass();
  EXPECT_EQ(find_output(pass, 1)->cached_tokens, 0u);
  EXPECT_EQ(find_output(pass, 2)->cached_tokens, 8u);
  EXPECT_EQ(stored_events(pass).size(), 1u);  // request 2 publishes nothing new
  const auto m = s.metrics();
  EXPECT_EQ(m.prefix_cache_queries_tokens, 18u);
  EXPECT_EQ(m.prefix_cache_hits_tokens, 8u);
}

TEST(Scheduler, LifoPreemptionEvictsTheNewestAndRequeuesItAtTheFront) {
  Scheduler s(small_args(4, 4));
  ASSERT_TRUE(s.add(make_request(1, 4, 20, 100)).ok());
  ASSERT_TRUE(s.add(make_request(2, 4, 20, 200)).ok());
  int pass_with_preemption = -1;
  for (int i = 0; i < 10 && pass_with_preemption < 0; ++i) {
    const auto pass = s.run_pass();
    if (s.metrics().preemptions_total > 0) {
      pass_with_preemption = i;
      EXPECT_EQ(pass.fpm.num_queued_decode, 1u);
      EXPECT_EQ(find_output(pass, 2), nullptr);  // the victim emitted nothing
    }
  }
  ASSERT_GE(pass_with_preemption, 0);
  EXPECT_EQ(s.num_running(), 1u);
  EXPECT_EQ(s.num_waiting(), 1u);
  EXPECT_EQ(s.pool().num_active(), 3u);  // request 1 only: victim's blocks were freed
}

TEST(Scheduler, FifoPreemptionEvictsTheOldest) {
  EngineArgs args = small_args(4, 4);
  args.preemption_mode = PreemptionMode::kFifo;
  Scheduler s(args);
  ASSERT_TRUE(s.add(make_request(1, 4, 20, 100)).ok());
  ASSERT_TRUE(s.add(make_request(2, 4, 20, 200)).ok());
  for (int i = 0; i < 10 && s.metrics().preemptions_total == 0; ++i) {
    const auto pass = s.run_pass();
    if (s.metrics().preemptions_total > 0) {
      EXPECT_EQ(find_output(pass, 1), nullptr);
    }
  }
  ASSERT_EQ(s.metrics().preemptions_total, 1u);
  // Request 2 keeps running; request 1 is back in waiting.
  const auto next = s.run_pass();
  ASSERT_NE(find_output(next, 2), nullptr);
}

TEST(Scheduler, PreemptedRequestKeepsItsGeneratedTokensAndResumes) {
  Scheduler s(small_args(4, 4));
  ASSERT_TRUE(s.add(make_request(1, 4, 12, 100)).ok());
  ASSERT_TRUE(s.add(make_request(2, 4, 6, 200)).ok());
  std::vector<TokenId> tokens2;
  bool finished2 = false;
  uint32_t generated_when_preempted = 0;
  for (int i = 0; i < 100 && s.has_work(); ++i) {
    const auto pass = s.run_pass();
    if (s.metrics().preemptions_total == 1 && generated_when_preempted == 0) {
      generated_when_preempted = static_cast<uint32_t>(tokens2.size());
      EXPECT_EQ(pass.fpm.sum_queued_decode_kv_tokens, 4 + generated_when_preempted);
    }
    if (const auto* o = find_output(pass, 2)) {
      tokens2.insert(tokens2.end(), o->tokens.begin(), o->tokens.end());
      finished2 = finished2 || o->finished;
    }
  }
  EXPECT_GE(s.metrics().preemptions_total, 1u);
  EXPECT_GT(generated_when_preempted, 0u);
  EXPECT_TRUE(finished2);
  ASSERT_EQ(tokens2.size(), 6u);  // no token lost or repeated across the preemption
  for (uint32_t i = 0; i < 6; ++i) EXPECT_EQ(tokens2[i], synthesize_output_token(0, 2, i));
  EXPECT_EQ(s.pool().num_active(), 0u);
}

TEST(Scheduler, NoWaitingRequestIsAdmittedInAPassThatPreempted) {
  // Identical prompts: after request 2 is preempted its prefix is still held by
  // request 1, so it would fit again at once; admission must wait for the next pass.
  Scheduler s(small_args(4, 6));
  ASSERT_TRUE(s.add(make_request(1, 8, 20)).ok());
  ASSERT_TRUE(s.add(make_request(2, 8, 20)).ok());
  for (int i = 0; i < 10 && s.metrics().preemptions_total == 0; ++i) (void)s.run_pass();
  ASSERT_EQ(s.metrics().preemptions_total, 1u);
  EXPECT_EQ(s.num_running(), 1u);
  EXPECT_EQ(s.num_waiting(), 1u);
  const auto next = s.run_pass();
  EXPECT_EQ(s.num_running(), 2u);
  EXPECT_EQ(s.num_waiting(), 0u);
  EXPECT_EQ(find_output(next, 2)->cached_tokens, 4u);  // credit of the first admission
}

TEST(Scheduler, RequestThatOutgrowsThePoolFinishesWithAnError) {
  Scheduler s(small_args(4, 2));
  ASSERT_TRUE(s.add(make_request(1, 4, 20)).ok());
  std::optional<RequestOutput> last;
  for (int i = 0; i < 50 && s.has_work(); ++i) {
    const auto pass = s.run_pass();
    if (const auto* o = find_output(pass, 1)) last = *o;
  }
  ASSERT_FALSE(s.has_work());
  ASSERT_TRUE(last.has_value());
  EXPECT_EQ(last->finish_reason, FinishReason::kError);
  EXPECT_EQ(last->error, "exceeds_kv_capacity");
  EXPECT_EQ(s.pool().num_active(), 0u);
}

TEST(Scheduler, CancelFreesBlocksAndIsReportedNextPass) {
  Scheduler s(small_args(4, 16));
  ASSERT_TRUE(s.add(make_request(1, 8, 10)).ok());
  (void)s.run_pass();
  EXPECT_GT(s.pool().num_active(), 0u);
  EXPECT_TRUE(s.cancel(1));
  EXPECT_FALSE(s.cancel(1));
  EXPECT_EQ(s.pool().num_active(), 0u);
  EXPECT_TRUE(s.has_work());
  const auto pass = s.run_pass();
  const auto* out = find_output(pass, 1);
  ASSERT_NE(out, nullptr);
  EXPECT_EQ(out->finish_reason, FinishReason::kAbort);
  EXPECT_FALSE(s.has_work());
}

TEST(Scheduler, MaxModelLenEndsGeneration) {
  EngineArgs args = small_args(4, 16);
  args.max_model_len = 10;
  Scheduler s(args);
  ASSERT_TRUE(s.add(make_request(1, 8, 100)).ok());
  uint32_t tokens = 0;
  for (int i = 0; i < 20 && s.has_work(); ++i) {
    const auto pass = s.run_pass();
    if (const auto* o = find_output(pass, 1)) tokens += static_cast<uint32_t>(o->tokens.size());
  }
  EXPECT_FALSE(s.has_work());
  EXPECT_EQ(tokens, 2u);
}

TEST(Scheduler, PlannedOutputIsEmittedVerbatimAndSetsTheLength) {
  Scheduler s(small_args(4, 16));
  Request r = make_request(1, 4, 99);
  r.planned_output = {7, 8, 9};
  ASSERT_TRUE(s.add(r).ok());
  std::vector<TokenId> tokens;
  for (int i = 0; i < 10 && s.has_work(); ++i) {
    const auto pass = s.run_pass();
    if (const auto* o = find_output(pass, 1))
      tokens.insert(tokens.end(), o->tokens.begin(), o->tokens.end());
  }
  EXPECT_EQ(tokens, (std::vector<TokenId>{7, 8, 9}));
}

TEST(Scheduler, WithoutPrefixCachingIdenticalPromptsShareNothingAndPublishNothing) {
  EngineArgs args = small_args(4, 16);
  args.enable_prefix_caching = false;
  Scheduler s(args);
  ASSERT_TRUE(s.add(make_request(1, 9, 1)).ok());
  ASSERT_TRUE(s.add(make_request(2, 9, 1)).ok());
  const auto pass = s.run_pass();
  EXPECT_TRUE(pass.events.empty());
  EXPECT_EQ(find_output(pass, 2)->cached_tokens, 0u);
  EXPECT_EQ(s.pool().num_active(), 0u);
}

TEST(Scheduler, CacheSaltSeparatesOtherwiseIdenticalPrompts) {
  Scheduler s(small_args(4, 16));
  Request a = make_request(1, 9, 1);
  Request b = make_request(2, 9, 1);
  b.cache_salt = "tenant-b";
  ASSERT_TRUE(s.add(a).ok());
  ASSERT_TRUE(s.add(b).ok());
  const auto pass = s.run_pass();
  EXPECT_EQ(find_output(pass, 2)->cached_tokens, 0u);
  EXPECT_EQ(stored_events(pass).size(), 2u);
}

TEST(Scheduler, TokenBudgetIsSharedRunningFirst) {
  Scheduler s(small_args(4, 64, /*budget=*/10));
  ASSERT_TRUE(s.add(make_request(1, 4, 5, 100)).ok());
  (void)s.run_pass();  // request 1 is now decoding
  ASSERT_TRUE(s.add(make_request(2, 20, 1, 200)).ok());
  const auto pass = s.run_pass();
  // 1 decode token for request 1, the remaining 9 go to request 2's prefill.
  EXPECT_EQ(pass.fpm.sum_prefill_tokens, 9u);
  EXPECT_EQ(find_output(pass, 1)->tokens.size(), 1u);
}

Request lora_request(RequestId id, const std::string& adapter) {
  Request r = make_request(id, 4, 4, static_cast<TokenId>(100 * id));
  r.lora_name = adapter;
  return r;
}

bool admitted(const SchedulerPass& pass, RequestId id) {
  const RequestOutput* out = find_output(pass, id);
  return out != nullptr && out->admitted;
}

TEST(Scheduler, AtMostMaxLorasAdaptersRunInOneBatchAndTheOthersKeepTheirPlace) {
  EngineArgs args = small_args(4, 64);
  args.max_loras = 2;
  Scheduler s(args);
  ASSERT_TRUE(s.add(lora_request(1, "a")).ok());
  ASSERT_TRUE(s.add(lora_request(2, "b")).ok());
  ASSERT_TRUE(s.add(lora_request(3, "c")).ok());        // a third adapter: passed over
  ASSERT_TRUE(s.add(lora_request(4, "a")).ok());        // an adapter already running: admitted
  ASSERT_TRUE(s.add(make_request(5, 4, 4, 900)).ok());  // the base model: admitted
  const SchedulerPass first = s.run_pass();
  EXPECT_TRUE(admitted(first, 1));
  EXPECT_TRUE(admitted(first, 2));
  EXPECT_FALSE(admitted(first, 3));
  EXPECT_TRUE(admitted(first, 4));
  EXPECT_TRUE(admitted(first, 5));
  EXPECT_EQ(s.num_waiting(), 1u);
  const EngineMetrics metrics = s.metrics();
  EXPECT_EQ(metrics.running_lora_adapters, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(metrics.waiting_lora_adapters, (std::vector<std::string>{"c"}));

  // Once "b" and the first "a" finish, "c" fits beside the remaining "a".
  bool c_admitted = false;
  for (int pass = 0; pass < 20 && !c_admitted; ++pass) c_admitted = admitted(s.run_pass(), 3);
  EXPECT_TRUE(c_admitted);
  for (int pass = 0; pass < 20 && s.has_work(); ++pass) s.run_pass();
  EXPECT_FALSE(s.has_work());
  EXPECT_TRUE(s.metrics().running_lora_adapters.empty());
}

TEST(Scheduler, MaxLorasZeroLetsEveryAdapterRun) {
  EngineArgs args = small_args(4, 64);
  args.max_loras = 0;
  Scheduler s(args);
  for (RequestId id = 1; id <= 4; ++id) {
    ASSERT_TRUE(s.add(lora_request(id, "adapter-" + std::to_string(id))).ok());
  }
  const SchedulerPass pass = s.run_pass();
  for (RequestId id = 1; id <= 4; ++id) EXPECT_TRUE(admitted(pass, id)) << id;
}

TEST(Scheduler, ACancelledLoraRequestFreesItsAdapterSlot) {
  EngineArgs args = small_args(4, 64);
  args.max_loras = 1;
  Scheduler s(args);
  ASSERT_TRUE(s.add(lora_request(1, "a")).ok());
  ASSERT_TRUE(s.add(lora_request(2, "b")).ok());
  EXPECT_FALSE(admitted(s.run_pass(), 2));
  ASSERT_TRUE(s.cancel(1, FinishReason::kAbort));
  EXPECT_TRUE(admitted(s.run_pass(), 2));
}

}  // namespace
}  // namespace kvmock
