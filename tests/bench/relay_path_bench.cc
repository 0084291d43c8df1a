// The relay thread's work per engine event, in process and without sockets: decode,
// convert, dedup, number, apply to the local indexer, encode for core NATS and queue in
// the outbox (RelayedEngine::on_batch on a KvEventPipeline). The load is an engine whose
// KV cache is full (tests/bench/engine_at_capacity.h), 16 events per batch, with the
// tables already at their steady size when timing starts. The outbox is drained, outside
// the relay's share, as the publisher thread would. Reports ns per event: the relay
// thread's part of "events per kvmockd CPU-second" in relay_driver, free of the
// machine's scheduling noise.
#include <benchmark/benchmark.h>

#include <zmq.hpp>

#include "config/config.h"
#include "daemon/relayed_engine.h"
#include "tests/bench/engine_at_capacity.h"
#include "transport/metrics/metrics_registry.h"
#include "transport/nats/kv_event_pipeline.h"
#include "transport/nats/outbox.h"

namespace kvmock {
namespace {

constexpr size_t kEventsPerBatch = 16;
// Enough stores to fill the engine's cache, then a quarter more.
constexpr size_t kWarmupBatches =
    bench::EngineAtCapacity::kCapacityBlocks * 5 / 4 / kEventsPerBatch;
constexpr size_t kTimedBatches = 20000;

void BM_RelayPath(benchmark::State& state) {
  bench::EngineAtCapacity engine;
  std::vector<std::vector<uint8_t>> warmup;
  for (size_t b = 0; b < kWarmupBatches; ++b) warmup.push_back(engine.next_batch(kEventsPerBatch));
  std::vector<std::vector<uint8_t>> timed;
  for (size_t b = 0; b < kTimedBatches; ++b) timed.push_back(engine.next_batch(kEventsPerBatch));

  MetricsRegistry metrics;
  Outbox outbox(1 << 20);
  KvEventPipeline pipeline(outbox, KvEventPipelineOptions{}, metrics);
  RelayConfig config;
  config.endpoint = "tcp://127.0.0.1:1";  // never connected: on_batch is called directly
  config.worker_id = 1;
  config.block_size = bench::EngineAtCapacity::kBlockSize;
  zmq::context_t context(1);
  RelayedEngine relay(config, context, pipeline, outbox, metrics);
  std::vector<OutboundMessage> drained;
  auto drain = [&] {
    drained.clear();
    while (outbox.pop_batch(drained, 4096, std::chrono::milliseconds(0)) > 0) drained.clear();
  };
  uint64_t seq = 0;
  for (const auto& payload : warmup) {
    relay.on_batch(0, seq++, payload, false);
    drain();
  }

  size_t next = 0;
  for (auto _ : state) {
    relay.on_batch(0, seq++, timed[next++], false);
    state.PauseTiming();
    drain();
    state.ResumeTiming();
  }
  if (relay.decode_errors() != 0) state.SkipWithError("the relay could not decode a batch");
  const double events = static_cast<double>(state.iterations()) * kEventsPerBatch;
  state.counters["ns/event"] =
      benchmark::Counter(events / 1e9, benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
  state.counters["blocks_held"] = static_cast<double>(pipeline.block_count(1, 0));
}
BENCHMARK(BM_RelayPath)->Iterations(kTimedBatches)->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace kvmock
