#include "daemon/engine_actor.h"

#include <gtest/gtest.h>

#include <chrono>
#include <optional>
#include <vector>

#include "core/timing/timing_model.h"
#include "tests/support/capturing_event_sink.h"
#include "tests/support/manual_clock.h"
#include "tests/support/manual_pass_timers.h"

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

// What one request saw through its callbacks.
struct Seen {
  std::vector<TokenId> tokens;
  std::optional<GenerationFinish> finish;

  GenerationCallbacks callbacks() {
    GenerationCallbacks callbacks;
    callbacks.on_tokens = [this](const std::vector<TokenId>& t) {
      tokens.insert(tokens.end(), t.begin(), t.end());
    };
    callbacks.on_finish = [this](const GenerationFinish& f) { finish = f; };
    return callbacks;
  }
};

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
  EXPECT_EQ(seen.finish->finish_reason, "cancelled");
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
