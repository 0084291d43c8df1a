// The engine with the G2 (host) offload tier, on a virtual clock.
#include <gtest/gtest.h>

#include <numeric>
#include <random>
#include <set>

#include "core/engine/engine_core.h"
#include "core/timing/polynomial_timing.h"

namespace kvmock {
namespace {

constexpr uint32_t kBlockSize = 16;

EngineArgs base_args(uint64_t g1_blocks) {
  EngineArgs args;
  args.block_size = kBlockSize;
  args.num_gpu_blocks = g1_blocks;
  args.max_num_batched_tokens = 512;
  return args;
}

EngineArgs with_g2(EngineArgs args, uint64_t g2_blocks, double gbps = 14.0) {
  args.g2.num_blocks = g2_blocks;
  args.g2.kv_bytes_per_token = 131072;
  args.g2.bandwidth_g1_to_g2_gbps = gbps;
  args.g2.bandwidth_g2_to_g1_gbps = gbps;
  return args;
}

std::unique_ptr<EngineCore> make_engine(const EngineArgs& args) {
  return std::make_unique<EngineCore>(args, 1, 0, std::make_unique<PolynomialTiming>());
}

// `len` tokens unique to `group`.
Request prompt_of(RequestId id, uint32_t group, uint32_t len, uint32_t max_tokens) {
  Request r;
  r.id = id;
  r.prompt.resize(len);
  std::iota(r.prompt.begin(), r.prompt.end(), group * 100000 + 1);
  r.max_tokens = max_tokens;
  return r;
}

// What a run saw, collected pass by pass.
struct Trace {
  std::vector<RouterEvent> events;
  std::vector<std::pair<double, RequestOutput>> outputs;  // (pass end, output)
  double now = 0;
  int passes = 0;
};

// Steps until the engine is idle, from pass end to pass end.
void run_to_idle(EngineCore& engine, Trace* trace) {
  while (engine.has_work() && trace->passes < 100000) {
    PassOutput pass = engine.step(trace->now);
    EXPECT_GE(pass.end_ms, pass.start_ms);
    for (auto& e : pass.events) trace->events.push_back(std::move(e));
    for (auto& o : pass.outputs) trace->outputs.emplace_back(pass.end_ms, std::move(o));
    trace->now = pass.end_ms;
    ++trace->passes;
  }
  EXPECT_FALSE(engine.has_work());
}

struct Revisits {
  double mean_ttft_ms = 0;
  double reuse_ratio = 0;  // cached prompt tokens at admission / prompt tokens
  Trace trace;
};

// `groups` distinct 128-token prompts, visited round-robin `rounds` times, one at a
// time (each arrives when the previous one finished).
Revisits revisit(EngineCore& engine, uint32_t groups, uint32_t rounds) {
  Revisits out;
  uint64_t prompt_tokens = 0;
  uint64_t cached_tokens = 0;
  double ttft_sum = 0;
  RequestId id = 0;
  for (uint32_t round = 0; round < rounds; ++round) {
    for (uint32_t g = 0; g < groups; ++g) {
      const double arrival = out.trace.now;
      EXPECT_TRUE(engine.add_request(prompt_of(id, g, 128, 2)).ok());
      const size_t first = out.trace.outputs.size();
      run_to_idle(engine, &out.trace);
      for (size_t i = first; i < out.trace.outputs.size(); ++i) {
        const auto& [end_ms, o] = out.trace.outputs[i];
        if (o.admitted) cached_tokens += o.cached_tokens;
        if (o.first_token) ttft_sum += end_ms - arrival;
      }
      prompt_tokens += 128;
      ++id;
    }
  }
  out.mean_ttft_ms = ttft_sum / static_cast<double>(id);
  out.reuse_ratio = static_cast<double>(cached_tokens) / static_cast<double>(prompt_tokens);
  return out;
}

TEST(EngineG2, RevisitedWorkingSetBeyondG1IsServedFromG2) {
  // 16 prompts x 8 blocks = 128 blocks: twice G1, well within G1 + G2.
  auto without = make_engine(base_args(64));
  auto with = make_engine(with_g2(base_args(64), 256));
  const Revisits a = revisit(*without, 16, 3);
  const Revisits b = revisit(*with, 16, 3);
  EXPECT_GT(b.reuse_ratio, a.reuse_ratio);
  EXPECT_GT(b.reuse_ratio, 0.5);
  EXPECT_LT(b.mean_ttft_ms, a.mean_ttft_ms);
  const EngineMetrics m = with->metrics();
  EXPECT_GT(m.g2_onboard_hit_tokens, 0u);
  EXPECT_EQ(m.g2_bytes_onboarded, m.g2_onboard_hit_tokens * 131072);
  EXPECT_GT(m.g2_bytes_offloaded, 0u);
  EXPECT_EQ(m.g2_bytes_offloaded, m.g2_blocks_offloaded * kBlockSize * 131072);
  EXPECT_EQ(m.g2_total_blocks, 256u);
  EXPECT_GT(m.g2_used_blocks, 0u);
  EXPECT_DOUBLE_EQ(m.g2_usage, static_cast<double>(m.g2_used_blocks) / 256.0);
  EXPECT_EQ(m.g2_pinned_blocks, 0u);
  EXPECT_EQ(m.g1_held_blocks, 0u);
  EXPECT_EQ(m.g2_offloads_dropped, 0u);  // G2 never fills with pinned blocks here
  EXPECT_TRUE(with->g2_enabled());
  EXPECT_FALSE(without->g2_enabled());
  EXPECT_EQ(without->metrics().g2_total_blocks, 0u);
  EXPECT_EQ(without->metrics().g2_onboard_hit_tokens, 0u);
}

TEST(EngineG2, EveryHostStoredFollowsADeviceRemovedOfTheSameBlock) {
  auto engine = make_engine(with_g2(base_args(64), 256));
  const Revisits run = revisit(*engine, 16, 3);
  std::set<BlockHash> removed_from_device;
  uint64_t host_stored = 0;
  for (const RouterEvent& e : run.trace.events) {
    EXPECT_EQ(e.worker_id, 1u);
    if (e.storage_tier == StorageTier::kDevice) {
      if (const auto* r = std::get_if<RemoveData>(&e.event.data)) {
        removed_from_device.insert(r->block_hashes.begin(), r->block_hashes.end());
      }
      continue;
    }
    ASSERT_EQ(e.storage_tier, StorageTier::kHostPinned);
    if (const auto* s = std::get_if<StoreData>(&e.event.data)) {
      for (const StoredBlock& b : s->blocks) {
        EXPECT_EQ(removed_from_device.count(b.block_hash), 1u) << b.block_hash;
        ++host_stored;
      }
    }
  }
  EXPECT_GT(host_stored, 0u);
}

TEST(EngineG2, DeviceStoredOfOnboardedBlocksChainsToTheirParents) {
  // A router that saw every event never meets a device Stored with an unknown parent.
  auto engine = make_engine(with_g2(base_args(64), 256));
  const Revisits run = revisit(*engine, 16, 3);
  std::set<BlockHash> device;
  for (const RouterEvent& e : run.trace.events) {
    if (e.storage_tier != StorageTier::kDevice) continue;
    if (const auto* s = std::get_if<StoreData>(&e.event.data)) {
      if (s->parent_hash) {
        EXPECT_EQ(device.count(*s->parent_hash), 1u);
      }
      for (const StoredBlock& b : s->blocks) EXPECT_TRUE(device.insert(b.block_hash).second);
    } else if (const auto* r = std::get_if<RemoveData>(&e.event.data)) {
      for (BlockHash h : r->block_hashes) EXPECT_EQ(device.erase(h), 1u);
    }
  }
}

// Runs prompt A, then B (which pushes A out of a 10-block G1 into G2), then leaves A
// again waiting; returns after the step that parked it.
struct Parked {
  std::unique_ptr<EngineCore> engine;
  Trace trace;
  double deadline = 0;
  uint32_t blocks = 0;  // being onboarded
};

Parked park_an_onboard(double onboard_gbps) {
  EngineArgs args = with_g2(base_args(10), 64, 0);  // instant offload
  args.g2.kv_bytes_per_token = 1000;
  args.g2.bandwidth_g2_to_g1_gbps = onboard_gbps;
  Parked p{make_engine(args), {}, 0, 0};
  EXPECT_TRUE(p.engine->add_request(prompt_of(1, 1, 128, 1)).ok());
  run_to_idle(*p.engine, &p.trace);
  EXPECT_TRUE(p.engine->add_request(prompt_of(2, 2, 144, 1)).ok());
  run_to_idle(*p.engine, &p.trace);
  EXPECT_GT(p.engine->metrics().g2_used_blocks, 0u);
  EXPECT_TRUE(p.engine->add_request(prompt_of(3, 1, 128, 1)).ok());
  // Making room for the onboard may first wait for (instant) offloads of B's blocks.
  PassOutput pass;
  for (int i = 0; i < 10 && pass.metrics.onboarding_requests == 0; ++i) {
    pass = p.engine->step(p.trace.now);
    EXPECT_TRUE(pass.outputs.empty());
    if (pass.metrics.onboarding_requests == 0) p.trace.now = pass.end_ms;
  }
  EXPECT_EQ(pass.metrics.onboarding_requests, 1u);
  EXPECT_EQ(pass.metrics.onboard_transfers_in_flight, 1u);
  p.blocks = static_cast<uint32_t>(pass.metrics.g2_pinned_blocks);
  EXPECT_GT(p.blocks, 0u);
  const std::optional<double> deadline = p.engine->next_transfer_deadline_ms();
  EXPECT_TRUE(deadline.has_value());
  p.deadline = deadline.value_or(0);
  // Nothing else to do: the pass ends when the transfer does.
  EXPECT_DOUBLE_EQ(pass.end_ms, p.deadline);
  return p;
}

TEST(EngineG2, OnboardingRequestIsNotAdmittedBeforeItsTransferCompletes) {
  // blocks x 16 tokens x 1000 bytes at 0.001 GB/s (1000 bytes/ms) = blocks x 16 ms.
  Parked p = park_an_onboard(0.001);
  const double parked_at = p.trace.now;
  EXPECT_NEAR(p.deadline - parked_at, p.blocks * 16.0, 1e-6);
  // Waking early (every 10 ms) changes nothing until the deadline.
  for (double t = parked_at + 10; t < p.deadline; t += 10) {
    const PassOutput pass = p.engine->step(t);
    EXPECT_TRUE(pass.outputs.empty()) << t;
    EXPECT_EQ(pass.metrics.onboarding_requests, 1u);
    EXPECT_TRUE(p.engine->has_work());
  }
  // At the deadline the blocks land in G1; admitting the request may still wait for
  // an (instant) offload of the G1 block it evicts, so step at that instant until it runs.
  PassOutput pass = p.engine->step(p.deadline);
  EXPECT_EQ(pass.metrics.onboarding_requests, 0u);
  // The onboarded blocks are announced on the device tier as the transfer ends.
  size_t onboarded_stored = 0;
  for (const RouterEvent& e : pass.events) {
    if (e.storage_tier != StorageTier::kDevice) continue;
    if (const auto* st = std::get_if<StoreData>(&e.event.data))
      onboarded_stored += st->blocks.size();
  }
  EXPECT_EQ(onboarded_stored, p.blocks);
  for (int i = 0; i < 5 && pass.outputs.empty(); ++i) {
    pass = p.engine->step(pass.end_ms);
    EXPECT_DOUBLE_EQ(pass.start_ms, p.deadline);
  }
  ASSERT_EQ(pass.outputs.size(), 1u);
  EXPECT_TRUE(pass.outputs[0].admitted);
  // (128 - 1) / 16 = 7 blocks can hit: the G1 prefix plus the onboarded rest.
  EXPECT_EQ(pass.outputs[0].cached_tokens, 7u * kBlockSize);
  EXPECT_EQ(pass.metrics.onboarding_requests, 0u);
  EXPECT_EQ(pass.metrics.g2_onboard_hit_tokens, p.blocks * kBlockSize);
  EXPECT_EQ(pass.metrics.g2_bytes_onboarded, p.blocks * kBlockSize * 1000);
  EXPECT_EQ(pass.metrics.g2_pinned_blocks, 0u);
}

TEST(EngineG2, CancelledParkedRequestReleasesItsPins) {
  Parked p = park_an_onboard(0.001);
  EXPECT_GT(p.engine->active_decode_blocks(), 0u);  // reserved destination slots
  ASSERT_TRUE(p.engine->cancel(3));
  EXPECT_EQ(p.engine->metrics().g2_pinned_blocks, 0u);
  EXPECT_EQ(p.engine->metrics().onboarding_requests, 0u);
  EXPECT_EQ(p.engine->active_decode_blocks(), 0u);
  const PassOutput pass = p.engine->step(p.trace.now + 1);
  ASSERT_EQ(pass.outputs.size(), 1u);
  EXPECT_EQ(pass.outputs[0].finish_reason, FinishReason::kAbort);
  // The transfer still runs out; its completion finds no request.
  EXPECT_TRUE(p.engine->has_work());
  const PassOutput later = p.engine->step(p.deadline);
  EXPECT_TRUE(later.outputs.empty());
  EXPECT_FALSE(p.engine->has_work());
  EXPECT_EQ(later.metrics.g2_onboard_hit_tokens, 0u);
}

TEST(EngineG2, RunningRequestWaitsForAHeldSlotInsteadOfBeingPreempted) {
  // Two requests fill G1 except for cached blocks whose eviction must be copied out.
  EngineArgs args = with_g2(base_args(12), 64, 0.0001);  // slow offload
  args.g2.kv_bytes_per_token = 1000;
  auto engine = make_engine(args);
  ASSERT_TRUE(engine->add_request(prompt_of(1, 1, 64, 1)).ok());
  Trace trace;
  run_to_idle(*engine, &trace);  // 4 cached inactive blocks
  ASSERT_TRUE(engine->add_request(prompt_of(2, 2, 120, 40)).ok());
  run_to_idle(*engine, &trace);
  const EngineMetrics m = engine->metrics();
  EXPECT_EQ(m.preemptions_total, 0u);
  EXPECT_GT(m.g2_blocks_offloaded, 0u);
  uint32_t tokens = 0;
  for (const auto& [end, o] : trace.outputs) {
    if (o.id == 2) tokens += static_cast<uint32_t>(o.tokens.size());
  }
  EXPECT_EQ(tokens, 40u);
}

TEST(EngineG2, IdleEngineStillHasWorkWhileAnOffloadIsInFlight) {
  EngineArgs args = with_g2(base_args(8), 64, 0.001);
  args.g2.kv_bytes_per_token = 1000;
  auto engine = make_engine(args);
  ASSERT_TRUE(engine->add_request(prompt_of(1, 1, 128, 1)).ok());
  Trace trace;
  run_to_idle(*engine, &trace);
  ASSERT_TRUE(engine->add_request(prompt_of(2, 2, 64, 1)).ok());
  // Admission of 2 must evict blocks of 1: copies start, 2 waits for them.
  const PassOutput pass = engine->step(trace.now);
  EXPECT_TRUE(pass.outputs.empty());
  EXPECT_GT(pass.metrics.g1_held_blocks, 0u);
  EXPECT_GT(pass.metrics.offload_transfers_in_flight, 0u);
  ASSERT_TRUE(engine->next_transfer_deadline_ms().has_value());
  EXPECT_GT(*engine->next_transfer_deadline_ms(), trace.now);
  EXPECT_TRUE(engine->has_work());
  trace.now = pass.end_ms;
  run_to_idle(*engine, &trace);
  EXPECT_FALSE(engine->next_transfer_deadline_ms().has_value());
  EXPECT_EQ(engine->metrics().g1_held_blocks, 0u);
}

// A mixed workload with heavy G1 eviction.
std::vector<RouterEvent> mixed_run(const EngineArgs& args) {
  auto engine = make_engine(args);
  std::mt19937 rng(11);
  for (RequestId id = 0; id < 120; ++id) {
    Request r = prompt_of(id, rng() % 6, 40 + rng() % 160, 1 + rng() % 12);
    for (size_t i = 100; i < r.prompt.size(); ++i) r.prompt[i] = rng() % 5000;
    EXPECT_TRUE(engine->add_request(std::move(r)).ok());
  }
  Trace trace;
  run_to_idle(*engine, &trace);
  return trace.events;
}

TEST(EngineG2, DisabledG2LeavesTheEventStreamUnchanged) {
  const EngineArgs plain = base_args(40);
  const std::vector<RouterEvent> reference = mixed_run(plain);
  ASSERT_GT(reference.size(), 100u);
  EngineArgs no_bytes = with_g2(plain, 256);
  no_bytes.g2.kv_bytes_per_token = 0;
  EngineArgs no_blocks = with_g2(plain, 0);
  EXPECT_EQ(mixed_run(no_bytes), reference);
  EXPECT_EQ(mixed_run(no_blocks), reference);
  // G2 on changes the stream once G1 evicts.
  EXPECT_NE(mixed_run(with_g2(plain, 256)), reference);
}

TEST(EngineG2, EnabledG2WithoutG1PressureChangesNothing) {
  const EngineArgs plain = base_args(100000);
  EXPECT_EQ(mixed_run(with_g2(plain, 256)), mixed_run(plain));
}

TEST(EngineG2, WithoutPrefixCachingG2StaysOff) {
  EngineArgs args = with_g2(base_args(40), 256);
  args.enable_prefix_caching = false;
  auto engine = make_engine(args);
  ASSERT_TRUE(engine->add_request(prompt_of(1, 1, 128, 1)).ok());
  Trace trace;
  run_to_idle(*engine, &trace);
  EXPECT_EQ(engine->metrics().g2_total_blocks, 0u);
  EXPECT_FALSE(engine->g2_enabled());
  EXPECT_TRUE(trace.events.empty());
}

}  // namespace
}  // namespace kvmock
