// Process-wide logging to stderr: human-readable lines by default, JSON lines with
// `--log-format json`, a minimum level, and per-key rate limiting so a flood of bad
// frames produces one line per second plus a count of what was suppressed.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdio>
#include <map>
#include <mutex>
#include <string>
#include <string_view>

#include "transport/time/system_clock.h"

namespace kvmock {

enum class LogSeverity : uint8_t { kDebug, kInfo, kWarn, kError };

class Logger {
 public:
  static Logger& instance();

  void configure(LogSeverity min_level, bool json);
  // Redirects output (tests). Not thread-safe with concurrent logging.
  void set_output(FILE* out) { out_ = out; }
  // Replaces the clock of timestamps and rate limits (tests; `clock` must outlive its use).
  // Not thread-safe with concurrent logging.
  void set_clock(const Clock& clock) { clock_ = &clock; }
  bool enabled(LogSeverity level) const { return level >= min_level_.load(); }

  void log(LogSeverity level, std::string_view component, std::string_view message);
  // Logs at most once per `interval` for `key`; the next line that passes reports how many
  // were suppressed in between. Returns true when the line was written.
  bool log_limited(LogSeverity level, std::string_view key, std::string_view component,
                   std::string_view message,
                   std::chrono::milliseconds interval = std::chrono::seconds(1));

 private:
  void write(LogSeverity level, std::string_view component, std::string_view message,
             uint64_t suppressed);

  std::atomic<LogSeverity> min_level_{LogSeverity::kInfo};
  std::atomic<bool> json_{false};
  FILE* out_ = stderr;
  const Clock* clock_ = &SystemClock::instance();
  std::mutex mutex_;
  struct Limit {
    Clock::SteadyTime last{};
    uint64_t suppressed = 0;
  };
  std::map<std::string, Limit, std::less<>> limits_;
};

inline void log_info(std::string_view component, std::string_view message) {
  Logger::instance().log(LogSeverity::kInfo, component, message);
}
inline void log_warn(std::string_view component, std::string_view message) {
  Logger::instance().log(LogSeverity::kWarn, component, message);
}
inline void log_error(std::string_view component, std::string_view message) {
  Logger::instance().log(LogSeverity::kError, component, message);
}
inline void log_debug(std::string_view component, std::string_view message) {
  if (Logger::instance().enabled(LogSeverity::kDebug)) {
    Logger::instance().log(LogSeverity::kDebug, component, message);
  }
}

}  // namespace kvmock
