#include "core/workload/arrival_process.h"

#include <charconv>
#include <cmath>
#include <cstdlib>
#include <string>

namespace kvmock {
namespace {

Error bad_arrival(std::string message) { return make_error("bad_arrival", std::move(message)); }

bool parse_double(std::string_view text, double* out) {
  if (text.empty()) return false;
  // from_chars for double is not in every libstdc++ we build with; strtod on a copy.
  const std::string copy(text);
  char* end = nullptr;
  *out = std::strtod(copy.c_str(), &end);
  return end == copy.c_str() + copy.size();
}

}  // namespace

Result<ArrivalSpec> parse_arrival_spec(std::string_view text) {
  ArrivalSpec spec;
  const size_t colon = text.find(':');
  const std::string_view kind = text.substr(0, colon);
  const std::string_view rest =
      colon == std::string_view::npos ? std::string_view{} : text.substr(colon + 1);
  if (kind == "burst") {
    if (colon != std::string_view::npos) return bad_arrival("burst takes no parameter");
    spec.kind = ArrivalKind::kBurst;
  } else if (kind == "constant" || kind == "poisson") {
    spec.kind = kind == "constant" ? ArrivalKind::kConstant : ArrivalKind::kPoisson;
    if (!parse_double(rest, &spec.rate)) {
      return bad_arrival(std::string(kind) + " needs a rate: " + std::string(kind) + ":RATE");
    }
  } else if (kind == "gamma") {
    const size_t second = rest.find(':');
    if (second == std::string_view::npos || !parse_double(rest.substr(0, second), &spec.rate) ||
        !parse_double(rest.substr(second + 1), &spec.cv)) {
      return bad_arrival("gamma needs a rate and a coefficient of variation: gamma:RATE:CV");
    }
    spec.kind = ArrivalKind::kGamma;
  } else if (kind == "closed") {
    uint32_t n = 0;
    const auto [ptr, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), n);
    if (rest.empty() || ec != std::errc() || ptr != rest.data() + rest.size()) {
      return bad_arrival("closed needs a concurrency: closed:N");
    }
    spec.kind = ArrivalKind::kClosedLoop;
    spec.concurrency = n;
  } else {
    return bad_arrival("unknown arrival '" + std::string(text) +
                       "' (burst | constant:RATE | poisson:RATE | gamma:RATE:CV | closed:N)");
  }
  Result<bool> valid = validate_arrival_spec(spec);
  if (!valid.ok()) return valid.error();
  return spec;
}

Result<bool> validate_arrival_spec(const ArrivalSpec& spec) {
  switch (spec.kind) {
    case ArrivalKind::kBurst:
      return true;
    case ArrivalKind::kGamma:
      if (!std::isfinite(spec.cv) || !(spec.cv > 0)) {
        return bad_arrival("gamma cv must be a finite number > 0");
      }
      [[fallthrough]];
    case ArrivalKind::kConstant:
    case ArrivalKind::kPoisson:
      if (!std::isfinite(spec.rate) || !(spec.rate > 0)) {
        return bad_arrival("arrival rate must be a finite number > 0 (requests per second)");
      }
      return true;
    case ArrivalKind::kClosedLoop:
      if (spec.concurrency == 0) return bad_arrival("closed-loop concurrency must be >= 1");
      return true;
  }
  return bad_arrival("unknown arrival kind");
}

ArrivalProcess::ArrivalProcess(const ArrivalSpec& spec, uint64_t seed, double speedup)
    : spec_(spec), speedup_(speedup > 0 ? speedup : 1.0), random_(seed) {}

double ArrivalProcess::next_ms() {
  if (!started_) {
    started_ = true;
    return now_ms_;
  }
  now_ms_ += gap_ms() / speedup_;
  return now_ms_;
}

double ArrivalProcess::gap_ms() {
  switch (spec_.kind) {
    case ArrivalKind::kBurst:
    case ArrivalKind::kClosedLoop:
      return 0;
    case ArrivalKind::kConstant:
      return 1000.0 / spec_.rate;
    case ArrivalKind::kPoisson:
      return random_.exponential(1000.0 / spec_.rate);
    case ArrivalKind::kGamma: {
      const double shape = 1.0 / (spec_.cv * spec_.cv);
      return random_.gamma(shape) * (1000.0 / spec_.rate) / shape;
    }
  }
  return 0;
}

}  // namespace kvmock
