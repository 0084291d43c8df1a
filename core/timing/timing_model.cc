#include "core/timing/timing_model.h"

#include <algorithm>
#include <cmath>

#include "core/timing/fixed_timing.h"
#include "core/timing/polynomial_timing.h"
#include "core/timing/profile_timing.h"

namespace kvmock {

uint64_t BatchStats::prefill_new_tokens() const {
  if (prefill_requests == 0) return 0;
  const uint64_t mean_isl = prefill_isl_sum / prefill_requests;
  const uint64_t mean_prefix = prefill_prefix_sum / prefill_requests;
  if (mean_isl <= mean_prefix) return 0;
  return static_cast<uint64_t>(prefill_requests) * (mean_isl - mean_prefix);
}

uint64_t BatchStats::decode_mean_context() const {
  return decode_requests == 0 ? 0 : decode_context_sum / decode_requests;
}

PassTiming modeled_pass(const TimingModel& model, const BatchStats& stats, double speedup_ratio) {
  PassTiming timing;
  if (!(speedup_ratio > 0) || !std::isfinite(speedup_ratio)) return timing;
  double prefill = model.prefill_ms(stats);
  double decode = model.decode_ms(stats);
  if (!std::isfinite(prefill) || prefill < 0) prefill = 0;
  if (!std::isfinite(decode) || decode < 0) decode = 0;
  if (stats.decode_requests > 0) decode = std::max(decode, kMinDecodeMs);
  timing.prefill_ms = prefill / speedup_ratio;
  timing.decode_ms = decode / speedup_ratio;
  return timing;
}

Result<std::unique_ptr<TimingModel>> make_timing_model(const TimingArgs& args,
                                                       std::string_view profile_text) {
  switch (args.model) {
    case TimingModelKind::kPolynomial:
      return std::unique_ptr<TimingModel>(std::make_unique<PolynomialTiming>());
    case TimingModelKind::kFixed:
      if (!std::isfinite(args.fixed_prefill_ms) || args.fixed_prefill_ms < 0 ||
          !std::isfinite(args.fixed_decode_ms) || args.fixed_decode_ms < 0) {
        return make_error("bad_fixed_timing", "fixed timing durations must be finite and >= 0");
      }
      return std::unique_ptr<TimingModel>(
          std::make_unique<FixedTiming>(args.fixed_prefill_ms, args.fixed_decode_ms));
    case TimingModelKind::kProfile: {
      auto parsed = ProfileTiming::parse(profile_text);
      if (!parsed) return parsed.error();
      return std::unique_ptr<TimingModel>(
          std::make_unique<ProfileTiming>(std::move(parsed).value()));
    }
  }
  return make_error("bad_timing_model", "unknown timing model");
}

}  // namespace kvmock
