#include "core/replay/replay_report.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace kvmock {
namespace {

TEST(ReplayReport, PercentilesInterpolateLinearlyBetweenRanks) {
  // 1..10 in scrambled order.
  const Distribution d = summarize({7, 3, 10, 1, 5, 9, 2, 8, 4, 6});
  EXPECT_EQ(d.count, 10u);
  EXPECT_DOUBLE_EQ(d.min, 1);
  EXPECT_DOUBLE_EQ(d.max, 10);
  EXPECT_DOUBLE_EQ(d.mean, 5.5);
  EXPECT_DOUBLE_EQ(d.p50, 5.5);   // rank 4.5
  EXPECT_DOUBLE_EQ(d.p75, 7.75);  // rank 6.75
  EXPECT_DOUBLE_EQ(d.p90, 9.1);   // rank 8.1
  EXPECT_DOUBLE_EQ(d.p95, 9.55);  // rank 8.55
  EXPECT_DOUBLE_EQ(d.p99, 9.91);  // rank 8.91
  EXPECT_DOUBLE_EQ(d.std, std::sqrt(8.25));
}

TEST(ReplayReport, SingleSampleAndEmptySample) {
  const Distribution one = summarize({42});
  EXPECT_EQ(one.p99, 42);
  EXPECT_EQ(one.std, 0);
  const Distribution none = summarize({});
  EXPECT_EQ(none.count, 0u);
  EXPECT_EQ(none.mean, 0);
}

RequestRecord completed(double arrival, std::vector<double> tokens, uint32_t input,
                        uint32_t cached) {
  RequestRecord r;
  r.dispatched = true;
  r.completed = true;
  r.arrival_ms = arrival;
  r.input_tokens = input;
  r.cached_tokens = cached;
  r.output_tokens = static_cast<uint32_t>(tokens.size());
  if (!tokens.empty()) r.first_token_ms = tokens[0];
  if (tokens.size() > 1) r.second_token_ms = tokens[1];
  if (!tokens.empty()) r.last_token_ms = tokens.back();
  r.finish_ms = tokens.empty() ? arrival : tokens.back();
  return r;
}

TEST(ReplayReport, LatenciesAndThroughputCountCompletedRequestsOnly) {
  std::vector<RequestRecord> records = {
      completed(0, {100, 110, 130}, 1000, 500),
      completed(50, {250, 260}, 1000, 0),
  };
  RequestRecord rejected;
  rejected.error = "exceeds_kv_capacity";
  rejected.input_tokens = 99999;
  records.push_back(rejected);

  const ReplaySummary s = summarize_replay(records, {10, 20, 10}, 3, 2000);
  EXPECT_EQ(s.requests, 3u);
  EXPECT_EQ(s.completed, 2u);
  EXPECT_EQ(s.failed, 1u);
  EXPECT_EQ(s.input_tokens, 2000u);
  EXPECT_EQ(s.output_tokens, 5u);
  EXPECT_DOUBLE_EQ(s.prefix_cache_reuse_ratio, 0.25);
  EXPECT_DOUBLE_EQ(s.requests_per_s, 1.0);
  EXPECT_DOUBLE_EQ(s.output_tokens_per_s, 2.5);
  EXPECT_DOUBLE_EQ(s.input_tokens_per_s, 1000);
  EXPECT_EQ(s.preemptions, 3u);
  EXPECT_DOUBLE_EQ(s.ttft_ms.mean, 150);  // 100 and 200
  EXPECT_DOUBLE_EQ(s.ttst_ms.mean, 10);   // 10 and 10
  EXPECT_DOUBLE_EQ(s.tpot_ms.max, 15);    // (130 - 100) / 2
  EXPECT_DOUBLE_EQ(s.tpot_ms.min, 10);
  EXPECT_DOUBLE_EQ(s.e2e_ms.max, 210);
  EXPECT_EQ(s.itl_ms.count, 3u);
}

TEST(ReplayReport, JsonHasAFixedKeyOrderAndWallTimeOnlyWhenGiven) {
  ReplaySummary s;
  s.workers = 2;
  s.placement = "kv_aware";
  const std::string without = render_report_json(s, std::nullopt);
  const std::string with = render_report_json(s, 12.5);
  EXPECT_EQ(without.find("wall_time_ms"), std::string::npos);
  const auto parsed = nlohmann::ordered_json::parse(with);
  std::vector<std::string> keys;
  for (const auto& item : parsed.items()) keys.push_back(item.key());
  const std::vector<std::string> expected = {"workers",
                                             "placement",
                                             "requests",
                                             "completed",
                                             "failed",
                                             "duration_ms",
                                             "wall_time_ms",
                                             "total_input_tokens",
                                             "total_output_tokens",
                                             "cached_tokens",
                                             "requests_per_s",
                                             "input_tokens_per_s",
                                             "output_tokens_per_s",
                                             "prefix_cache_reuse_ratio",
                                             "preemptions",
                                             "ttft_ms",
                                             "ttst_ms",
                                             "tpot_ms",
                                             "itl_ms",
                                             "e2e_ms",
                                             "g2"};
  EXPECT_EQ(keys, expected);
  std::vector<std::string> stat_keys;
  for (const auto& item : parsed["ttft_ms"].items()) stat_keys.push_back(item.key());
  EXPECT_EQ(stat_keys, (std::vector<std::string>{"count", "mean", "min", "max", "p50", "p75", "p90",
                                                 "p95", "p99", "std"}));
  EXPECT_EQ(parsed["wall_time_ms"], 12.5);
}

TEST(ReplayReport, JsonCarriesG2HitTokensAndBytesMovedPerLink) {
  ReplaySummary s;
  s.g2.enabled = true;
  s.g2.onboard_hit_tokens = 4096;
  s.g2.bytes_offloaded = 7000000;
  s.g2.bytes_onboarded = 5000000;
  s.g2.blocks_offloaded = 21;
  s.g2.offloads_dropped = 2;
  const auto parsed = nlohmann::ordered_json::parse(render_report_json(s, std::nullopt));
  const auto& g2 = parsed["g2"];
  std::vector<std::string> keys;
  for (const auto& item : g2.items()) keys.push_back(item.key());
  EXPECT_EQ(keys, (std::vector<std::string>{"enabled", "onboard_hit_tokens", "blocks_offloaded",
                                            "offloads_dropped", "bytes_moved"}));
  EXPECT_EQ(g2["enabled"], true);
  EXPECT_EQ(g2["onboard_hit_tokens"], 4096);
  EXPECT_EQ(g2["blocks_offloaded"], 21);
  EXPECT_EQ(g2["offloads_dropped"], 2);
  EXPECT_EQ(g2["bytes_moved"]["offload"], 7000000);
  EXPECT_EQ(g2["bytes_moved"]["onboard"], 5000000);
}

TEST(ReplayReport, DisabledG2IsReportedAsZerosInJsonAndNothingInText) {
  const ReplaySummary s;
  const auto parsed = nlohmann::json::parse(render_report_json(s, std::nullopt));
  EXPECT_EQ(parsed["g2"]["enabled"], false);
  EXPECT_EQ(parsed["g2"]["onboard_hit_tokens"], 0);
  EXPECT_EQ(parsed["g2"]["bytes_moved"]["offload"], 0);
  EXPECT_EQ(parsed["g2"]["bytes_moved"]["onboard"], 0);
  EXPECT_EQ(render_g2_text(s.g2), "");
}

TEST(ReplayReport, G2TextLineNamesHitTokensAndBytesPerLink) {
  G2Summary g2;
  g2.enabled = true;
  g2.onboard_hit_tokens = 640;
  g2.bytes_offloaded = 123456;
  g2.bytes_onboarded = 7890;
  g2.blocks_offloaded = 12;
  g2.offloads_dropped = 1;
  EXPECT_EQ(render_g2_text(g2),
            "g2: 640 onboard hit tokens, bytes moved 123456 offload / 7890 onboard, "
            "12 blocks offloaded, 1 dropped");
}

TEST(ReplayReport, RequestLineCarriesTheRecordAndNullsForMissingTimes) {
  RequestRecord r = completed(5, {20, 30}, 64, 32);
  r.id = 7;
  r.worker = 1;
  EXPECT_EQ(render_request_line(r),
            "{\"id\":7,\"worker\":1,\"status\":\"completed\",\"arrival_ms\":5.0,"
            "\"first_token_ms\":20.0,\"finish_ms\":30.0,\"input_tokens\":64,"
            "\"output_tokens\":2,\"cached_tokens\":32}\n");
  RequestRecord failed;
  failed.id = 8;
  failed.error = "incomplete";
  EXPECT_EQ(render_request_line(failed),
            "{\"id\":8,\"worker\":null,\"status\":\"incomplete\",\"arrival_ms\":null,"
            "\"first_token_ms\":null,\"finish_ms\":null,\"input_tokens\":0,"
            "\"output_tokens\":0,\"cached_tokens\":0}\n");
}

}  // namespace
}  // namespace kvmock
