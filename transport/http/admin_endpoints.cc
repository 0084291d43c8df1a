#include "transport/http/admin_endpoints.h"

#include <nlohmann/json.hpp>

#include "core/common/text.h"

namespace kvmock {

namespace {

bool is_probe(const std::string& path) {
  return path == "/health" || path == "/healthz" || path == "/ready" || path == "/readyz";
}

}  // namespace

bool constant_time_equal(std::string_view a, std::string_view b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (size_t i = 0; i < b.size(); ++i) {
    const char from_a = i < a.size() ? a[i] : '\0';
    diff |= static_cast<unsigned char>(from_a ^ b[i]);
  }
  return diff == 0;
}

void AdminEndpoints::set_auth_token(std::string token) {
  std::lock_guard lock(mutex_);
  auth_token_ = std::move(token);
  if (!auth_token_.empty() && unauthorized_ == nullptr) {
    unauthorized_ = &metrics_.counter("kvmock_admin_unauthorized_total",
                                      "Admin requests refused with 401 (missing or wrong bearer "
                                      "token).");
  }
}

bool AdminEndpoints::authorized(const std::shared_ptr<HttpExchange>& exchange) const {
  std::string expected;
  {
    std::lock_guard lock(mutex_);
    expected = auth_token_;
  }
  if (expected.empty()) return true;
  const auto& headers = exchange->request().headers;
  const auto found = headers.find("authorization");
  std::string_view presented;
  bool bearer = false;
  if (found != headers.end()) {
    const std::string_view value = trim_ascii_whitespace(found->second);
    constexpr std::string_view kScheme = "bearer ";
    if (value.size() > kScheme.size()) {
      bearer = true;
      for (size_t i = 0; i < kScheme.size(); ++i) {
        bearer = bearer && std::tolower(static_cast<unsigned char>(value[i])) == kScheme[i];
      }
      if (bearer) presented = trim_ascii_whitespace(value.substr(kScheme.size()));
    }
  }
  if (bearer && constant_time_equal(presented, expected)) return true;
  unauthorized_->inc();
  exchange->respond(
      401, "application/json",
      bearer ? R"({"error":"invalid bearer token"})"
             : R"({"error":"missing bearer token: send Authorization: Bearer <token>"})",
      {{"WWW-Authenticate", bearer ? R"(Bearer realm="kvmockd", error="invalid_token")"
                                   : R"(Bearer realm="kvmockd")"}});
  return false;
}

void AdminEndpoints::add_readiness_check(ReadinessCheck check) {
  std::lock_guard lock(mutex_);
  checks_.push_back(std::move(check));
}

bool AdminEndpoints::ready(std::string& body) const {
  nlohmann::ordered_json report;
  nlohmann::ordered_json not_ready = nlohmann::json::array();
  if (shutting_down_) not_ready.push_back({{"check", "daemon"}, {"reason", "shutting down"}});
  {
    std::lock_guard lock(mutex_);
    for (const ReadinessCheck& c : checks_) {
      std::string reason;
      if (!c.check(reason)) not_ready.push_back({{"check", c.name}, {"reason", reason}});
    }
  }
  const bool ok = not_ready.empty();
  report["ready"] = ok;
  report["not_ready"] = std::move(not_ready);
  body = report.dump();
  return ok;
}

void AdminEndpoints::handle(const std::shared_ptr<HttpExchange>& exchange) const {
  const HttpRequest& request = exchange->request();
  const std::string path = request.path();
  if (!is_probe(path) && !authorized(exchange)) return;
  if (request.method != "GET" && request.method != "HEAD") {
    exchange->respond(405, "application/json", R"({"error":"method not allowed"})");
    return;
  }
  if (path == "/metrics") {
    exchange->respond(200, "text/plain; version=0.0.4; charset=utf-8", metrics_.render());
  } else if (path == "/health" || path == "/healthz") {
    exchange->respond(200, "application/json", R"({"status":"ok"})");
  } else if (path == "/ready" || path == "/readyz") {
    std::string body;
    const bool ok = ready(body);
    exchange->respond(ok ? 200 : 503, "application/json", std::move(body));
  } else {
    exchange->respond(404, "application/json", R"({"error":"not found"})");
  }
}

}  // namespace kvmock
