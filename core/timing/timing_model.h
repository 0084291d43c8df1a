// How long a simulated forward pass takes (docs/ARCHITECTURE.md#timing-models).
//
// A pass is a prefill part and a decode part; an engine asks its TimingModel for both
// and adds them. Models return raw milliseconds; modeled_ms() applies the decode floor
// and the speedup ratio so every model is scaled the same way.
#pragma once

#include <cstdint>
#include <memory>
#include <string_view>

#include "core/common/result.h"
#include "core/engine/engine_args.h"

namespace kvmock {

// What one pass computed, as the timing models see it.
struct BatchStats {
  // Prefill: requests that computed prompt tokens in this pass. For each, isl is the
  // prompt position reached (prefix + tokens computed now) and prefix is the prompt
  // tokens already in KV before the pass (cache hits and earlier chunks).
  uint32_t prefill_requests = 0;
  uint64_t prefill_isl_sum = 0;
  uint64_t prefill_prefix_sum = 0;
  // Decode: requests emitting a token at the end of this pass.
  uint32_t decode_requests = 0;
  uint64_t decode_context_sum = 0;  // sum of their sequence lengths
  uint64_t active_kv_tokens = 0;    // physical occupancy: active blocks x block size
  uint64_t total_kv_tokens = 0;     // capacity: blocks x block size

  // Total new prefill tokens as Dynamo computes them: batch x (integer mean isl -
  // integer mean prefix). 0 when there is no prefill.
  uint64_t prefill_new_tokens() const;
  // Integer mean context length of the decode batch (0 without decode).
  uint64_t decode_mean_context() const;
};

class TimingModel {
 public:
  virtual ~TimingModel() = default;
  // Raw prefill milliseconds; 0 when stats has no prefill work.
  virtual double prefill_ms(const BatchStats& stats) const = 0;
  // Raw decode milliseconds; 0 when stats has no decode work.
  virtual double decode_ms(const BatchStats& stats) const = 0;
};

// Every decode-producing pass lasts at least this long, so token timestamps of
// consecutive passes never collapse.
inline constexpr double kMinDecodeMs = 1.0;

struct PassTiming {
  double prefill_ms = 0;  // after speedup
  double decode_ms = 0;   // after the floor and speedup
  double total_ms() const { return prefill_ms + decode_ms; }
};

// Asks `model` for both parts, floors a non-zero decode batch at kMinDecodeMs, then
// divides by speedup_ratio; a ratio of 0 (or below) means passes take no time.
PassTiming modeled_pass(const TimingModel& model, const BatchStats& stats, double speedup_ratio);

// Builds the model `args` selects. `profile_text` is the content of
// args.profile_path (the caller reads the file; core does no I/O) and is only used by
// TimingModelKind::kProfile. Errors: "bad_profile" (see profile_timing.h), "bad_fixed_timing".
Result<std::unique_ptr<TimingModel>> make_timing_model(const TimingArgs& args,
                                                       std::string_view profile_text = {});

}  // namespace kvmock
