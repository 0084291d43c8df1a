#include "core/faults/fault_settings.h"

#include <gtest/gtest.h>

#include <map>

namespace kvmock {
namespace {

TEST(FaultSettings, APatchReplacesOnlyTheKeysItNames) {
  FaultSettings start;
  start.failure_injection_rate = 5;
  auto merged =
      merge_fault_settings(start, R"({"failure_types":["rate_limit","model_not_found"]})");
  ASSERT_TRUE(merged) << merged.error().message;
  EXPECT_EQ(merged->failure_injection_rate, 5);
  EXPECT_EQ(merged->failure_types,
            (std::vector<FaultType>{FaultType::kRateLimit, FaultType::kModelNotFound}));
  EXPECT_EQ(fault_settings_json(*merged),
            R"({"failure_injection_rate":5.0,"failure_types":["rate_limit","model_not_found"],)"
            R"("paused":false,"latency_scale":1.0,"jitter":0.0,"time_factor_under_load":1.0,)"
            R"("event_drop_rate":0.0,"event_duplicate_rate":0.0,"event_delay_ms":0.0})");
}

TEST(FaultSettings, BadPatchesNameTheKey) {
  const FaultSettings start;
  const std::map<std::string, std::string> cases = {
      {R"({"failure_rate":3})",
       "failure_rate: unknown setting (failure_injection_rate, failure_types, paused, "
       "latency_scale, jitter, time_factor_under_load, event_drop_rate, event_duplicate_rate, "
       "event_delay_ms)"},
      {R"({"latency_scale":0})", "latency_scale: must be greater than 0 and at most 1000, got 0"},
      {R"({"jitter":-1})", "jitter: must be between 0 and 10, got -1"},
      {R"({"paused":1})", "paused: must be true or false"},
      {R"({"event_drop_rate":"x"})",
       "event_drop_rate: must be a number, between 0 and 100 (percent)"},
      {R"({"time_factor_under_load":0.5})",
       "time_factor_under_load: must be between 1 and 1000, got 0.5"},
      {R"({"failure_injection_rate":101})",
       "failure_injection_rate: must be between 0 and 100, got 101"},
      {R"({"failure_injection_rate":"5"})",
       "failure_injection_rate: must be a number of percent, 0 to 100"},
      {R"({"failure_types":"rate_limit"})", "failure_types: must be a list of fault types"},
      {R"({"failure_types":["teapot"]})",
       "failure_types: unknown fault type \"teapot\" (one of rate_limit, server_error, "
       "service_unavailable, invalid_request, context_length, model_not_found, timeout, "
       "connection_reset, stream_cut)"},
      {"[1]", "the body must be a JSON object of settings"},
      {"{", "the body must be a JSON object of settings"},
  };
  for (const auto& [patch, message] : cases) {
    auto merged = merge_fault_settings(start, patch);
    ASSERT_FALSE(merged) << patch;
    EXPECT_EQ(merged.error().message, message) << patch;
    EXPECT_EQ(merged.error().reason, "bad_request");
  }
}

TEST(FaultSettings, EveryNumberAndThePauseMerge) {
  auto merged = merge_fault_settings(
      FaultSettings{},
      R"({"latency_scale":2.5,"jitter":0.1,"paused":true,"time_factor_under_load":3,)"
      R"("event_drop_rate":10,"event_duplicate_rate":5,"event_delay_ms":250})");
  ASSERT_TRUE(merged) << merged.error().message;
  EXPECT_EQ(merged->latency_scale, 2.5);
  EXPECT_EQ(merged->jitter, 0.1);
  EXPECT_TRUE(merged->paused);
  EXPECT_EQ(merged->time_factor_under_load, 3);
  EXPECT_EQ(merged->event_drop_rate, 10);
  EXPECT_EQ(merged->event_duplicate_rate, 5);
  EXPECT_EQ(merged->event_delay_ms, 250);
  EXPECT_EQ(merged->failure_injection_rate, 0);
}

TEST(FaultSettings, EveryTypeHasItsStatusAndName) {
  for (const FaultType type : all_fault_types()) {
    EXPECT_EQ(fault_type_from_name(fault_type_name(type)), type);
    if (fault_has_status(type)) {
      EXPECT_GE(fault_status(type), 400);
    }
  }
  EXPECT_FALSE(fault_has_status(FaultType::kTimeout));
  EXPECT_FALSE(fault_has_status(FaultType::kConnectionReset));
  EXPECT_FALSE(fault_has_status(FaultType::kStreamCut));
  EXPECT_EQ(fault_status(FaultType::kRateLimit), 429);
  EXPECT_EQ(fault_status(FaultType::kServiceUnavailable), 503);
  EXPECT_EQ(fault_code(FaultType::kContextLength), "context_length_exceeded");
  EXPECT_FALSE(fault_type_from_name("timeoutx"));
}

TEST(FaultSettings, TheDrawFollowsTheRateAndTheTypesAndRepeatsWithTheSeed) {
  FaultSettings settings;
  EXPECT_FALSE(pick_fault(settings, 1, 1000, 0));  // rate 0: never
  settings.failure_injection_rate = 30;
  settings.failure_types = {FaultType::kServerError, FaultType::kRateLimit};
  int failed = 0;
  std::map<FaultType, int> by_type;
  for (uint64_t sequence = 0; sequence < 10000; ++sequence) {
    const auto fault = pick_fault(settings, 7, 1000, sequence);
    EXPECT_EQ(fault, pick_fault(settings, 7, 1000, sequence));  // a function of its inputs
    if (!fault) continue;
    ++failed;
    ++by_type[*fault];
  }
  EXPECT_NEAR(failed, 3000, 300);
  EXPECT_EQ(by_type.size(), 2u);
  EXPECT_NEAR(by_type[FaultType::kServerError], 1500, 250);
  // Another seed or another worker picks other requests.
  int same = 0;
  for (uint64_t sequence = 0; sequence < 1000; ++sequence) {
    same += pick_fault(settings, 7, 1000, sequence).has_value() ==
            pick_fault(settings, 8, 1000, sequence).has_value();
  }
  EXPECT_LT(same, 900);
  settings.failure_injection_rate = 100;
  for (uint64_t sequence = 0; sequence < 100; ++sequence) {
    EXPECT_TRUE(pick_fault(settings, 7, 1001, sequence));
  }
}

}  // namespace
}  // namespace kvmock
