// Whole-engine scenarios on a virtual clock, after Dynamo's
// test_scheduler_token_generation_patterns: many requests, every combination of
// prefix caching, chunked prefill and shared prompt prefixes.
#include <gtest/gtest.h>

#include <map>
#include <random>
#include <set>
#include <string>
#include <tuple>

#include "core/engine/engine_core.h"
#include "core/timing/polynomial_timing.h"

namespace kvmock {
namespace {

// A minimal router-side view of one worker's blocks: what a KV-aware router would
// build from the events. It flags the two errors a router cannot recover from
// without a resync: a Stored whose parent it never saw, and a Removed of an unknown
// block. It also flags a Stored of a block it already holds (the engine announces a
// hash once, however many copies it keeps).
class RouterChecker {
 public:
  void apply(const RouterEvent& e) {
    auto& known = known_[{e.worker_id, e.event.dp_rank}];
    if (const auto* s = std::get_if<StoreData>(&e.event.data)) {
      if (s->parent_hash && known.count(*s->parent_hash) == 0) {
        errors_.push_back("stored with unknown parent");
      }
      for (const auto& b : s->blocks) {
        if (!known.insert(b.block_hash).second) errors_.push_back("stored twice");
      }
      ++stored_;
    } else if (const auto* r = std::get_if<RemoveData>(&e.event.data)) {
      for (BlockHash h : r->block_hashes) {
        if (known.erase(h) == 0) errors_.push_back("removed unknown block");
      }
      ++removed_;
    }
  }
  const std::vector<std::string>& errors() const { return errors_; }
  size_t known(WorkerId w, DpRank r) { return known_[{w, r}].size(); }
  uint64_t stored() const { return stored_; }
  uint64_t removed() const { return removed_; }

