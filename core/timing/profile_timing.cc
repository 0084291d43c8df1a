#include "core/timing/profile_timing.h"

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <string>

namespace kvmock {
namespace {

using nlohmann::json;

Error bad(std::string message) { return make_error("bad_profile", std::move(message)); }

// Reads `value` as a non-empty array of finite numbers; `name` is used in errors.
Result<std::vector<double>> read_array(const json& value, const std::string& name) {
  if (!value.is_array() || value.empty()) return bad(name + " must be a non-empty array");
  std::vector<double> out;
  out.reserve(value.size());
  for (size_t i = 0; i < value.size(); ++i) {
    const json& v = value[i];
    if (!v.is_number() || !std::isfinite(v.get<double>())) {
      return bad(name + "[" + std::to_string(i) + "] is not a finite number");
    }
    out.push_back(v.get<double>());
  }
  return out;
}

Result<std::vector<double>> read_numbers(const json& parent, const char* key,
                                         const std::string& where) {
  auto it = parent.find(key);
  if (it == parent.end()) return bad(where + "." + key + " is missing");
  return read_array(*it, where + "." + key);
}

std::optional<Error> check_axis(const std::vector<double>& axis, const std::string& name) {
  for (size_t i = 1; i < axis.size(); ++i) {
    if (!(axis[i] > axis[i - 1])) return bad(name + " must be strictly increasing");
  }
  return std::nullopt;
}

// Linear interpolation on a strictly increasing axis, extrapolating from the edge
// segments; constant when the axis has one point.
double interpolate(const std::vector<double>& xs, const std::vector<double>& ys, double x) {
  if (xs.size() == 1) return ys[0];
  size_t hi = std::upper_bound(xs.begin(), xs.end(), x) - xs.begin();
  hi = std::clamp<size_t>(hi, 1, xs.size() - 1);
  const size_t lo = hi - 1;
  const double t = (x - xs[lo]) / (xs[hi] - xs[lo]);
  return ys[lo] + t * (ys[hi] - ys[lo]);
}

}  // namespace

Result<ProfileTiming> ProfileTiming::parse(std::string_view json_text) {
  const json doc = json::parse(json_text.begin(), json_text.end(), nullptr, false);
  if (doc.is_discarded()) return bad("profile is not valid JSON");
  if (!doc.is_object()) return bad("profile must be a JSON object");
  auto prefill = doc.find("prefill");
  auto decode = doc.find("decode");
  if (prefill == doc.end() || !prefill->is_object()) return bad("prefill object is missing");
  if (decode == doc.end() || !decode->is_object()) return bad("decode object is missing");

  ProfileTiming model;
  auto tokens = read_numbers(*prefill, "tokens", "prefill");
  if (!tokens) return tokens.error();
  auto ms = read_numbers(*prefill, "ms", "prefill");
  if (!ms) return ms.error();
  if (tokens->size() != ms->size()) return bad("prefill.tokens and prefill.ms differ in length");
  if (auto e = check_axis(*tokens, "prefill.tokens")) return *e;
  model.prefill_tokens_ = std::move(*tokens);
  model.prefill_ms_ = std::move(*ms);

  auto kv = read_numbers(*decode, "active_kv_tokens", "decode");
  if (!kv) return kv.error();
  auto ctx = read_numbers(*decode, "context_length", "decode");
  if (!ctx) return ctx.error();
  if (auto e = check_axis(*kv, "decode.active_kv_tokens")) return *e;
  if (auto e = check_axis(*ctx, "decode.context_length")) return *e;
  auto table = decode->find("ms");
  if (table == decode->end() || !table->is_array())
    return bad("decode.ms must be an array of rows");
  if (table->size() != kv->size()) {
    return bad("decode.ms has " + std::to_string(table->size()) + " rows, expected " +
               std::to_string(kv->size()));
  }
  for (size_t r = 0; r < table->size(); ++r) {
    auto row = read_array((*table)[r], "decode.ms[" + std::to_string(r) + "]");
    if (!row) return row.error();
    if (row->size() != ctx->size()) {
      return bad("decode.ms row " + std::to_string(r) + " has " + std::to_string(row->size()) +
                 " values, expected " + std::to_string(ctx->size()));
    }
    model.decode_ms_.push_back(std::move(*row));
  }
  model.decode_kv_ = std::move(*kv);
  model.decode_ctx_ = std::move(*ctx);
  return model;
}

double ProfileTiming::prefill_ms(const BatchStats& stats) const {
  const uint64_t t = stats.prefill_new_tokens();
  if (t == 0) return 0;
  return std::max(0.0, interpolate(prefill_tokens_, prefill_ms_, static_cast<double>(t)));
}

double ProfileTiming::decode_ms(const BatchStats& stats) const {
  if (stats.decode_requests == 0) return 0;
  const double ctx = static_cast<double>(stats.decode_mean_context());
  // Interpolate every row along the context axis, then across rows.
  std::vector<double> column;
  column.reserve(decode_ms_.size());
  for (const auto& row : decode_ms_) column.push_back(interpolate(decode_ctx_, row, ctx));
  return std::max(0.0,
                  interpolate(decode_kv_, column, static_cast<double>(stats.active_kv_tokens)));
}

}  // namespace kvmock
