// `kvmockd replay` driven as a user would drive it: the built binary, real files.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "tests/support/subprocess.h"

namespace kvmock {
namespace {

using testing::kvmockd_path;
using testing::run_process;

std::string data_path(const std::string& name) {
  return std::string(KVMOCK_TEST_DATA_DIR) + "/" + name;
}

std::string temp_path(const std::string& name) { return ::testing::TempDir() + "replay_" + name; }

std::string slurp(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  std::ostringstream text;
  text << file.rdbuf();
  return text.str();
}

std::vector<std::string> trace_args(const std::string& report) {
  return {kvmockd_path(),       "replay", "--trace",     data_path("replay_trace.jsonl"),
          "--report",           report,   "--workers",   "2",
          "--trace-block-size", "100",    "--placement", "kv_aware"};
}

TEST(ReplayCommand, TraceRunWritesAReportWithEveryKeyAndPerRequestLines) {
  const std::string report = temp_path("trace.json");
  const std::string lines_path = temp_path("trace.jsonl");
  std::vector<std::string> args = trace_args(report);
  args.insert(args.end(), {"--requests-out", lines_path});
  const auto result = run_process(args, "");
  ASSERT_EQ(result.exit_status, 0) << result.err;
  EXPECT_NE(result.err.find("replay: done: 8 completed"), std::string::npos) << result.err;

  const auto json = nlohmann::json::parse(slurp(report));
  for (const char* key : {"workers",
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
                          "g2"}) {
    EXPECT_TRUE(json.contains(key)) << key;
  }
  EXPECT_EQ(json["workers"], 2);
  EXPECT_EQ(json["placement"], "kv_aware");
  EXPECT_EQ(json["requests"], 8);
  EXPECT_EQ(json["completed"], 8);
  EXPECT_EQ(json["total_output_tokens"], 12 + 8 + 10 + 5 + 20 + 6 + 4 + 16);
  EXPECT_GT(json["prefix_cache_reuse_ratio"].get<double>(), 0.0);
  EXPECT_GT(json["ttft_ms"]["p50"].get<double>(), 0.0);
  EXPECT_EQ(json["ttft_ms"]["count"], 8);

  std::istringstream in(slurp(lines_path));
  int count = 0;
  for (std::string line; std::getline(in, line); ++count) {
    const auto record = nlohmann::json::parse(line);
    EXPECT_EQ(record["id"], count);
    EXPECT_EQ(record["status"], "completed");
    EXPECT_TRUE(record["first_token_ms"].is_number());
  }
  EXPECT_EQ(count, 8);
}

TEST(ReplayCommand, RepeatedRunsWithoutWallTimeAreByteIdentical) {
  const std::string a = temp_path("a.json");
  const std::string b = temp_path("b.json");
  for (const std::string& report : {a, b}) {
    std::vector<std::string> args = trace_args(report);
    args.push_back("--omit-wall-time");
    ASSERT_EQ(run_process(args, "").exit_status, 0);
  }
  EXPECT_FALSE(slurp(a).empty());
  EXPECT_EQ(slurp(a), slurp(b));
  EXPECT_EQ(slurp(a).find("wall_time_ms"), std::string::npos);
}

TEST(ReplayCommand, SyntheticClosedLoopRunSucceedsAndPrintsProgress) {
  const std::string report = temp_path("synthetic.json");
  const auto result = run_process({kvmockd_path(),
                                   "replay",
                                   "--synthetic",
                                   "--requests",
                                   "200",
                                   "--isl",
                                   "300,40",
                                   "--osl",
                                   "20,5",
                                   "--prefix-ratio",
                                   "0.5",
                                   "--prefix-groups",
                                   "4",
                                   "--arrival",
                                   "closed:16",
                                   "--seed",
                                   "7",
                                   "--workers",
                                   "3",
                                   "--placement",
                                   "kv_aware",
                                   "--report",
                                   report},
                                  "");
  ASSERT_EQ(result.exit_status, 0) << result.err;
  EXPECT_NE(result.err.find("replay: 20/200 requests finished"), std::string::npos) << result.err;
  const auto json = nlohmann::json::parse(slurp(report));
  EXPECT_EQ(json["completed"], 200);
  EXPECT_GT(json["prefix_cache_reuse_ratio"].get<double>(), 0.2);
}

// --prefix-groups defaults to workers.load.prefix_groups' 8: a ratio alone is enough.
TEST(ReplayCommand, APrefixRatioWithoutPrefixGroupsUsesTheDefaultGroups) {
  const std::string report = temp_path("prefix-ratio-alone.json");
  const auto result =
      run_process({kvmockd_path(), "replay", "--synthetic", "--requests", "40", "--isl", "200",
                   "--osl", "4", "--prefix-ratio", "0.5", "--arrival", "closed:4", "--report",
                   report},
                  "");
  ASSERT_EQ(result.exit_status, 0) << result.err;
  const auto json = nlohmann::json::parse(slurp(report));
  EXPECT_EQ(json["completed"], 40);
  EXPECT_GT(json["prefix_cache_reuse_ratio"].get<double>(), 0.1);
}

TEST(ReplayCommand, ConfigFileSetsTheEngineAndWorkerCount) {
  const std::string config = temp_path("config.yaml");
  {
    std::ofstream out(config);
    out << "workers:\n  count: 3\n  engine:\n    block_size: 16\n    num_gpu_blocks: 4\n";
  }
  const std::string report = temp_path("config.json");
  const auto result = run_process({kvmockd_path(), "replay", "--config", config, "--trace",
                                   data_path("replay_trace.jsonl"), "--report", report},
                                  "");
  ASSERT_EQ(result.exit_status, 0) << result.err;
  const auto json = nlohmann::json::parse(slurp(report));
  EXPECT_EQ(json["workers"], 3);
  // 4 blocks of 16 tokens cannot hold any prompt of the trace.
  EXPECT_EQ(json["failed"], 8);
}

TEST(ReplayCommand, G2ConfigReportsOnboardHitTokensAndBytesMovedPerLink) {
  // G1 holds 64 blocks of 16 tokens; 16 prompt families of ~14 shared blocks each do not
  // fit, so revisits find their prefix in G2.
  const std::string config = temp_path("g2.yaml");
  {
    std::ofstream out(config);
    out << "workers:\n  count: 1\n  engine:\n    block_size: 16\n    num_gpu_blocks: 64\n"
           "    g2:\n      num_blocks: 1024\n      kv_bytes_per_token: 1024\n";
  }
  const std::string report = temp_path("g2.json");
  const auto result = run_process({kvmockd_path(), "replay",          "--config", config,
                                   "--synthetic",  "--requests",      "64",       "--isl",
                                   "256",          "--osl",           "4",        "--prefix-ratio",
                                   "0.9",          "--prefix-groups", "16",       "--arrival",
                                   "closed:1",     "--seed",          "3",        "--report",
                                   report},
                                  "");
  ASSERT_EQ(result.exit_status, 0) << result.err;
  EXPECT_NE(result.err.find("replay: g2: "), std::string::npos) << result.err;
  EXPECT_NE(result.err.find(" onboard hit tokens, bytes moved "), std::string::npos) << result.err;

  const auto json = nlohmann::json::parse(slurp(report));
  EXPECT_EQ(json["completed"], 64);
  const auto& g2 = json["g2"];
  EXPECT_EQ(g2["enabled"], true);
  const uint64_t hit_tokens = g2["onboard_hit_tokens"].get<uint64_t>();
  EXPECT_GT(hit_tokens, 0u);
  EXPECT_EQ(hit_tokens % 16, 0u);  // whole blocks
  EXPECT_EQ(g2["bytes_moved"]["onboard"].get<uint64_t>(), hit_tokens * 1024);
  EXPECT_EQ(g2["bytes_moved"]["offload"].get<uint64_t>(),
            g2["blocks_offloaded"].get<uint64_t>() * 16 * 1024);
  EXPECT_GT(g2["blocks_offloaded"].get<uint64_t>(), 0u);
  EXPECT_LE(hit_tokens, json["cached_tokens"].get<uint64_t>());
}

TEST(ReplayCommand, RunWithoutG2PrintsNoG2LineAndReportsItDisabled) {
  const std::string report = temp_path("nog2.json");
  const auto result = run_process(trace_args(report), "");
  ASSERT_EQ(result.exit_status, 0) << result.err;
  EXPECT_EQ(result.err.find("replay: g2:"), std::string::npos) << result.err;
  const auto json = nlohmann::json::parse(slurp(report));
  EXPECT_EQ(json["g2"]["enabled"], false);
  EXPECT_EQ(json["g2"]["onboard_hit_tokens"], 0);
}

TEST(ReplayCommand, BadTraceExitsTwoNamingTheLineAndField) {
  const auto result =
      run_process({kvmockd_path(), "replay", "--trace", data_path("replay_trace_bad.jsonl"),
                   "--report", temp_path("bad.json")},
                  "");
  EXPECT_EQ(result.exit_status, 2);
  EXPECT_NE(result.err.find("line 3"), std::string::npos) << result.err;
  EXPECT_NE(result.err.find("output_length"), std::string::npos) << result.err;
}

TEST(ReplayCommand, BadCommandLinesExitTwo) {
  const std::string trace = data_path("replay_trace.jsonl");
  const std::string report = temp_path("flags.json");
  const std::vector<std::vector<std::string>> cases = {
      {"--trace", trace},                                     // no --report
      {"--report", report},                                   // no workload
      {"--trace", trace, "--synthetic", "--report", report},  // both
      {"--trace", trace, "--report", report, "--placement", "random"},
      {"--trace", trace, "--report", report, "--workers", "x"},
      {"--trace", trace, "--report", report, "--workers", "0"},
      {"--trace", trace, "--report", report, "--bogus"},
      {"--trace", trace, "--report", report, "--seed", "3"},   // synthetic-only flag
      {"--synthetic", "--requests", "5", "--report", report},  // no --isl/--osl
      {"--synthetic", "--requests", "5", "--isl", "10", "--osl", "5", "--arrival", "poisson",
       "--report", report},
      {"--trace", "/nonexistent/trace.jsonl", "--report", report},
      {"--trace", trace, "--report"},
  };
  for (const auto& extra : cases) {
    std::vector<std::string> args = {kvmockd_path(), "replay"};
    args.insert(args.end(), extra.begin(), extra.end());
    const auto result = run_process(args, "");
    EXPECT_EQ(result.exit_status, 2) << extra.back() << ": " << result.err;
    EXPECT_FALSE(result.err.empty());
  }
}

TEST(ReplayCommand, UnwritableReportExitsOne) {
  const auto result =
      run_process({kvmockd_path(), "replay", "--trace", data_path("replay_trace.jsonl"), "--report",
                   "/nonexistent-dir/report.json"},
                  "");
  EXPECT_EQ(result.exit_status, 1) << result.err;
}

}  // namespace
}  // namespace kvmock
