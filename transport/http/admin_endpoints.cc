#include "transport/http/admin_endpoints.h"

#include <nlohmann/json.hpp>

namespace kvmock {

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
