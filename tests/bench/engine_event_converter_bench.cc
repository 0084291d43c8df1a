// Decode + convert throughput of engine KV-event payloads: the relay's per-message work.
// The batch is 16 BlockStored events of 16 blocks x 16 tokens, as vLLM sends after a
// prefill-heavy step. Reports events/s and ns per block.
#include <benchmark/benchmark.h>

#include <numeric>

#include "core/events/engine_event_converter.h"
#include "core/events/engine_payload_codec.h"

namespace kvmock {
namespace {

constexpr uint32_t kBlockSize = 16;
constexpr size_t kEvents = 16;
constexpr size_t kBlocksPerEvent = 16;

EngineBatch make_batch() {
  EngineBatch batch;
  batch.ts = 1760000000.5;
  batch.dp_rank = 0;
  uint64_t next_hash = 0x9e3779b97f4a7c15ull;
  TokenId next_token = 1000;
  for (size_t e = 0; e < kEvents; ++e) {
    // Built in place: GCC 12 warns (falsely) about moving a variant of optionals.
    auto& store = std::get<EngineBlockStored>(batch.events.emplace_back(EngineBlockStored{}));
    store.block_size = kBlockSize;
    store.medium = "GPU";
    for (size_t b = 0; b < kBlocksPerEvent; ++b) {
      store.block_hashes.push_back(next_hash);
      next_hash = next_hash * 6364136223846793005ull + 1442695040888963407ull;
    }
    store.token_ids.resize(kBlocksPerEvent * kBlockSize);
    std::iota(store.token_ids.begin(), store.token_ids.end(), next_token);
    next_token += static_cast<TokenId>(store.token_ids.size());
  }
  return batch;
}

void run(benchmark::State& state, EngineEventEncoding encoding) {
  const std::vector<uint8_t> payload =
      encode_engine_payload(make_batch(), {encoding, EngineHashEncoding::kUint64});
  ConversionOptions options;
  options.worker_id = 1;
  options.block_size = kBlockSize;
  for (auto _ : state) {
    auto batch = decode_engine_payload(payload);
    if (!batch) {
      state.SkipWithError(batch.error().message.c_str());
      break;
    }
    ConvertedBatch converted = convert_engine_batch(*batch, options);
    benchmark::DoNotOptimize(converted.events.data());
  }
  const double iterations = static_cast<double>(state.iterations());
  state.counters["events/s"] =
      benchmark::Counter(iterations * kEvents, benchmark::Counter::kIsRate);
  state.counters["blocks/s"] =
      benchmark::Counter(iterations * kEvents * kBlocksPerEvent, benchmark::Counter::kIsRate);
  // An inverted rate of (blocks / 1e9) reads as nanoseconds per block.
  state.counters["ns/block"] =
      benchmark::Counter(iterations * kEvents * kBlocksPerEvent / 1e9,
                         benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * payload.size()));
}

void BM_DecodeConvertMapBatch(benchmark::State& state) { run(state, EngineEventEncoding::kMap); }
void BM_DecodeConvertPositionalBatch(benchmark::State& state) {
  run(state, EngineEventEncoding::kPositional);
}

BENCHMARK(BM_DecodeConvertMapBatch);
BENCHMARK(BM_DecodeConvertPositionalBatch);

}  // namespace
}  // namespace kvmock