 private:
  std::map<std::pair<WorkerId, DpRank>, std::set<BlockHash>> known_;
  std::vector<std::string> errors_;
  uint64_t stored_ = 0;
  uint64_t removed_ = 0;
};

struct RunResult {
  uint64_t output_tokens = 0;
  uint64_t finished_length = 0;
  uint64_t passes = 0;
  uint64_t cached_tokens = 0;
  double end_ms = 0;
};

// Steps the engine on a virtual clock until it is idle (or a pass cap is hit).
RunResult run_to_idle(EngineCore& engine, RouterChecker& checker, double now = 0) {
  RunResult result;
  while (engine.has_work() && result.passes < 200000) {
    const PassOutput pass = engine.step(now);
    EXPECT_GE(pass.end_ms, pass.start_ms);
    for (const auto& e : pass.events) checker.apply(e);
    for (const auto& o : pass.outputs) {
      result.output_tokens += o.tokens.size();
      if (o.finished && o.finish_reason == FinishReason::kLength) ++result.finished_length;
      if (o.admitted) result.cached_tokens += o.cached_tokens;
    }
    now = pass.end_ms;
    ++result.passes;
  }
  result.end_ms = now;
  return result;
}

using Combo = std::tuple<bool, bool, bool>;  // prefix caching, chunked prefill, shared prefix

std::string combo_name(const ::testing::TestParamInfo<Combo>& info) {
  return std::string(std::get<0>(info.param) ? "Cache" : "NoCache") +
         (std::get<1>(info.param) ? "Chunked" : "Whole") +
         (std::get<2>(info.param) ? "Shared" : "Distinct");
}

class TokenGenerationPatterns : public ::testing::TestWithParam<Combo> {};

TEST_P(TokenGenerationPatterns, TwoHundredRequestsCompleteWithExactlyTwentyThousandTokens) {
  const auto [prefix_caching, chunked, shared_prefix] = GetParam();
  EngineArgs args;
  args.block_size = 64;
  args.num_gpu_blocks = 500;
  args.speedup_ratio = 10;
  args.enable_prefix_caching = prefix_caching;
  args.enable_chunked_prefill = chunked;
  EngineCore engine(args, 1, 0, std::make_unique<PolynomialTiming>());

  std::mt19937 rng(42);
  std::uniform_int_distribution<TokenId> token(0, 50000);
  std::vector<TokenId> common(512);
  for (auto& t : common) t = token(rng);
  for (RequestId id = 0; id < 200; ++id) {
    Request r;
    r.id = id;
    r.max_tokens = 100;
    r.prompt.resize(1000);
    for (size_t i = 0; i < r.prompt.size(); ++i) {
      r.prompt[i] = shared_prefix && i < common.size() ? common[i] : token(rng);
    }
    ASSERT_TRUE(engine.add_request(std::move(r)).ok());
  }

  RouterChecker checker;
  const RunResult result = run_to_idle(engine, checker);
  EXPECT_FALSE(engine.has_work());
  EXPECT_EQ(result.output_tokens, 20000u);
  EXPECT_EQ(result.finished_length, 200u);
  EXPECT_EQ(engine.active_decode_blocks(), 0u);
  EXPECT_EQ(engine.metrics().running_requests, 0u);
  EXPECT_GT(result.end_ms, 0.0);
  EXPECT_TRUE(checker.errors().empty()) << checker.errors().front();
  if (prefix_caching) {
    EXPECT_GT(checker.stored(), 0u);
    EXPECT_GT(checker.removed(), 0u);  // 200 x 1100 tokens cannot all stay cached
    EXPECT_LE(checker.known(1, 0), 500u);
    if (shared_prefix) {
      EXPECT_GT(result.cached_tokens, 0u);
    }
  } else {
    EXPECT_EQ(checker.stored(), 0u);
    EXPECT_EQ(result.cached_tokens, 0u);
  }
}

INSTANTIATE_TEST_SUITE_P(AllCombinations, TokenGenerationPatterns,
                         ::testing::Combine(::testing::Bool(), ::testing::Bool(),
                                            ::testing::Bool()),
                         combo_name);

TEST(EngineScenario, IdenticalPromptsHitTheCacheOnTheSecondRequest) {
  EngineArgs args;
  args.block_size = 64;
  args.num_gpu_blocks = 500;
  EngineCore engine(args, 1, 0, std::make_unique<PolynomialTiming>());
  Request r;
  r.prompt.assign(1000, 0);
  for (size_t i = 0; i < r.prompt.size(); ++i) r.prompt[i] = static_cast<TokenId>(i * 7 + 3);
  r.max_tokens = 10;
  RouterChecker checker;

  r.id = 1;
  ASSERT_TRUE(engine.add_request(r).ok());
  const RunResult first = run_to_idle(engine, checker);
  r.id = 2;
  ASSERT_TRUE(engine.add_request(r).ok());
  const RunResult second = run_to_idle(engine, checker, first.end_ms);

  EXPECT_EQ(first.cached_tokens, 0u);
  EXPECT_EQ(second.cached_tokens, 960u);  // 15 full blocks of 64
  EXPECT_GT(engine.metrics().prefix_cache_hits_tokens, 0u);
  EXPECT_TRUE(checker.errors().empty());
  // The cached prompt makes the second request's first pass much cheaper.
  EXPECT_LT(second.end_ms - first.end_ms, first.end_ms);
}

TEST(EngineScenario, PreemptionUnderMemoryPressureStillCompletesEverything) {
  EngineArgs args;
  args.block_size = 16;
  args.num_gpu_blocks = 64;  // 1024 tokens for 16 requests that grow to 200 each
  args.speedup_ratio = 0;
  EngineCore engine(args, 9, 2, std::make_unique<PolynomialTiming>());
  for (RequestId id = 0; id < 16; ++id) {
    Request r;
    r.id = id;
    r.prompt.assign(100, static_cast<TokenId>(id + 1));
    r.max_tokens = 100;
    ASSERT_TRUE(engine.add_request(std::move(r)).ok());
  }
  RouterChecker checker;
  const RunResult result = run_to_idle(engine, checker);
  EXPECT_EQ(result.output_tokens, 1600u);
  EXPECT_EQ(result.finished_length, 16u);
  EXPECT_GT(engine.metrics().preemptions_total, 0u);
  EXPECT_EQ(engine.active_decode_blocks(), 0u);
  EXPECT_TRUE(checker.errors().empty()) << checker.errors().front();
}

TEST(EngineScenario, CancellingHalfWayFreesEveryBlock) {
  EngineArgs args;
  args.block_size = 64;
  args.num_gpu_blocks = 500;
  EngineCore engine(args, 1, 0, std::make_unique<PolynomialTiming>());
  for (RequestId id = 0; id < 20; ++id) {
    Request r;
    r.id = id;
    r.prompt.assign(500, static_cast<TokenId>(id));
    r.max_tokens = 1000;
    ASSERT_TRUE(engine.add_request(std::move(r)).ok());
  }
  double now = 0;
  for (int i = 0; i < 50; ++i) now = engine.step(now).end_ms;
  EXPECT_GT(engine.active_decode_blocks(), 0u);
  for (RequestId id = 0; id < 20; ++id) EXPECT_TRUE(engine.cancel(id));
  EXPECT_EQ(engine.active_decode_blocks(), 0u);
  const PassOutput last = engine.step(now);
  EXPECT_EQ(last.outputs.size(), 20u);
  EXPECT_FALSE(engine.has_work());
}

TEST(EngineScenario, RandomOperationsKeepThePoolAndEventStreamConsistent) {
  for (uint32_t seed = 1; seed <= 20; ++seed) {
    std::mt19937 rng(seed);
    EngineArgs args;
    args.block_size = 1 + rng() % 8;
    args.num_gpu_blocks = 4 + rng() % 40;
    args.max_num_seqs = 1 + rng() % 8;
    args.max_num_batched_tokens = 1 + rng() % 64;
    args.enable_prefix_caching = rng() % 4 != 0;
    args.enable_chunked_prefill = rng() % 3 != 0;
    args.preemption_mode = rng() % 2 ? PreemptionMode::kLifo : PreemptionMode::kFifo;
    args.max_model_len = rng() % 3 == 0 ? 40 : 0;
    EngineCore engine(args, seed, 0, std::make_unique<PolynomialTiming>());
    RouterChecker checker;
    std::map<RequestId, uint32_t> expected;  // accepted id -> output length
    std::map<RequestId, uint32_t> emitted;
    std::map<RequestId, int> finishes;
    std::map<RequestId, FinishReason> reasons;
    auto collect = [&](const PassOutput& pass) {
      for (const auto& e : pass.events) checker.apply(e);
      for (const auto& o : pass.outputs) {
        emitted[o.id] += static_cast<uint32_t>(o.tokens.size());
        if (o.finished) {
          ++finishes[o.id];
          reasons[o.id] = o.finish_reason;
        }
      }
    };
    double now = 0;
    RequestId next_id = 0;
    for (int op = 0; op < 400; ++op) {
      const uint32_t kind = rng() % 10;
      if (kind < 3) {
        Request r;
        r.id = next_id++;
        r.prompt.resize(rng() % 48);
        for (auto& t : r.prompt) t = rng() % 4;  // tiny vocabulary: many shared blocks
        r.max_tokens = rng() % 12;
        if (engine.add_request(r).ok()) expected[r.id] = r.max_tokens;
      } else if (kind == 3 && next_id > 0) {
        const RequestId id = rng() % next_id;
        (void)engine.cancel(id);
      } else {
        const PassOutput pass = engine.step(now);
        now = pass.end_ms;
        collect(pass);
        EXPECT_LE(pass.metrics.active_blocks, args.num_gpu_blocks);
      }
    }
    for (int i = 0; i < 100000 && engine.has_work(); ++i) {
      const PassOutput pass = engine.step(now);
      now = pass.end_ms;
      collect(pass);
    }
    ASSERT_FALSE(engine.has_work()) << "seed " << seed;
    EXPECT_EQ(engine.active_decode_blocks(), 0u) << "seed " << seed;
    EXPECT_TRUE(checker.errors().empty()) << "seed " << seed << ": " << checker.errors().front();
    for (const auto& [id, max_tokens] : expected) {
      EXPECT_EQ(finishes[id], 1) << "seed " << seed << " request " << id;
      EXPECT_LE(emitted[id], max_tokens) << "seed " << seed << " request " << id;
      if (reasons[id] == FinishReason::kLength && args.max_model_len == 0) {
        EXPECT_EQ(emitted[id], max_tokens) << "seed " << seed << " request " << id;
      }
    }
  }
}

}  // namespace
}  // namespace kvmock
