#include "core/engine/request.h"

#include <gtest/gtest.h>

#include "core/engine/pass_output.h"

namespace kvmock {
namespace {

Request make(std::vector<TokenId> prompt, uint32_t max_tokens) {
  Request r;
  r.id = 5;
  r.prompt = std::move(prompt);
  r.max_tokens = max_tokens;
  return r;
}

TEST(Request, FullBlocksGetDynamoSequenceHashesAndTheTailNone) {
  RequestState s(make({11, 22, 33, 44, 55, 66, 77, 88, 99}, 1));
  s.update_hashes(4, nullptr);
  EXPECT_EQ(s.sequence_hashes(),
            (std::vector<BlockHash>{4117275816416024698ull, 5947898228081096063ull}));
  EXPECT_EQ(s.content_hashes(),
            (std::vector<uint64_t>{4117275816416024698ull, 6081346995852963768ull}));
}

TEST(Request, HashesExtendAsGeneratedTokensFillBlocks) {
  RequestState s(make({1, 2, 3}, 2));
  s.update_hashes(4, nullptr);
  EXPECT_TRUE(s.sequence_hashes().empty());
  s.append_output(0);
  s.update_hashes(4, nullptr);
  ASSERT_EQ(s.sequence_hashes().size(), 1u);
  EXPECT_EQ(s.content_hashes()[0], tokens_hash(s.tokens()));
}

TEST(Request, LoraNameAndCacheSaltChangeTheHashes) {
  RequestState plain(make({1, 2, 3, 4}, 1));
  Request salted_request = make({1, 2, 3, 4}, 1);
  salted_request.cache_salt = "s";
  RequestState salted(salted_request);
  Request lora_request = make({1, 2, 3, 4}, 1);
  lora_request.lora_name = "adapter";
  RequestState lora(lora_request);
  plain.update_hashes(4, nullptr);
  salted.update_hashes(4, nullptr);
  lora.update_hashes(4, nullptr);
  EXPECT_NE(plain.sequence_hashes()[0], salted.sequence_hashes()[0]);
  EXPECT_NE(plain.sequence_hashes()[0], lora.sequence_hashes()[0]);
  EXPECT_EQ(salted.content_hashes()[0], tokens_hash(salted.tokens(), block_hash_seed("", "s")));
}

TEST(Request, RandomIdentitiesNeverMatchContent) {
  std::mt19937_64 rng(1);
  RequestState a(make({1, 2, 3, 4}, 1));
  RequestState b(make({1, 2, 3, 4}, 1));
  a.update_hashes(4, &rng);
  b.update_hashes(4, &rng);
  EXPECT_NE(a.sequence_hashes()[0], b.sequence_hashes()[0]);
}

TEST(Request, PlannedOutputWinsOverMaxTokens) {
  Request r = make({1}, 10);
  r.planned_output = {42, 43};
  RequestState s(r);
  EXPECT_EQ(s.max_output(), 2u);
  EXPECT_EQ(s.append_output(0), 42u);
  EXPECT_EQ(s.append_output(0), 43u);
  EXPECT_TRUE(s.generation_complete(0));
}

TEST(Request, GenerationStopsAtMaxModelLen) {
  RequestState s(make({1, 2, 3}, 10));
  EXPECT_FALSE(s.generation_complete(4));
  s.append_output(0);
  EXPECT_TRUE(s.generation_complete(4));
  EXPECT_FALSE(s.generation_complete(0));
}

TEST(Request, FinishReasonsHaveTheirWireNames) {
  EXPECT_EQ(finish_reason_name(FinishReason::kLength), "length");
  EXPECT_EQ(finish_reason_name(FinishReason::kStop), "stop");
  EXPECT_EQ(finish_reason_name(FinishReason::kAbort), "abort");
  EXPECT_EQ(finish_reason_name(FinishReason::kError), "error");
  EXPECT_EQ(finish_reason_name(FinishReason::kNone), "");
}

TEST(Request, ThePromptIsHeldOnceAndTheOutputRoomIsReservedOnce) {
  std::vector<TokenId> prompt(100000, 7);
  RequestState s(make(prompt, 16));
  EXPECT_TRUE(s.request().prompt.empty());
  EXPECT_EQ(s.prompt_len(), 100000u);
  EXPECT_EQ(s.tokens(), prompt);
  EXPECT_EQ(s.tokens().capacity(), 100000u);
  s.append_output(0);
  // Not doubled by the first output token: room for exactly the 16 it will produce.
  EXPECT_EQ(s.tokens().capacity(), 100016u);
  EXPECT_EQ(s.prompt_len(), 100000u);
  EXPECT_EQ(s.num_generated(), 1u);
}

TEST(Request, TheContextWindowIsWhatTheKvCacheCanHoldWhenMaxModelLenIsUnset) {
  EngineArgs args;
  args.block_size = 16;
  args.num_gpu_blocks = 1024;
  args.max_model_len = 0;
  EXPECT_EQ(max_context_tokens(args), 16384u);
  args.max_model_len = 8192;
  EXPECT_EQ(max_context_tokens(args), 8192u);
  args.max_model_len = 100000;  // more than the cache holds: the cache wins
  EXPECT_EQ(max_context_tokens(args), 16384u);
  args.enable_chunked_prefill = false;
  args.max_num_batched_tokens = 2048;
  EXPECT_EQ(max_context_tokens(args), 2048u);
}

}  // namespace
}  // namespace kvmock
