// Engine payload codec throughput. A relay must decode well over 200k events/s per core;
// items_per_second below counts events.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <vector>

#include "core/events/engine_payload_codec.h"

namespace kvmock {
namespace {

// A realistic batch: `events` BlockStored events of one 16-token block each, vLLM v0.26
// map shape (or positional), uint64 hashes, plus one BlockRemoved.
EngineBatch make_batch(int events) {
  EngineBatch b;
  b.ts = 1760000000.5;
  b.dp_rank = 0;
  for (int i = 0; i < events; ++i) {
    EngineBlockStored s;
    s.block_hashes = {0x9000000000000000ull + static_cast<uint64_t>(i)};
    if (i > 0) s.parent_block_hash = 0x9000000000000000ull + static_cast<uint64_t>(i - 1);
    for (TokenId t = 0; t < 16; ++t)
      s.token_ids.push_back(151000 + t * 7 + static_cast<TokenId>(i));
    s.block_size = 16;
    s.medium = "GPU";
    s.extra_keys_msgpack = std::vector<uint8_t>{0x91, 0xc0};
    s.group_idx = 0;
    s.kv_cache_spec_kind = "full_attention";
    b.events.emplace_back(std::move(s));
  }
  b.events.emplace_back(EngineBlockRemoved{{0x9000000000000000ull}, "GPU", 0, 0});
  return b;
}

void BM_DecodeEnginePayload(benchmark::State& state) {
  const auto encoding =
      state.range(1) ? EngineEventEncoding::kMap : EngineEventEncoding::kPositional;
  const EngineBatch batch = make_batch(static_cast<int>(state.range(0)));
  const auto bytes = encode_engine_payload(batch, {encoding, EngineHashEncoding::kUint64});
  for (auto _ : state) {
    auto r = decode_engine_payload(bytes);
    benchmark::DoNotOptimize(r);
  }
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(batch.events.size()));
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(bytes.size()));
}
BENCHMARK(BM_DecodeEnginePayload)->ArgsProduct({{1, 16}, {0, 1}});

void BM_EncodeEnginePayload(benchmark::State& state) {
  const auto encoding =
      state.range(1) ? EngineEventEncoding::kMap : EngineEventEncoding::kPositional;
  const EngineBatch batch = make_batch(static_cast<int>(state.range(0)));
  std::vector<uint8_t> out;
  for (auto _ : state) {
    out.clear();
    encode_engine_payload(batch, {encoding, EngineHashEncoding::kUint64}, out);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(batch.events.size()));
}
BENCHMARK(BM_EncodeEnginePayload)->ArgsProduct({{1, 16}, {0, 1}});

}  // namespace
}  // namespace kvmock
