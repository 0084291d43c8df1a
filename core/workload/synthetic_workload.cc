#include "core/workload/synthetic_workload.h"

#include <algorithm>
#include <cmath>
#include <string>

namespace kvmock {
namespace {

// Stream and domain tags, so one user seed feeds independent draws.
constexpr uint64_t kLengthStream = 0x6C656E67746873ull;
constexpr uint64_t kGroupStream = 0x67726F757073ull;
constexpr uint64_t kArrivalStream = 0x617272697661ull;
constexpr uint64_t kPrefixDomain = 0xD00D000000000000ull;
constexpr uint64_t kUniqueDomain = 0x0000F00D00000000ull;

Error bad_synthetic(std::string message) { return make_error("bad_synthetic", std::move(message)); }

bool valid_length(const LengthSpec& length) {
  return std::isfinite(length.mean) && std::isfinite(length.stddev) && length.mean >= 1 &&
         length.mean <= kMaxSyntheticLength && length.stddev >= 0 &&
         length.stddev <= kMaxSyntheticLength;
}

TokenId token_at(uint64_t domain, uint64_t key, uint64_t position) {
  return static_cast<TokenId>(1 + mix64(domain, key, position) % (kSyntheticVocab - 1));
}

}  // namespace

Result<SyntheticWorkload> SyntheticWorkload::create(const SyntheticSpec& spec) {
  if (!valid_length(spec.input)) {
    return bad_synthetic("input length mean must be in [1, 2^20] and stddev in [0, 2^20]");
  }
  if (!valid_length(spec.output)) {
    return bad_synthetic("output length mean must be in [1, 2^20] and stddev in [0, 2^20]");
  }
  if (!std::isfinite(spec.shared_prefix_ratio) || spec.shared_prefix_ratio < 0 ||
      spec.shared_prefix_ratio > 1) {
    return bad_synthetic("shared prefix ratio must be in [0, 1]");
  }
  if (spec.shared_prefix_ratio > 0 && spec.num_prefix_groups == 0) {
    return bad_synthetic("a shared prefix needs at least one prefix group");
  }
  if (!std::isfinite(spec.arrival_speedup) || !(spec.arrival_speedup > 0)) {
    return bad_synthetic("arrival speedup must be a finite number > 0");
  }
  Result<bool> arrival = validate_arrival_spec(spec.arrival);
  if (!arrival.ok()) return arrival.error();
  return SyntheticWorkload(spec);
}

SyntheticWorkload::SyntheticWorkload(const SyntheticSpec& spec)
    : spec_(spec),
      lengths_(spec.seed ^ kLengthStream),
      groups_(spec.seed ^ kGroupStream),
      arrivals_(spec.arrival, spec.seed ^ kArrivalStream, spec.arrival_speedup) {}

uint32_t SyntheticWorkload::draw_length(const LengthSpec& length) {
  const double drawn = std::round(length.mean + length.stddev * lengths_.normal());
  return static_cast<uint32_t>(std::clamp(drawn, 1.0, static_cast<double>(kMaxSyntheticLength)));
}

std::optional<WorkloadRequest> SyntheticWorkload::next() {
  if (produced_ >= spec_.num_requests) return std::nullopt;
  const uint64_t index = produced_++;

  WorkloadRequest request;
  const uint32_t input = draw_length(spec_.input);
  request.max_tokens = draw_length(spec_.output);
  uint32_t prefix = 0;
  uint64_t group = 0;
  if (spec_.shared_prefix_ratio > 0) {
    group = groups_.below(spec_.num_prefix_groups);
    prefix = static_cast<uint32_t>(
        std::min<double>(input, std::round(spec_.shared_prefix_ratio * input)));
  }
  request.prompt.reserve(input);
  for (uint32_t pos = 0; pos < prefix; ++pos) {
    request.prompt.push_back(token_at(spec_.seed ^ kPrefixDomain, group, pos));
  }
  for (uint32_t pos = prefix; pos < input; ++pos) {
    request.prompt.push_back(token_at(spec_.seed ^ kUniqueDomain, index, pos));
  }
  request.arrival_ms = spec_.arrival.kind == ArrivalKind::kClosedLoop ? 0 : arrivals_.next_ms();
  return request;
}

}  // namespace kvmock
