#include "daemon/engine_actor.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <optional>
#include <vector>

#include "core/timing/timing_model.h"
#include "tests/support/capturing_event_sink.h"
#include "tests/support/manual_clock.h"
#include "tests/support/manual_pass_timers.h"
#include "tests/support/recorded_generation.h"

namespace kvmock {
namespace {

using std::chrono::microseconds;
using std::chrono::milliseconds;

constexpr WorkerId kWorker = 7;
constexpr DpRank kRank = 1;

// The first pass of a request (prefill, then decode of its first token) takes
// 0.25 + 1.0 ms: its end falls between two 100 µs grid marks.
EngineArgs small_engine() {
  EngineArgs args;
  args.block_size = 4;
  args.num_gpu_blocks = 16;
  args.max_num_seqs = 8;
  args.max_num_batched_tokens = 256;
  args.timing.model = TimingModelKind::kFixed;
  args.timing.fixed_prefill_ms = 0.25;
  args.timing.fixed_decode_ms = 1.0;
  return args;
}

GenerationRequest request_of(uint32_t prompt_tokens, uint32_t max_tokens) {
  GenerationRequest request;
  for (uint32_t i = 0; i < prompt_tokens; ++i) request.prompt.push_back(100 + i);
  request.max_tokens = max_tokens;
  return request;
}

using Seen = testing::RecordedGeneration;

// One engine on an io_context the test runs, with a manual clock and manual pass timers.
class EngineActorTest : public ::testing::Test {
 protected:
  explicit EngineActorTest(size_t max_waiting = 64) : max_waiting_(max_waiting) {}

  EngineActor& actor() {
    if (!actor_) {
      auto timing = make_timing_model(args_.timing);
      actor_.emplace(io_, args_, kWorker, kRank, std::move(*timing), sink_, EngineActorHistograms{},
                     EngineTime{clock_, timers_, clock_.steady_now()}, max_waiting_);
    }
    return *actor_;
  }
  Clock::SteadyTime epoch() const { return epoch_; }

  // Runs the handlers the engine has posted.
  void poll() {
    io_.restart();
    io_.poll();
  }
  // Moves the clock forward by `by`, fires the pass timers that are due and runs them.
  void advance(std::chrono::nanoseconds by) {
    clock_.advance(by);
    timers_.fire_due();
    poll();
  }
  // Advances on the 100 µs grid until `done` or `limit` has passed.
  template <typename Done>
  void run_until(Done done, milliseconds limit = milliseconds(100)) {
    for (auto spent = microseconds(0); !done() && spent < limit; spent += microseconds(100)) {
      advance(microseconds(100));
    }
  }

