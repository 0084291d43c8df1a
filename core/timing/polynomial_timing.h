// Dynamo's default timing model: fitted polynomials with the exact constants of
// docs/ARCHITECTURE.md#timing-models.
//
//   prefill_ms = 4.209989e-07 T^2 + 1.518344e-02 T + 16.50142, T = total new tokens
//   decode_ms  = -25.74 p^2 + 54.01 p + 5.74, p = min(1, active_kv / total_kv)
#pragma once

#include "core/timing/timing_model.h"

namespace kvmock {

class PolynomialTiming final : public TimingModel {
 public:
  double prefill_ms(const BatchStats& stats) const override;
  double decode_ms(const BatchStats& stats) const override;
};

}  // namespace kvmock
