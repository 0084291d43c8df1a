#include "core/replay/replay_report.h"

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>

namespace kvmock {
namespace {

using OrderedJson = nlohmann::ordered_json;

OrderedJson distribution_json(const Distribution& d) {
  OrderedJson out;
  out["count"] = d.count;
  out["mean"] = d.mean;
  out["min"] = d.min;
  out["max"] = d.max;
  out["p50"] = d.p50;
  out["p75"] = d.p75;
  out["p90"] = d.p90;
  out["p95"] = d.p95;
  out["p99"] = d.p99;
  out["std"] = d.std;
  return out;
}

double per_second(double amount, double duration_ms) {
  return duration_ms > 0 ? amount * 1000.0 / duration_ms : 0.0;
}

OrderedJson optional_time(const std::optional<double>& t) {
  return t ? OrderedJson(*t) : OrderedJson(nullptr);
}

}  // namespace

double percentile(const std::vector<double>& sorted, double p) {
  const double rank = std::clamp(p, 0.0, 100.0) / 100.0 * static_cast<double>(sorted.size() - 1);
  const size_t low = static_cast<size_t>(std::floor(rank));
  const size_t high = std::min(low + 1, sorted.size() - 1);
  const double fraction = rank - static_cast<double>(low);
  return sorted[low] + fraction * (sorted[high] - sorted[low]);
}

Distribution summarize(std::vector<double> samples) {
  Distribution d;
  if (samples.empty()) return d;
  std::sort(samples.begin(), samples.end());
  d.count = samples.size();
  double sum = 0;
  for (double x : samples) sum += x;
  d.mean = sum / static_cast<double>(samples.size());
  double squares = 0;
  for (double x : samples) squares += (x - d.mean) * (x - d.mean);
  d.std = std::sqrt(squares / static_cast<double>(samples.size()));
  d.min = samples.front();
  d.max = samples.back();
  d.p50 = percentile(samples, 50);
  d.p75 = percentile(samples, 75);
  d.p90 = percentile(samples, 90);
  d.p95 = percentile(samples, 95);
  d.p99 = percentile(samples, 99);
  return d;
}

ReplaySummary summarize_replay(const std::vector<RequestRecord>& records,
                               std::vector<double> itl_ms, uint64_t preemptions,
                               double duration_ms) {
  ReplaySummary s;
  s.requests = records.size();
  s.duration_ms = duration_ms;
  s.preemptions = preemptions;
  std::vector<double> ttft, ttst, tpot, e2e;
  for (const RequestRecord& r : records) {
    if (!r.completed) {
      ++s.failed;
      continue;
    }
    ++s.completed;
    s.input_tokens += r.input_tokens;
    s.output_tokens += r.output_tokens;
    s.cached_tokens += r.cached_tokens;
    if (r.finish_ms) e2e.push_back(*r.finish_ms - r.arrival_ms);
    if (r.first_token_ms) ttft.push_back(*r.first_token_ms - r.arrival_ms);
    if (r.first_token_ms && r.second_token_ms)
      ttst.push_back(*r.second_token_ms - *r.first_token_ms);
    if (r.first_token_ms && r.output_tokens >= 2) {
      tpot.push_back((r.last_token_ms - *r.first_token_ms) / (r.output_tokens - 1));
    }
  }
  s.requests_per_s = per_second(static_cast<double>(s.completed), duration_ms);
  s.input_tokens_per_s = per_second(static_cast<double>(s.input_tokens), duration_ms);
  s.output_tokens_per_s = per_second(static_cast<double>(s.output_tokens), duration_ms);
  s.prefix_cache_reuse_ratio = s.input_tokens > 0 ? static_cast<double>(s.cached_tokens) /
                                                        static_cast<double>(s.input_tokens)
                                                  : 0.0;
  s.ttft_ms = summarize(std::move(ttft));
  s.ttst_ms = summarize(std::move(ttst));
  s.tpot_ms = summarize(std::move(tpot));
  s.itl_ms = summarize(std::move(itl_ms));
  s.e2e_ms = summarize(std::move(e2e));
  return s;
}

std::string render_report_json(const ReplaySummary& s, std::optional<double> wall_time_ms) {
  OrderedJson out;
  out["workers"] = s.workers;
  out["placement"] = s.placement;
  out["requests"] = s.requests;
  out["completed"] = s.completed;
  out["failed"] = s.failed;
  out["duration_ms"] = s.duration_ms;
  if (wall_time_ms) out["wall_time_ms"] = *wall_time_ms;
  out["total_input_tokens"] = s.input_tokens;
  out["total_output_tokens"] = s.output_tokens;
  out["cached_tokens"] = s.cached_tokens;
  out["requests_per_s"] = s.requests_per_s;
  out["input_tokens_per_s"] = s.input_tokens_per_s;
  out["output_tokens_per_s"] = s.output_tokens_per_s;
  out["prefix_cache_reuse_ratio"] = s.prefix_cache_reuse_ratio;
  out["preemptions"] = s.preemptions;
  out["ttft_ms"] = distribution_json(s.ttft_ms);
  out["ttst_ms"] = distribution_json(s.ttst_ms);
  out["tpot_ms"] = distribution_json(s.tpot_ms);
  out["itl_ms"] = distribution_json(s.itl_ms);
  out["e2e_ms"] = distribution_json(s.e2e_ms);
  OrderedJson g2;
  g2["enabled"] = s.g2.enabled;
  g2["onboard_hit_tokens"] = s.g2.onboard_hit_tokens;
  g2["blocks_offloaded"] = s.g2.blocks_offloaded;
  g2["offloads_dropped"] = s.g2.offloads_dropped;
  OrderedJson bytes;
  bytes["offload"] = s.g2.bytes_offloaded;
  bytes["onboard"] = s.g2.bytes_onboarded;
  g2["bytes_moved"] = std::move(bytes);
  out["g2"] = std::move(g2);
  return out.dump(2) + "\n";
}

std::string render_g2_text(const G2Summary& g2) {
  if (!g2.enabled) return {};
  return "g2: " + std::to_string(g2.onboard_hit_tokens) + " onboard hit tokens, bytes moved " +
         std::to_string(g2.bytes_offloaded) + " offload / " + std::to_string(g2.bytes_onboarded) +
         " onboard, " + std::to_string(g2.blocks_offloaded) + " blocks offloaded, " +
         std::to_string(g2.offloads_dropped) + " dropped";
}

std::string render_request_line(const RequestRecord& r) {
  OrderedJson out;
  out["id"] = r.id;
  out["worker"] = r.dispatched ? OrderedJson(r.worker) : OrderedJson(nullptr);
  out["status"] = r.completed ? std::string("completed") : std::string(r.error);
  out["arrival_ms"] = r.dispatched ? OrderedJson(r.arrival_ms) : OrderedJson(nullptr);
  out["first_token_ms"] = optional_time(r.first_token_ms);
  out["finish_ms"] = optional_time(r.finish_ms);
  out["input_tokens"] = r.input_tokens;
  out["output_tokens"] = r.output_tokens;
  out["cached_tokens"] = r.cached_tokens;
  return out.dump() + "\n";
}

}  // namespace kvmock
