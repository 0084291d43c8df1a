// Steps per second of one engine under a steady load: 256 running requests (the
// default max_num_seqs) on the default pool, each finished request replaced by a new
// one so the batch never drains. Prefix caching on, so the event path is exercised.
#include <benchmark/benchmark.h>

#include <memory>

#include "core/engine/engine_core.h"
#include "core/timing/polynomial_timing.h"

namespace kvmock {
namespace {

Request make_request(RequestId id) {
  Request r;
  r.id = id;
  r.prompt.resize(1024);
  for (size_t i = 0; i < r.prompt.size(); ++i) {
    // A shared 512-token head, then a per-request tail.
    r.prompt[i] = i < 512 ? static_cast<TokenId>(i) : static_cast<TokenId>(id * 7919 + i);
  }
  r.max_tokens = 256;
  return r;
}

void BM_EngineStepSteady256(benchmark::State& state) {
  EngineArgs args;  // defaults: 16384 blocks of 64, max_num_seqs 256, budget 8192
  EngineCore engine(args, 1, 0, std::make_unique<PolynomialTiming>());
  RequestId next_id = 0;
  for (; next_id < 256; ++next_id) (void)engine.add_request(make_request(next_id));
  double now = 0;
  // Warm up until the batch is full and decoding.
  for (int i = 0; i < 200; ++i) now = engine.step(now).end_ms;

  uint64_t tokens = 0;
  uint64_t events = 0;
  for (auto _ : state) {
    PassOutput pass = engine.step(now);
    now = pass.end_ms;
    events += pass.events.size();
    for (const auto& o : pass.outputs) {
      tokens += o.tokens.size();
      if (o.finished) (void)engine.add_request(make_request(next_id++));
    }
    benchmark::DoNotOptimize(pass);
  }
  state.counters["steps_per_s"] =
      benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
  state.counters["tokens_per_s"] =
      benchmark::Counter(static_cast<double>(tokens), benchmark::Counter::kIsRate);
  state.counters["events_per_step"] = benchmark::Counter(
      static_cast<double>(events) / static_cast<double>(std::max<int64_t>(1, state.iterations())));
  state.counters["running"] = engine.metrics().running_requests;
}
BENCHMARK(BM_EngineStepSteady256);

}  // namespace
}  // namespace kvmock
