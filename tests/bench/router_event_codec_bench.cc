// Router-event codec throughput. The JSON encoder sits on the JetStream publish path and
// the msgpack encoder on the event-plane path, one call per published event.
#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "core/events/router_event_codec.h"

namespace kvmock {
namespace {

RouterEvent stored_event(size_t blocks) {
  RouterEvent e;
  e.worker_id = 1000;
  e.event.event_id = 123456;
  StoreData store;
  store.parent_hash = 0x9e3779b97f4a7c15ull;
  for (size_t i = 0; i < blocks; ++i) {
    store.blocks.push_back(
        StoredBlock{0xfedcba9876543210ull + i, 0x8000000000000000ull + i * 7919, std::nullopt});
  }
  e.event.data = store;
  return e;
}

void BM_EncodeJson(benchmark::State& state) {
  const RouterEvent e = stored_event(static_cast<size_t>(state.range(0)));
  std::string out;
  for (auto _ : state) {
    out.clear();
    encode_router_event_json(e, {}, out);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * out.size()));
}
BENCHMARK(BM_EncodeJson)->Arg(1)->Arg(16);

void BM_EncodeMsgpack(benchmark::State& state) {
  const RouterEvent e = stored_event(static_cast<size_t>(state.range(0)));
  std::vector<uint8_t> out;
  for (auto _ : state) {
    out.clear();
    encode_router_event_msgpack(e, {}, out);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * out.size()));
}
BENCHMARK(BM_EncodeMsgpack)->Arg(1)->Arg(16);

void BM_DecodeJson(benchmark::State& state) {
  const std::string text =
      encode_router_event_json(stored_event(static_cast<size_t>(state.range(0))));
  for (auto _ : state) {
    auto r = decode_router_event_json(text);
    benchmark::DoNotOptimize(r.ok());
  }
}
BENCHMARK(BM_DecodeJson)->Arg(1)->Arg(16);

void BM_DecodeMsgpack(benchmark::State& state) {
  const auto bytes = encode_router_event_msgpack(stored_event(static_cast<size_t>(state.range(0))));
  for (auto _ : state) {
    auto r = decode_router_event_msgpack(bytes);
    benchmark::DoNotOptimize(r.ok());
  }
}
BENCHMARK(BM_DecodeMsgpack)->Arg(1)->Arg(16);

}  // namespace
}  // namespace kvmock
