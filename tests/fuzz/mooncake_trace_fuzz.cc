// Arbitrary bytes as a Mooncake trace: parsing must return requests or an Error, and a
// parsed trace must replay to the end on small engines (both placements) without
// crashing or hanging.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/replay/replay_driver.h"
#include "core/workload/mooncake_trace.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  kvmock::TraceOptions trace;
  trace.trace_block_size = 8;
  auto parsed = kvmock::parse_mooncake_trace(text, trace);
  if (!parsed.ok()) return 0;
  uint64_t work = 0;
  for (const auto& r : *parsed) work += r.prompt.size() + r.max_tokens;
  if (work > 50000) return 0;  // keep each input fast; parsing is what is under test
  for (kvmock::Placement placement :
       {kvmock::Placement::kRoundRobin, kvmock::Placement::kKvAware}) {
    kvmock::ReplayOptions options;
    options.engine.block_size = 4;
    options.engine.num_gpu_blocks = 64;
    options.engine.max_num_seqs = 4;
    options.engine.max_num_batched_tokens = 32;
    options.workers = 2;
    options.placement = placement;
    auto result = kvmock::run_replay(*parsed, options);
    if (result.ok() && result->records.size() != parsed->size()) __builtin_trap();
  }
  return 0;
}
