// Parameters of one simulated engine, named and defaulted as Dynamo's mocker
// (docs/ARCHITECTURE.md#simulation) and as the `workers.engine` keys of the config
// (config/README.md). Pure data: config/ fills it from YAML, core/ reads it.
#pragma once

#include <cstdint>
#include <string>

namespace kvmock {

enum class PreemptionMode : uint8_t { kLifo, kFifo };
enum class TimingModelKind : uint8_t { kPolynomial, kProfile, kFixed };
// Where a request's output ends when it does not ask for ignore_eos: kMaxTokens always runs
// to max_tokens (a benchmark's usual setting); the others draw the position of the EOS
// token per request, so a fleet sees the spread of output lengths real traffic has.
enum class OutputLengthDistribution : uint8_t { kMaxTokens, kUniform, kExponential };

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

// The EOS draw (core/engine/request.h, eos_output_length). The drawn length counts the EOS
// token, is never below the request's min_tokens (nor 1), and a draw at or past max_tokens
// finishes "length" as if there were no EOS.
struct OutputLengthArgs {
  OutputLengthDistribution distribution = OutputLengthDistribution::kMaxTokens;
  // Mean output length in tokens: kUniform draws from [1, 2 * mean - 1], kExponential
  // from an exponential distribution with this mean (rounded, at least 1).
  uint32_t mean = 128;
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
  // vLLM's max_loras: distinct LoRA adapters one batch may run. A waiting request whose
  // adapter would be one too many is passed over (it keeps its place) until one finishes.
  // 0: no limit.
  uint32_t max_loras = 1;
  uint64_t seed = 0;  // output-token synthesis and randomized block identities
  TimingArgs timing;
  G2Args g2;
  OutputLengthArgs output_length;
};

}  // namespace kvmock
