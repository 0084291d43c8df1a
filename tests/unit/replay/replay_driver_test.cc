#include "core/replay/replay_driver.h"

#include <gtest/gtest.h>

#include <map>
#include <vector>

#include "core/workload/synthetic_workload.h"

namespace kvmock {
namespace {

EngineArgs small_engine() {
  EngineArgs args;
  args.block_size = 16;
  args.num_gpu_blocks = 2048;
  args.max_num_seqs = 64;
  args.max_num_batched_tokens = 2048;
  return args;
}

ReplayOptions options(uint32_t workers, Placement placement) {
  ReplayOptions o;
  o.engine = small_engine();
  o.workers = workers;
  o.placement = placement;
  return o;
}

std::vector<WorkloadRequest> synthetic(SyntheticSpec spec) {
  auto workload = SyntheticWorkload::create(spec);
  EXPECT_TRUE(workload.ok());
  std::vector<WorkloadRequest> out;
  while (auto r = workload->next()) out.push_back(std::move(*r));
  return out;
}

SyntheticSpec shared_prefix_spec() {
  SyntheticSpec spec;
  spec.num_requests = 400;
  spec.input = {256, 32};
  spec.output = {8, 2};
  spec.shared_prefix_ratio = 0.75;
  spec.num_prefix_groups = 40;
  spec.arrival = ArrivalSpec{ArrivalKind::kPoisson, 100, 1, 0};
  spec.seed = 11;
  return spec;
}

WorkloadRequest request(double arrival, std::vector<TokenId> prompt, uint32_t max_tokens) {
  WorkloadRequest r;
  r.arrival_ms = arrival;
  r.prompt = std::move(prompt);
  r.max_tokens = max_tokens;
  return r;
}

std::vector<TokenId> tokens(TokenId first, size_t n) {
  std::vector<TokenId> out;
  for (size_t i = 0; i < n; ++i) out.push_back(first + static_cast<TokenId>(i));
  return out;
}

TEST(ReplayDriver, EveryRequestCompletesWithItsOutputLengthAndOrderedTimestamps) {
  SyntheticSpec spec = shared_prefix_spec();
  spec.num_requests = 100;
  auto result = run_replay(synthetic(spec), options(2, Placement::kRoundRobin));
  ASSERT_TRUE(result.ok()) << result.error().message;
  const auto workload = synthetic(spec);
  for (const RequestRecord& r : result->records) {
    ASSERT_TRUE(r.completed) << r.id << " " << r.error;
    EXPECT_EQ(r.output_tokens, workload[r.id].max_tokens);
    EXPECT_EQ(r.arrival_ms, workload[r.id].arrival_ms);
    ASSERT_TRUE(r.first_token_ms);
    EXPECT_GT(*r.first_token_ms, r.arrival_ms);
    EXPECT_GE(r.last_token_ms, *r.first_token_ms);
    EXPECT_EQ(*r.finish_ms, r.last_token_ms);
  }
  EXPECT_EQ(result->summary.completed, 100u);
  EXPECT_GE(result->summary.duration_ms, workload.back().arrival_ms);
}

TEST(ReplayDriver, RoundRobinSpreadsRequestsEvenly) {
  std::vector<WorkloadRequest> workload;
  for (int i = 0; i < 40; ++i) workload.push_back(request(i * 3.0, tokens(100 * i + 1, 40), 4));
  auto result = run_replay(workload, options(4, Placement::kRoundRobin));
  ASSERT_TRUE(result.ok());
  std::map<uint32_t, int> per_worker;
  for (const RequestRecord& r : result->records) ++per_worker[r.worker];
  ASSERT_EQ(per_worker.size(), 4u);
  for (const auto& [worker, count] : per_worker) EXPECT_EQ(count, 10) << worker;
  EXPECT_EQ(result->records[5].worker, 1u);
}

TEST(ReplayDriver, KvAwareSendsARepeatedPromptToTheWorkerThatHoldsIt) {
  const std::vector<TokenId> shared = tokens(5000, 128);
  std::vector<WorkloadRequest> workload;
  workload.push_back(request(0, tokens(1, 128), 4));
  workload.push_back(request(0, shared, 4));
  workload.push_back(request(0, tokens(900, 128), 4));
  workload.push_back(request(1000, shared, 4));
  auto result = run_replay(workload, options(3, Placement::kKvAware));
  ASSERT_TRUE(result.ok());
  // The burst spreads over idle workers; the repeat follows its cached prefix.
  EXPECT_EQ(result->records[0].worker, 0u);
  EXPECT_EQ(result->records[1].worker, 1u);
  EXPECT_EQ(result->records[2].worker, 2u);
  EXPECT_EQ(result->records[3].worker, 1u);
  // A fully cached prompt still recomputes its last block.
  EXPECT_EQ(result->records[3].cached_tokens, 112u);
}

TEST(ReplayDriver, KvAwareReusesMoreOfASharedPrefixWorkloadThanRoundRobin) {
  auto rr = run_replay(synthetic(shared_prefix_spec()), options(8, Placement::kRoundRobin));
  auto kv = run_replay(synthetic(shared_prefix_spec()), options(8, Placement::kKvAware));
  ASSERT_TRUE(rr.ok());
  ASSERT_TRUE(kv.ok());
  EXPECT_EQ(kv->summary.completed, 400u);
  EXPECT_GT(kv->summary.prefix_cache_reuse_ratio, rr->summary.prefix_cache_reuse_ratio + 0.1)
      << kv->summary.prefix_cache_reuse_ratio << " vs " << rr->summary.prefix_cache_reuse_ratio;
}

TEST(ReplayDriver, SummaryCarriesTheG2CountersOfARevisitedWorkingSetBeyondG1) {
  // 16 prompts of 8 blocks, three rounds, one at a time: twice what G1 holds.
  std::vector<WorkloadRequest> workload;
  for (uint32_t round = 0; round < 3; ++round) {
    for (uint32_t g = 0; g < 16; ++g) {
      const double arrival = static_cast<double>(workload.size()) * 200.0;
      workload.push_back(request(arrival, tokens(g * 100000 + 1, 128), 2));
    }
  }
  ReplayOptions without = options(1, Placement::kRoundRobin);
  without.engine.num_gpu_blocks = 64;
  ReplayOptions with = without;
  with.engine.g2.num_blocks = 256;
  with.engine.g2.kv_bytes_per_token = 1000;
  auto a = run_replay(workload, without);
  auto b = run_replay(workload, with);
  ASSERT_TRUE(a.ok());
  ASSERT_TRUE(b.ok());
  EXPECT_FALSE(a->summary.g2.enabled);
  EXPECT_EQ(a->summary.g2.onboard_hit_tokens, 0u);
  EXPECT_EQ(a->summary.g2.bytes_offloaded, 0u);

  const G2Summary& g2 = b->summary.g2;
  EXPECT_TRUE(g2.enabled);
  EXPECT_EQ(b->summary.completed, 48u);
  EXPECT_GT(g2.onboard_hit_tokens, 0u);
  EXPECT_EQ(g2.bytes_onboarded, g2.onboard_hit_tokens * 1000);
  EXPECT_GT(g2.blocks_offloaded, 0u);
  EXPECT_EQ(g2.bytes_offloaded, g2.blocks_offloaded * 16 * 1000);
  EXPECT_EQ(g2.offloads_dropped, 0u);
  EXPECT_GT(b->summary.prefix_cache_reuse_ratio, a->summary.prefix_cache_reuse_ratio);
  // Every onboarded token was counted as cached at admission.
  EXPECT_LE(g2.onboard_hit_tokens, b->summary.cached_tokens);
}

TEST(ReplayDriver, SameInputsGiveByteIdenticalReports) {
  for (Placement placement : {Placement::kRoundRobin, Placement::kKvAware}) {
    auto a = run_replay(synthetic(shared_prefix_spec()), options(3, placement));
    auto b = run_replay(synthetic(shared_prefix_spec()), options(3, placement));
    ASSERT_TRUE(a.ok());
    ASSERT_TRUE(b.ok());
    EXPECT_EQ(render_report_json(a->summary, std::nullopt),
              render_report_json(b->summary, std::nullopt));
    std::string lines_a, lines_b;
    for (const auto& r : a->records) lines_a += render_request_line(r);
    for (const auto& r : b->records) lines_b += render_request_line(r);
    EXPECT_EQ(lines_a, lines_b);
  }
}

TEST(ReplayDriver, ClosedLoopKeepsConcurrencyAtMostN) {
  SyntheticSpec spec = shared_prefix_spec();
  spec.num_requests = 120;
  spec.arrival = ArrivalSpec{ArrivalKind::kClosedLoop, 0, 1, 5};
  ReplayOptions o = options(2, Placement::kRoundRobin);
  o.closed_loop_concurrency = 5;
  auto result = run_replay(synthetic(spec), o);
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result->max_in_flight, 5u);
  EXPECT_EQ(result->summary.completed, 120u);
  // A request is dispatched no earlier than a slot frees: request 5 waits for the first
  // finish.
  double first_finish = 1e300;
  for (int i = 0; i < 5; ++i) first_finish = std::min(first_finish, *result->records[i].finish_ms);
  EXPECT_EQ(result->records[5].arrival_ms, first_finish);
}

TEST(ReplayDriver, ALaterSessionTurnArrivesItsDelayAfterThePreviousTurnFinishes) {
  std::vector<WorkloadRequest> workload;
  workload.push_back(request(0, tokens(1, 64), 3));
  WorkloadRequest follow = request(0, tokens(1, 96), 2);
  follow.after = 0;
  follow.delay_ms = 250;
  workload.push_back(follow);
  auto result = run_replay(workload, options(1, Placement::kRoundRobin));
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result->records[1].arrival_ms, *result->records[0].finish_ms + 250);
  EXPECT_TRUE(result->records[1].completed);
  EXPECT_GE(result->records[1].cached_tokens, 64u);  // the first turn's prompt
}

