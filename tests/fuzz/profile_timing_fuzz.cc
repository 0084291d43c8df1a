// Arbitrary bytes as a timing profile: parse must return a model or an Error, and a
// parsed model must answer any batch without crashing.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/timing/profile_timing.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto model = kvmock::ProfileTiming::parse(text);
  if (!model.ok()) return 0;
  kvmock::BatchStats stats;
  stats.prefill_requests = 3;
  stats.prefill_isl_sum = size * 97;
  stats.decode_requests = 2;
  stats.decode_context_sum = size * 13;
  stats.active_kv_tokens = size * 1000;
  stats.total_kv_tokens = 1 << 20;
  (void)model->prefill_ms(stats);
  (void)model->decode_ms(stats);
  return 0;
}
