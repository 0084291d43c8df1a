#include "transport/log/logger.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <nlohmann/json.hpp>
#include <thread>

#include "tests/support/manual_clock.h"

namespace kvmock {
namespace {

class LoggerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    file_ = std::tmpfile();
    Logger::instance().set_output(file_);
  }
  void TearDown() override {
    Logger::instance().set_output(stderr);
    Logger::instance().set_clock(SystemClock::instance());
    Logger::instance().configure(LogSeverity::kInfo, false);
    std::fclose(file_);
  }
  std::string output() {
    std::fflush(file_);
    std::rewind(file_);
    std::string text;
    char buffer[4096];
    size_t n;
    while ((n = std::fread(buffer, 1, sizeof buffer, file_)) > 0) text.append(buffer, n);
    return text;
  }
  FILE* file_ = nullptr;
};

TEST_F(LoggerTest, TextLinesCarryLevelComponentAndMessage) {
  Logger::instance().configure(LogSeverity::kInfo, false);
  log_warn("relay", "dropped a frame");
  log_debug("relay", "hidden below the level");
  const std::string text = output();
  EXPECT_NE(text.find(" warn [relay] dropped a frame\n"), std::string::npos) << text;
  EXPECT_EQ(text.find("hidden"), std::string::npos);
}

TEST_F(LoggerTest, JsonLinesParse) {
  Logger::instance().configure(LogSeverity::kDebug, true);
  log_error("nats", "quote \" and newline \n inside");
  const auto line = nlohmann::json::parse(output());
  EXPECT_EQ(line["level"], "error");
  EXPECT_EQ(line["component"], "nats");
  EXPECT_EQ(line["msg"], "quote \" and newline \n inside");
}

TEST_F(LoggerTest, RateLimitedLinesReportWhatWasSuppressed) {
  Logger::instance().configure(LogSeverity::kInfo, false);
  auto& logger = Logger::instance();
  const auto interval = std::chrono::milliseconds(50);
  EXPECT_TRUE(logger.log_limited(LogSeverity::kWarn, "bad-frame", "relay", "bad frame", interval));
  for (int i = 0; i < 99; ++i) {
    EXPECT_FALSE(
        logger.log_limited(LogSeverity::kWarn, "bad-frame", "relay", "bad frame", interval));
  }
  std::this_thread::sleep_for(interval * 2);
  EXPECT_TRUE(logger.log_limited(LogSeverity::kWarn, "bad-frame", "relay", "bad frame", interval));
  const std::string text = output();
  EXPECT_NE(text.find("(99 similar lines suppressed)"), std::string::npos) << text;
}

TEST_F(LoggerTest, JsonRateLimitedLinesCarryTheSuppressedCountAsANumber) {
  Logger::instance().configure(LogSeverity::kInfo, true);
  auto& logger = Logger::instance();
  const auto interval = std::chrono::milliseconds(50);
  EXPECT_TRUE(logger.log_limited(LogSeverity::kWarn, "json-flood", "relay", "bad", interval));
  for (int i = 0; i < 7; ++i) {
    EXPECT_FALSE(logger.log_limited(LogSeverity::kWarn, "json-flood", "relay", "bad", interval));
  }
  std::this_thread::sleep_for(interval * 2);
  EXPECT_TRUE(logger.log_limited(LogSeverity::kWarn, "json-flood", "relay", "bad", interval));
  const std::string text = output();
  const size_t newline = text.find('\n');
  ASSERT_NE(newline, std::string::npos);
  const auto first = nlohmann::json::parse(text.substr(0, newline));
  const auto second = nlohmann::json::parse(text.substr(newline + 1));
  EXPECT_FALSE(first.contains("suppressed"));
  EXPECT_EQ(second["suppressed"], 7);
  EXPECT_EQ(second["msg"], "bad");
}

TEST_F(LoggerTest, TimestampsAndRateLimitsFollowTheLoggersClock) {
  Logger::instance().configure(LogSeverity::kInfo, false);
  test::ManualClock clock;  // starts at 2025-10-09T08:53:20Z
  auto& logger = Logger::instance();
  logger.set_clock(clock);
  const auto interval = std::chrono::milliseconds(50);
  EXPECT_TRUE(logger.log_limited(LogSeverity::kWarn, "manual-clock", "relay", "first", interval));
  clock.advance(std::chrono::milliseconds(49));
  EXPECT_FALSE(logger.log_limited(LogSeverity::kWarn, "manual-clock", "relay", "held", interval));
  clock.advance(std::chrono::milliseconds(1));
  EXPECT_TRUE(logger.log_limited(LogSeverity::kWarn, "manual-clock", "relay", "next", interval));
  const std::string text = output();
  EXPECT_NE(text.find("2025-10-09T08:53:20.000Z warn [relay] first"), std::string::npos) << text;
  EXPECT_NE(text.find("2025-10-09T08:53:20.050Z warn [relay] next"), std::string::npos) << text;
  EXPECT_EQ(text.find("held"), std::string::npos) << text;
}

}  // namespace
}  // namespace kvmock
