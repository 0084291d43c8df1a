// Offline replay throughput: a 10,000-request synthetic workload (isl 1000, osl 100,
// half of each prompt shared within 16 groups) on 8 workers, Poisson arrivals at a rate
// that keeps them busy. Counters: simulated seconds and output tokens per wall second.
#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "core/replay/replay_driver.h"
#include "core/workload/synthetic_workload.h"

namespace kvmock {
namespace {

std::vector<WorkloadRequest> make_workload() {
  SyntheticSpec spec;
  spec.num_requests = 10000;
  spec.input = {1000, 100};
  spec.output = {100, 10};
  spec.shared_prefix_ratio = 0.5;
  spec.num_prefix_groups = 16;
  spec.arrival = ArrivalSpec{ArrivalKind::kPoisson, 80, 1, 0};
  spec.seed = 1;
  auto generator = SyntheticWorkload::create(spec);
  std::vector<WorkloadRequest> workload;
  while (auto request = generator->next()) workload.push_back(std::move(*request));
  return workload;
}

void BM_Replay10kRequests8Workers(benchmark::State& state) {
  const Placement placement = state.range(0) == 0 ? Placement::kRoundRobin : Placement::kKvAware;
  const std::vector<WorkloadRequest> workload = make_workload();
  ReplayOptions options;
  options.workers = 8;
  options.placement = placement;
  double simulated_s = 0;
  double output_tokens = 0;
  double passes = 0;
  for (auto _ : state) {
    state.PauseTiming();
    std::vector<WorkloadRequest> copy = workload;
    state.ResumeTiming();
    auto result = run_replay(std::move(copy), options);
    if (!result.ok()) {
      state.SkipWithError(result.error().message.c_str());
      return;
    }
    simulated_s += result->summary.duration_ms / 1000.0;
    output_tokens += static_cast<double>(result->summary.output_tokens);
    passes += static_cast<double>(result->passes);
    benchmark::DoNotOptimize(result->summary);
  }
  state.counters["sim_s_per_wall_s"] = benchmark::Counter(simulated_s, benchmark::Counter::kIsRate);
  state.counters["output_tokens_per_wall_s"] =
      benchmark::Counter(output_tokens, benchmark::Counter::kIsRate);
  state.counters["passes_per_wall_s"] = benchmark::Counter(passes, benchmark::Counter::kIsRate);
  state.SetLabel(std::string(placement_name(placement)));
}
BENCHMARK(BM_Replay10kRequests8Workers)->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace kvmock
