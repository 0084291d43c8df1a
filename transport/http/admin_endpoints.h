// The admin surface every kvmockd serves on `admin.listen`:
//   GET /metrics  Prometheus text format (0.0.4)
//   GET /health   liveness: 200 while the process serves requests
//   GET /ready    readiness: 200 when every check passes, else 503 with a JSON body that
//                 names what is not ready
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "transport/http/http_server.h"
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
  // Readiness goes false for good (the daemon is shutting down).
  void set_shutting_down() { shutting_down_ = true; }

  // Evaluates readiness: true when ready; `body` receives the JSON report.
  bool ready(std::string& body) const;

  // An HttpHandler for HttpServer.
  void handle(const std::shared_ptr<HttpExchange>& exchange) const;

 private:
  MetricsRegistry& metrics_;
  mutable std::mutex mutex_;
  std::vector<ReadinessCheck> checks_;
  std::atomic<bool> shutting_down_{false};
};

}  // namespace kvmock
