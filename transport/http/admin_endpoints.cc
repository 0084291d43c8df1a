#include "transport/http/admin_endpoints.h"

#include <charconv>
#include <nlohmann/json.hpp>
#include <optional>

#include "core/common/text.h"
#include "core/faults/fault_settings.h"
#include "transport/http/admin_config.h"

namespace kvmock {

namespace {

bool is_probe(const std::string& path) {
  return path == "/health" || path == "/healthz" || path == "/ready" || path == "/readyz";
}

constexpr std::string_view kWorkersPath = "/admin/workers";

// The id of a path segment: decimal digits only, no sign, no leading '+', within u64.
std::optional<uint64_t> parse_worker_id(std::string_view text) {
  uint64_t id = 0;
  if (text.empty() || text.size() > 20) return std::nullopt;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), id);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return id;
}

std::string status_json(const WorkerStatus& status) {
  nlohmann::ordered_json j;
  j["worker_id"] = status.worker_id;
  j["state"] = status.running ? "running" : "crashed";
  j["http_port"] = status.http_port;
  return j.dump();
}

void method_not_allowed(HttpExchange& exchange, const std::string& path) {
  answer_openai_error(exchange, 405,
                      "method " + exchange.request().method + " not allowed on " + path,
                      "method_not_allowed");
}

void no_such_worker(HttpExchange& exchange, std::string_view id) {
  answer_openai_error(exchange, 404, "no worker with id " + std::string(id), "worker_not_found",
                      "worker_id");
}

// A WorkerControl error as an answer: "not_found" 404, "conflict" 409, else 500.
void control_error(HttpExchange& exchange, const Error& error) {
  const int status = error.reason == "not_found" ? 404 : error.reason == "conflict" ? 409 : 500;
  answer_openai_error(exchange, status, error.message,
                      status == 404   ? "worker_not_found"
                      : status == 409 ? "worker_state_conflict"
                                      : "worker_control_failed",
                      status == 404 ? "worker_id" : "");
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
  if (path == kWorkersPath || path.starts_with(std::string(kWorkersPath) + "/")) {
    handle_workers(*exchange, path);
    return;
  }
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

void AdminEndpoints::handle_workers(HttpExchange& exchange, const std::string& path) const {
  WorkerControl* control = worker_control_.load();
  if (control == nullptr) {
    answer_openai_error(exchange, 404, "this process runs no mock workers", "not_found");
    return;
  }
  const std::string& method = exchange.request().method;
  const bool get = method == "GET" || method == "HEAD";
  if (path == kWorkersPath) {
    if (!get) return method_not_allowed(exchange, path);
    std::string body = "{\"workers\":[";
    bool first = true;
    for (const WorkerStatus& status : control->workers()) {
      if (!first) body += ',';
      first = false;
      body += status_json(status);
    }
    exchange.respond(200, "application/json", body + "]}");
    return;
  }
  // "/admin/workers/" then "config" (every worker) or "{id}/{action}".
  const std::string_view rest = std::string_view(path).substr(kWorkersPath.size() + 1);
  if (rest == "config") {
    if (method != "POST") return method_not_allowed(exchange, path);
    // Checked once before any worker changes: a bad patch changes no worker. Whether a
    // patch merges does not depend on the settings it merges into.
    const std::string& patch = exchange.request().body;
    if (auto checked = merge_fault_settings(FaultSettings{}, patch); !checked) {
      answer_openai_error(exchange, 400, checked.error().message, "bad_setting");
      return;
    }
    std::string body = "{\"workers\":{";
    bool first = true;
    for (const WorkerStatus& status : control->workers()) {
      WorkerFaults* faults = status.running ? control->faults(status.worker_id) : nullptr;
      if (faults == nullptr) continue;  // crashed: a restart starts from the config
      auto updated = faults->update(patch);
      if (!updated) continue;  // cannot happen after the check above
      if (!first) body += ',';
      first = false;
      body += "\"" + std::to_string(status.worker_id) + "\":" + fault_settings_json(*updated);
    }
    exchange.respond(200, "application/json", body + "}}");
    return;
  }
  const size_t slash = rest.find('/');
  const std::string_view id_text = rest.substr(0, slash);
  const std::string_view action = slash == std::string_view::npos ? "" : rest.substr(slash + 1);
  const std::optional<uint64_t> id = parse_worker_id(id_text);
  bool known = false;
  bool running = false;
  if (id) {
    for (const WorkerStatus& status : control->workers()) {
      if (status.worker_id != *id) continue;
      known = true;
      running = status.running;
    }
  }
  if (!known) return no_such_worker(exchange, id_text);
  if (action == "config") {
    WorkerFaults* faults = running ? control->faults(*id) : nullptr;
    if (faults == nullptr) {
      answer_openai_error(exchange, 409,
                          "worker " + std::to_string(*id) +
                              " is crashed: restart it to read or change its settings",
                          "worker_state_conflict");
      return;
    }
    answer_admin_config(exchange, *faults, path);
    return;
  }
  if (action != "crash" && action != "restart") {
    answer_openai_error(exchange, 404, "no route for " + path, "not_found");
    return;
  }
  if (method != "POST") return method_not_allowed(exchange, path);
  auto done = action == "crash" ? control->crash(*id) : control->restart(*id);
  if (!done) return control_error(exchange, done.error());
  exchange.respond(200, "application/json", status_json(*done));
}

}  // namespace kvmock
