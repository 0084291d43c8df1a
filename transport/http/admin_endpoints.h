// The admin surface every kvmockd serves on `admin.listen`:
//   GET /metrics  Prometheus text format (0.0.4)
//   GET /health   liveness: 200 while the process serves requests
//   GET /ready    readiness: 200 when every check passes, else 503 with a JSON body that
//                 names what is not ready
// and, once the daemon hands over its WorkerControl, the mock workers (docs/faults.md):
//   GET  /admin/workers                     every worker: id, running, HTTP port
//   GET|POST /admin/workers/{id}/config     one worker's fault settings, exactly as its
//                                           own port's /admin/config
//   POST /admin/workers/config              one patch for every running worker, checked
//                                           before any worker changes
//   POST /admin/workers/{id}/crash          the worker dies as a router sees it
//   POST /admin/workers/{id}/restart        it comes back empty (a new id with Dynamo)
// Errors use OpenAI's error JSON: 404 naming an unknown id, 400 naming a bad key, 405, 409.
//
// With a bearer token set (admin.auth_token / admin.auth_token_file), every endpoint but
// /health and /ready (so liveness and readiness probes need no credentials) requires
// `Authorization: Bearer <token>`; otherwise 401 with `WWW-Authenticate: Bearer` and a
// JSON error, counted in kvmock_admin_unauthorized_total. The token is compared in
// constant time and never logged.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/common/result.h"
#include "transport/http/http_server.h"
#include "transport/http/worker_control.h"
#include "transport/metrics/metrics_registry.h"

namespace kvmock {

struct ReadinessCheck {
  std::string name;
  // Returns true when ready; otherwise sets `reason`.
  std::function<bool(std::string& reason)> check;
};

class AdminEndpoints {
 public:
  explicit AdminEndpoints(MetricsRegistry& metrics) : metrics_(metrics) {}

  void add_readiness_check(ReadinessCheck check);
  // Requires this bearer token from now on; empty turns authentication off.
  void set_auth_token(std::string token);
  // Serves /admin/workers/... through `control` from now on (null: not served). The
  // control must stay valid until it is replaced or the server stops.
  void set_worker_control(WorkerControl* control) { worker_control_ = control; }
  // Readiness goes false for good (the daemon is shutting down).
  void set_shutting_down() { shutting_down_ = true; }

  // Evaluates readiness: true when ready; `body` receives the JSON report.
  bool ready(std::string& body) const;

  // An HttpHandler for HttpServer.
  void handle(const std::shared_ptr<HttpExchange>& exchange) const;

 private:
  // True when `request` may see a protected endpoint; otherwise answers 401.
  bool authorized(const std::shared_ptr<HttpExchange>& exchange) const;
  // /admin/workers and below (the caller checked the token).
  void handle_workers(HttpExchange& exchange, const std::string& path) const;

  MetricsRegistry& metrics_;
  mutable std::mutex mutex_;
  std::string auth_token_;  // guarded by mutex_
  Counter* unauthorized_ = nullptr;
  std::vector<ReadinessCheck> checks_;
  std::atomic<bool> shutting_down_{false};
  std::atomic<WorkerControl*> worker_control_{nullptr};
};

// True when `a` equals `b`; the time taken depends only on the length of `b`.
bool constant_time_equal(std::string_view a, std::string_view b);

}  // namespace kvmock
