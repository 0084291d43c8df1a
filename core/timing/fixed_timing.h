// Constant durations: `prefill_ms` for a pass with prefill work, `decode_ms` for a pass
// with decode work, 0 for a part with no work (TimingArgs fixed_*).
#pragma once

#include "core/timing/timing_model.h"

namespace kvmock {

class FixedTiming final : public TimingModel {
 public:
  FixedTiming(double prefill_ms, double decode_ms) : prefill_(prefill_ms), decode_(decode_ms) {}
  double prefill_ms(const BatchStats& stats) const override;
  double decode_ms(const BatchStats& stats) const override;

 private:
  double prefill_;
  double decode_;
};

}  // namespace kvmock
