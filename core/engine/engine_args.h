// Parameters of one simulated engine, named and defaulted as Dynamo's mocker
// (docs/ARCHITECTURE.md#simulation) and as the `workers.engine` keys of the config
// (config/README.md). Pure data: config/ fills it from YAML, core/ reads it.
#pragma once

#include <cstdint>
#include <string>

namespace kvmock {

enum class PreemptionMode : uint8_t { kLifo, kFifo };
enum class TimingModelKind : uint8_t { kPolynomial, kProfile, kFixed };

struct TimingArgs {
  TimingModelKind model = TimingModelKind::kPolynomial;
  std::string profile_path;     // kProfile: JSON or CSV table (format in core/timing/)
  double fixed_prefill_ms = 0;  // kFixed: per pass with prefill work
  double fixed_decode_ms = 0;   // kFixed: per pass with decode work
};

// Host-memory (G2) offload tier. Off unless num_blocks > 0 and kv_bytes_per_token > 0.
struct G2Args {
  uint64_t num_blocks = 0;
  uint64_t kv_bytes_per_token = 0;
  double bandwidth_g1_to_g2_gbps = 14.0;
  double bandwidth_g2_to_g1_gbps = 14.0;
  uint32_t offload_batch_size = 32;

  bool enabled() const { return num_blocks > 0 && kv_bytes_per_token > 0; }
};

struct EngineArgs {
  uint32_t block_size = 64;
  uint64_t num_gpu_blocks = 16384;
  uint32_t max_num_seqs = 256;
  uint32_t max_num_batched_tokens = 8192;
  uint32_t max_model_len = 0;  // 0: unlimited
  bool enable_prefix_caching = true;
  bool enable_chunked_prefill = true;
  PreemptionMode preemption_mode = PreemptionMode::kLifo;
  double speedup_ratio = 1.0;  // 0: passes take no time
  uint32_t dp_size = 1;
  uint64_t seed = 0;  // output-token synthesis and randomized block identities
  TimingArgs timing;
  G2Args g2;
};

}  // namespace kvmock