TEST(ReplayDriver, RequestsAnEngineRejectsAreCountedAsFailedWithTheReason) {
  std::vector<WorkloadRequest> workload;
  workload.push_back(request(0, tokens(1, 64), 2));
  workload.push_back(request(0, tokens(1, 16 * 4096), 2));  // larger than the pool
  auto result = run_replay(workload, options(1, Placement::kRoundRobin));
  ASSERT_TRUE(result.ok());
  EXPECT_TRUE(result->records[0].completed);
  EXPECT_FALSE(result->records[1].completed);
  EXPECT_EQ(result->records[1].error, "exceeds_kv_capacity");
  EXPECT_EQ(result->summary.failed, 1u);
}

TEST(ReplayDriver, ProgressIsReportedByFinishedRequestsAndSimulatedTime) {
  SyntheticSpec spec = shared_prefix_spec();
  spec.num_requests = 100;
  ReplayOptions o = options(2, Placement::kRoundRobin);
  o.progress_every_requests = 25;
  std::vector<ReplayProgress> seen;
  o.on_progress = [&](const ReplayProgress& p) { seen.push_back(p); };
  auto result = run_replay(synthetic(spec), o);
  ASSERT_TRUE(result.ok());
  ASSERT_EQ(seen.size(), 4u);
  EXPECT_EQ(seen[0].finished, 25u);
  EXPECT_EQ(seen[3].finished, 100u);
  EXPECT_EQ(seen[3].total, 100u);

  ReplayOptions timed = options(2, Placement::kRoundRobin);
  timed.progress_every_ms = 100;
  int calls = 0;
  double last = -1;
  timed.on_progress = [&](const ReplayProgress& p) {
    ++calls;
    EXPECT_GT(p.now_ms, last);
    last = p.now_ms;
  };
  auto again = run_replay(synthetic(spec), timed);
  ASSERT_TRUE(again.ok());
  EXPECT_GE(calls, static_cast<int>(again->summary.duration_ms / 100) / 2);
  EXPECT_LE(calls, static_cast<int>(again->summary.duration_ms / 100) + 1);
}

