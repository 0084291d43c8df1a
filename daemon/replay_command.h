// `kvmockd replay`: offline replay of a trace or a synthetic workload on simulated
// workers under a virtual clock (core/replay/replay_driver.h), writing a JSON report.
//
//   kvmockd replay [--config FILE] [--set KEY=VALUE ...] --report OUT.json
//                  (--trace FILE [--trace-block-size N] | --synthetic --requests N
//                   --isl MEAN[,STD] --osl MEAN[,STD] [--prefix-ratio R]
//                   [--prefix-groups G] [--arrival SPEC] [--seed S])
//                  [--requests-out OUT.jsonl] [--workers N]
//                  [--placement round_robin|kv_aware] [--arrival-speedup X]
//                  [--omit-wall-time]
//
// Engine parameters come from the config's workers.engine; the worker count from
// --workers, else workers.count. SPEC is burst | constant:RATE | poisson:RATE |
// gamma:RATE:CV | closed:CONCURRENCY (default burst). A progress line goes to stderr
// every tenth of the requests.
#pragma once

namespace kvmock {

// argv[0] is "replay". Returns 0 on success; 2 for a bad command line, config, trace or
// workload (message on stderr, naming the trace line); 1 when the report cannot be
// written.
int run_replay_command(int argc, char** argv);

}  // namespace kvmock
