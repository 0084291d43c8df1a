// Timing from a measured profile table (the role of Dynamo's planner NPZ,
// docs/ARCHITECTURE.md#timing-models), written as JSON:
//
//   {
//     "prefill": { "tokens": [128, 1024, 8192],          // total new tokens of a pass
//                  "ms":     [19.0, 32.1, 169.1] },
//     "decode":  { "active_kv_tokens": [0, 65536, 1048576],   // rows
//                  "context_length":   [128, 4096],           // columns
//                  "ms": [[5.7, 6.1], [9.0, 11.0], [30.0, 34.0]] }  // ms[row][col]
//   }
//
// Prefill is linear in the total new tokens of the pass; decode is bilinear in
// (active KV tokens = physical occupancy, mean context length of the decode batch).
// Both extrapolate linearly beyond the table edges; results below 0 become 0 (the
// engine still floors decode at 1 ms). Axes must be strictly increasing, finite and
// non-empty; an axis with one point makes the table constant along it.
#pragma once

#include <string_view>
#include <vector>

#include "core/common/result.h"
#include "core/timing/timing_model.h"

namespace kvmock {

class ProfileTiming final : public TimingModel {
 public:
  // Parses the JSON table above. Errors have reason "bad_profile" and a message naming
  // the offending key ("decode.ms row 2 has 3 values, expected 2", ...).
  static Result<ProfileTiming> parse(std::string_view json_text);

  double prefill_ms(const BatchStats& stats) const override;
  double decode_ms(const BatchStats& stats) const override;

 private:
  ProfileTiming() = default;

  std::vector<double> prefill_tokens_;
  std::vector<double> prefill_ms_;
  std::vector<double> decode_kv_;
  std::vector<double> decode_ctx_;
  std::vector<std::vector<double>> decode_ms_;  // [kv row][ctx column]
};

}  // namespace kvmock