  EngineArgs args_ = small_engine();
  test::ManualClock clock_;
  const Clock::SteadyTime epoch_ = clock_.steady_now();
  test::ManualPassTimers timers_{clock_};
  boost::asio::io_context io_;
  test::CapturingEventSink sink_;
  size_t max_waiting_;
  std::optional<EngineActor> actor_;
};

TEST_F(EngineActorTest, ARequestIsCountedRunningWhileItsPassRunsNotOnlyAfterIt) {
  Seen seen;
  actor().submit(1, request_of(8, 3), seen.callbacks());
  poll();  // the first pass is scheduled and runs until its modeled end
  ASSERT_TRUE(timers_.next_expiry().has_value());
  EXPECT_FALSE(seen.finish.has_value());
  const EngineActorStats during = actor().stats();
  EXPECT_EQ(during.engine.running_requests, 1u);
  EXPECT_GT(during.engine.active_blocks, 0u);
}

TEST_F(EngineActorTest, APassEndingBetweenGridPointsIsDeliveredAtTheNext100MicrosecondMark) {
  Seen seen;
  actor().submit(1, request_of(8, 3), seen.callbacks());
  poll();
  ASSERT_TRUE(timers_.next_expiry().has_value());
  EXPECT_EQ(*timers_.next_expiry(), epoch() + microseconds(1300));

  advance(microseconds(1250));  // the modeled end: not yet on the grid
  EXPECT_TRUE(seen.tokens.empty());
  advance(microseconds(49));
  EXPECT_TRUE(seen.tokens.empty());
  advance(microseconds(1));
  EXPECT_EQ(seen.tokens.size(), 1u);
}

TEST_F(EngineActorTest, APassPublishesItsStoredBlocksWhenItStartsNotWhenItEnds) {
  Seen seen;
  actor().submit(1, request_of(8, 3), seen.callbacks());
  poll();
  const auto published = sink_.published();
  ASSERT_EQ(published.size(), 1u);
  EXPECT_EQ(published[0].worker, kWorker);
  EXPECT_EQ(published[0].rank, kRank);
  ASSERT_FALSE(published[0].events.empty());
  EXPECT_TRUE(is_store(published[0].events[0].event.data));
  EXPECT_TRUE(seen.tokens.empty());
}

TEST_F(EngineActorTest, CancellingMidPassFreesTheRequestsBlocks) {
  Seen seen;
  actor().submit(1, request_of(8, 50), seen.callbacks());
  poll();
  ASSERT_FALSE(sink_.loads().empty());
  ASSERT_EQ(sink_.loads().back().kv_used_blocks, 2u);  // 8 prompt tokens in blocks of 4

  advance(microseconds(600));  // mid-pass
  actor().cancel(1);
  poll();
  run_until([&] { return seen.finish.has_value(); });

  ASSERT_TRUE(seen.finish.has_value());
  EXPECT_EQ(seen.finish->finish_reason, "abort");
  EXPECT_EQ(sink_.loads().back().kv_used_blocks, 0u);
  run_until([&] { return actor().stats().engine.active_blocks == 0; });
  EXPECT_EQ(actor().stats().engine.active_blocks, 0u);
  EXPECT_EQ(actor().in_flight(), 0u);
}

TEST_F(EngineActorTest, TheLoadGoesToTheSinkOnlyWhenItChanges) {
  Seen seen;
  actor().submit(1, request_of(8, 20), seen.callbacks());
  poll();
  run_until([&] { return seen.finish.has_value(); });
  ASSERT_TRUE(seen.finish.has_value());

  const auto loads = sink_.loads();
  ASSERT_GE(loads.size(), 2u);
  EXPECT_LT(loads.size(), actor().stats().passes);  // twenty passes, fewer load changes
  for (size_t i = 1; i < loads.size(); ++i) EXPECT_NE(loads[i], loads[i - 1]) << "load " << i;
  EXPECT_EQ(loads.back().worker_id, kWorker);
  EXPECT_EQ(loads.back().dp_rank, kRank);
  EXPECT_EQ(loads.back().kv_used_blocks, 0u);
}

TEST_F(EngineActorTest, TheStatsSnapshotOfAFinishedRequestCountsItsTokensAndPasses) {
  Seen seen;
  actor().submit(1, request_of(8, 3), seen.callbacks());
  poll();
  EXPECT_EQ(actor().stats().requests_finished, 0u);
  run_until([&] { return seen.finish.has_value(); });

  ASSERT_TRUE(seen.finish.has_value());
  EXPECT_EQ(seen.finish->finish_reason, "length");
  EXPECT_EQ(seen.finish->completion_tokens, 3u);
  const EngineActorStats stats = actor().stats();
  EXPECT_EQ(stats.requests_finished, 1u);
  EXPECT_EQ(stats.generation_tokens, 3u);
  EXPECT_EQ(stats.prompt_tokens, 8u);
  EXPECT_EQ(stats.passes, 3u);
  EXPECT_EQ(stats.engine.total_blocks, 16u);
  EXPECT_EQ(stats.engine.running_requests, 0u);
  EXPECT_EQ(actor().in_flight(), 0u);
}

TEST_F(EngineActorTest, StopEndsARunningRequestWithStopAndFreesItsBlocks) {
  Seen seen;
  actor().submit(1, request_of(8, 50), seen.callbacks());
  poll();
  run_until([&] { return seen.tokens.size() >= 2; });
  actor().stop(1);
  poll();
  run_until([&] { return seen.finish.has_value(); });

  ASSERT_TRUE(seen.finish.has_value());
  EXPECT_EQ(seen.finish->finish_reason, "stop");
  EXPECT_FALSE(seen.finish->matched_stop_token.has_value());
  EXPECT_LT(seen.finish->completion_tokens, 50u);
  EXPECT_EQ(sink_.loads().back().kv_used_blocks, 0u);
  EXPECT_EQ(actor().in_flight(), 0u);
}

TEST_F(EngineActorTest, AStopTokenEndsTheRequestAndTheFinishNamesIt) {
  Seen plain;
  actor().submit(1, request_of(8, 12), plain.callbacks());
  poll();
  run_until([&] { return plain.finish.has_value(); });
  ASSERT_EQ(plain.tokens.size(), 12u);
  // Output ids follow the request's id: the same id again gives the same ids.
  const TokenId stop_id = plain.tokens[5];
  ASSERT_EQ(std::find(plain.tokens.begin(), plain.tokens.begin() + 5, stop_id),
            plain.tokens.begin() + 5);

  Seen stopped;
  GenerationRequest request = request_of(8, 12);
  request.stop_token_ids = {stop_id};
  actor().submit(1, std::move(request), stopped.callbacks());
  poll();
  run_until([&] { return stopped.finish.has_value(); });
  ASSERT_TRUE(stopped.finish.has_value());
  EXPECT_EQ(stopped.finish->finish_reason, "stop");
  EXPECT_EQ(stopped.finish->matched_stop_token, stop_id);
  EXPECT_EQ(stopped.finish->completion_tokens, 6u);
  EXPECT_EQ(stopped.tokens.back(), stop_id);
}

TEST_F(EngineActorTest, MinTokensHoldsBackAStopToken) {
  Seen plain;
  actor().submit(1, request_of(8, 12), plain.callbacks());
  poll();
  run_until([&] { return plain.finish.has_value(); });
  const TokenId stop_id = plain.tokens[2];
  ASSERT_EQ(std::count(plain.tokens.begin(), plain.tokens.end(), stop_id), 1);

  Seen held;
  GenerationRequest request = request_of(8, 12);
  request.stop_token_ids = {stop_id};
  request.min_tokens = 4;
  actor().submit(1, std::move(request), held.callbacks());
  poll();
  run_until([&] { return held.finish.has_value(); });
  ASSERT_TRUE(held.finish.has_value());
  EXPECT_EQ(held.finish->finish_reason, "length");
  EXPECT_EQ(held.finish->completion_tokens, 12u);
}

TEST_F(EngineActorTest, TheSameSeedAndPromptGiveTheSameOutputUnderAnotherRequestId) {
  Seen first, second, unseeded;
  GenerationRequest a = request_of(8, 10);
  a.seed = 42;
  GenerationRequest b = request_of(8, 10);
  b.seed = 42;
  actor().submit(1, std::move(a), first.callbacks());
  actor().submit(2, std::move(b), second.callbacks());
  actor().submit(3, request_of(8, 10), unseeded.callbacks());
  poll();
  run_until([&] { return first.finish && second.finish && unseeded.finish; });
  ASSERT_EQ(first.tokens.size(), 10u);
  EXPECT_EQ(first.tokens, second.tokens);
  EXPECT_NE(first.tokens, unseeded.tokens);
}

TEST_F(EngineActorTest, WithAnOutputLengthDistributionIgnoreEosStillRunsToMaxTokens) {
  args_.output_length.distribution = OutputLengthDistribution::kUniform;
  args_.output_length.mean = 2;  // every EOS falls within 3 tokens
  Seen eos, ignoring;
  actor().submit(1, request_of(8, 12), eos.callbacks());
  GenerationRequest request = request_of(8, 12);
  request.ignore_eos = true;
  actor().submit(2, std::move(request), ignoring.callbacks());
  poll();
  run_until([&] { return eos.finish && ignoring.finish; });
  ASSERT_TRUE(eos.finish && ignoring.finish);
  EXPECT_EQ(eos.finish->finish_reason, "stop");
  EXPECT_LE(eos.finish->completion_tokens, 3u);
  EXPECT_EQ(ignoring.finish->finish_reason, "length");
  EXPECT_EQ(ignoring.finish->completion_tokens, 12u);
}

// Every request that finishes stop, length or abort is counted by its reason and observed
// once in each per-request histogram; a refused one in neither.
TEST_F(EngineActorTest, FinishedRequestsAreCountedByReasonAndObservedOnce) {
  Counter stop, length, abort;
  Histogram e2e(latency_buckets_seconds()), queue(vllm_request_latency_buckets()),
      prefill(vllm_request_latency_buckets()), decode(vllm_request_latency_buckets()),
      inference(vllm_request_latency_buckets()), prompt(vllm_1_2_5_buckets(1000)),
      generation(vllm_1_2_5_buckets(1000)), max_tokens(vllm_1_2_5_buckets(1000)),
      tpot(vllm_time_per_output_token_buckets());
  EngineActorHistograms metrics;
  metrics.success_stop = &stop;
  metrics.success_length = &length;
  metrics.success_abort = &abort;
  metrics.e2e_latency = &e2e;
  metrics.queue_time = &queue;
  metrics.prefill_time = &prefill;
  metrics.decode_time = &decode;
  metrics.inference_time = &inference;
  metrics.prompt_tokens = &prompt;
  metrics.generation_tokens = &generation;
  metrics.params_max_tokens = &max_tokens;
  metrics.time_per_output_token = &tpot;
  auto timing = make_timing_model(args_.timing);
  actor_.emplace(io_, args_, kWorker, kRank, std::move(*timing), sink_, metrics,
                 EngineTime{clock_, timers_, clock_.steady_now()}, max_waiting_);

  Seen done, stopped, aborted, refused;
  actor().submit(1, request_of(8, 3), done.callbacks());
  actor().submit(2, request_of(8, 40), stopped.callbacks());
  actor().submit(3, request_of(8, 40), aborted.callbacks());
  actor().submit(4, request_of(1000, 3), refused.callbacks());  // more KV than the engine has
  poll();
  run_until([&] { return done.finish.has_value(); });
  actor().stop(2);
  actor().cancel(3);
  poll();
  run_until([&] { return stopped.finish && aborted.finish; });
  ASSERT_TRUE(refused.finish && refused.finish->finish_reason == "error");
  ASSERT_EQ(aborted.finish->finish_reason, "abort");

  EXPECT_EQ(length.value(), 1u);
  EXPECT_EQ(stop.value(), 1u);
  EXPECT_EQ(abort.value(), 1u);
  for (Histogram* h :
       {&e2e, &queue, &prefill, &decode, &inference, &prompt, &generation, &max_tokens}) {
    EXPECT_EQ(h->count(), 3u);
  }
  EXPECT_EQ(prompt.sum(), 24.0);
  EXPECT_EQ(max_tokens.sum(), 83.0);
  EXPECT_EQ(generation.sum(),
            static_cast<double>(3 + stopped.tokens.size() + aborted.tokens.size()));
  // The first request starts a pass as it arrives; the other two wait for that pass to end
  // (1.3 ms on the grid). Each gets its first token at the end of its first pass.
  EXPECT_NEAR(queue.sum(), 2 * 0.0013, 1e-9);
  EXPECT_NEAR(prefill.sum(), 3 * 0.0013, 1e-9);
  EXPECT_GT(decode.sum(), 0.0);
  EXPECT_NEAR(inference.sum(), prefill.sum() + decode.sum(), 1e-9);
  EXPECT_EQ(tpot.count(), 2 + stopped.tokens.size() - 1 + aborted.tokens.size() - 1);
}

class EngineActorQueueTest : public EngineActorTest {
 protected:
  EngineActorQueueTest() : EngineActorTest(1) {}
};

TEST_F(EngineActorQueueTest, ARequestArrivingWhileTheWaitingQueueIsFullIsRefusedWithQueueFull) {
  Seen running, waiting, refused;
  actor().submit(1, request_of(8, 3), running.callbacks());
  poll();  // request 1 runs its first pass
  actor().submit(2, request_of(8, 3), waiting.callbacks());
  actor().submit(3, request_of(8, 3), refused.callbacks());
  poll();

  EXPECT_EQ(actor().waiting(), 1u);
  ASSERT_TRUE(refused.finish.has_value());
  EXPECT_EQ(refused.finish->finish_reason, "error");
  EXPECT_EQ(refused.finish->error, "queue_full");
  EXPECT_FALSE(waiting.finish.has_value());

  run_until([&] { return waiting.finish.has_value(); });
  ASSERT_TRUE(waiting.finish.has_value());
  EXPECT_EQ(waiting.finish->finish_reason, "length");
}

}  // namespace
}  // namespace kvmock
