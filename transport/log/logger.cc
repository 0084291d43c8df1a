#include "transport/log/logger.h"

#include <ctime>
#include <nlohmann/json.hpp>

namespace kvmock {
namespace {

const char* severity_name(LogSeverity level) {
  switch (level) {
    case LogSeverity::kDebug:
      return "debug";
    case LogSeverity::kInfo:
      return "info";
    case LogSeverity::kWarn:
      return "warn";
    case LogSeverity::kError:
      return "error";
  }
  return "info";
}

std::string timestamp(const Clock& clock) {
  const auto now = clock.system_now();
  const std::time_t seconds = std::chrono::system_clock::to_time_t(now);
  const auto millis =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", utc.tm_year + 1900,
                utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec,
                static_cast<int>(millis));
  return buffer;
}

}  // namespace

Logger& Logger::instance() {
  static Logger logger;
  return logger;
}

void Logger::configure(LogSeverity min_level, bool json) {
  min_level_ = min_level;
  json_ = json;
}

void Logger::log(LogSeverity level, std::string_view component, std::string_view message) {
  if (!enabled(level)) return;
  write(level, component, message, 0);
}

bool Logger::log_limited(LogSeverity level, std::string_view key, std::string_view component,
                         std::string_view message, std::chrono::milliseconds interval) {
  if (!enabled(level)) return false;
  uint64_t suppressed = 0;
  {
    std::lock_guard lock(mutex_);
    auto it = limits_.find(key);
    if (it == limits_.end()) it = limits_.emplace(std::string(key), Limit{}).first;
    const auto now = clock_->steady_now();
    if (it->second.last.time_since_epoch().count() != 0 && now - it->second.last < interval) {
      ++it->second.suppressed;
      return false;
    }
    suppressed = it->second.suppressed;
    it->second = Limit{now, 0};
  }
  write(level, component, message, suppressed);
  return true;
}

void Logger::write(LogSeverity level, std::string_view component, std::string_view message,
                   uint64_t suppressed) {
  std::string line;
  if (json_) {
    nlohmann::ordered_json j;
    j["ts"] = timestamp(*clock_);
    j["level"] = severity_name(level);
    j["component"] = component;
    j["msg"] = message;
    if (suppressed > 0) j["suppressed"] = suppressed;
    line = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  } else {
    line = timestamp(*clock_) + " " + severity_name(level) + " [" + std::string(component) + "] " +
           std::string(message);
    if (suppressed > 0) line += " (" + std::to_string(suppressed) + " similar lines suppressed)";
  }
  line += '\n';
  std::lock_guard lock(mutex_);
  std::fwrite(line.data(), 1, line.size(), out_);
  std::fflush(out_);
}

}  // namespace kvmock