TEST(ReplayDriver, ZeroSpeedupRunsEverythingAtTimeZero) {
  ReplayOptions o = options(2, Placement::kKvAware);
  o.engine.speedup_ratio = 0;
  SyntheticSpec spec = shared_prefix_spec();
  spec.num_requests = 50;
  spec.arrival = ArrivalSpec{};
  auto result = run_replay(synthetic(spec), o);
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result->summary.completed, 50u);
  EXPECT_EQ(result->summary.duration_ms, 0);
}

TEST(ReplayDriver, ZeroTimeChunkedPrefillWithoutEventsStillRunsToTheEnd) {
  // Passes that only compute a prefill chunk take no time and report nothing visible
  // (no token, no KV event without prefix caching); they must not count as stuck.
  ReplayOptions o = options(1, Placement::kRoundRobin);
  o.engine.speedup_ratio = 0;
  o.engine.enable_prefix_caching = false;
  o.engine.max_num_batched_tokens = 32;
  std::vector<WorkloadRequest> workload = {request(0, tokens(1, 512), 3),
                                           request(0, tokens(900, 300), 2)};
  auto result = run_replay(workload, o);
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result->summary.completed, 2u);
  EXPECT_GT(result->passes, 512u / 32u);
}

TEST(ReplayDriver, BadOptionsAndWorkloadsAreRejectedBeforeRunning) {
  std::vector<WorkloadRequest> one = {request(0, tokens(1, 8), 1)};
  EXPECT_EQ(run_replay(one, options(0, Placement::kRoundRobin)).error().reason,
            "bad_replay_options");
  ReplayOptions dp = options(1, Placement::kRoundRobin);
  dp.engine.dp_size = 2;
  EXPECT_EQ(run_replay(one, dp).error().reason, "bad_replay_options");

  std::vector<WorkloadRequest> negative = {request(-5, tokens(1, 8), 1)};
  EXPECT_EQ(run_replay(negative, options(1, Placement::kRoundRobin)).error().reason,
            "bad_workload");
  std::vector<WorkloadRequest> forward = {request(0, tokens(1, 8), 1), request(0, tokens(1, 8), 1)};
  forward[0].after = 1;
  EXPECT_EQ(run_replay(forward, options(1, Placement::kRoundRobin)).error().reason, "bad_workload");
  std::vector<WorkloadRequest> session = {request(0, tokens(1, 8), 1), request(0, tokens(1, 8), 1)};
  session[1].after = 0;
  ReplayOptions closed = options(1, Placement::kRoundRobin);
  closed.closed_loop_concurrency = 2;
  EXPECT_EQ(run_replay(session, closed).error().reason, "bad_replay_options");
}

TEST(ReplayDriver, PlacementNamesRoundTrip) {
  for (Placement p : {Placement::kRoundRobin, Placement::kKvAware}) {
    auto parsed = parse_placement(placement_name(p));
    ASSERT_TRUE(parsed.ok());
    EXPECT_EQ(*parsed, p);
  }
  EXPECT_EQ(parse_placement("random").error().reason, "bad_placement");
}

}  // namespace
}  // namespace kvmock
