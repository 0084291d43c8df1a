// Feeds arbitrary requests to the admin API (docs/faults.md): the admin port's routes
// (/admin/workers, /admin/workers/{id}/config, /admin/workers/config, crash, restart) over
// a fleet of two workers, and a worker's own /admin/config. The first byte picks the method,
// the bytes up to the first newline are the target, the rest is the body. Every request
// must be answered exactly once with a status a client expects, and an answer that is not a
// metrics page is JSON; the settings must stay in their documented ranges.
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "transport/http/admin_config.h"
#include "transport/http/admin_endpoints.h"
#include "transport/http/worker_control.h"
#include "transport/metrics/metrics_registry.h"

namespace {

// Records what the handler answers; the admin API never streams.
class RecordingExchange final : public kvmock::HttpExchange {
 public:
  explicit RecordingExchange(kvmock::HttpRequest request) : request_(std::move(request)) {}
  const kvmock::HttpRequest& request() const override { return request_; }
  void respond(int status, std::string content_type, std::string body,
               std::map<std::string, std::string>) override {
    ++answers;
    this->status = status;
    this->content_type = std::move(content_type);
    this->body = std::move(body);
  }
  void begin_stream(int, std::string, std::map<std::string, std::string>) override {
    __builtin_trap();
  }
  void write(std::string) override { __builtin_trap(); }
  void finish() override { __builtin_trap(); }
  bool client_gone() const override { return false; }
  void on_client_gone(std::function<void()>) override {}
  void abort(bool) override { __builtin_trap(); }

  int answers = 0;
  int status = 0;
  std::string content_type;
  std::string body;

 private:
  kvmock::HttpRequest request_;
};

// Two workers, 1000 and 1001; crash and restart flip their state.
class TwoWorkers final : public kvmock::WorkerControl {
 public:
  std::vector<kvmock::WorkerStatus> workers() const override { return {status(0), status(1)}; }
  kvmock::WorkerFaults* faults(uint64_t worker_id) override {
    const int index = find(worker_id);
    return index >= 0 && running_[index] ? &faults_[index] : nullptr;
  }
  kvmock::Result<kvmock::WorkerStatus> crash(uint64_t worker_id) override {
    const int index = find(worker_id);
    if (index < 0) return kvmock::make_error("not_found", "no worker " + std::to_string(worker_id));
    if (!running_[index]) return kvmock::make_error("conflict", "already crashed");
    running_[index] = false;
    return status(index);
  }
  kvmock::Result<kvmock::WorkerStatus> restart(uint64_t worker_id) override {
    const int index = find(worker_id);
    if (index < 0) return kvmock::make_error("not_found", "no worker " + std::to_string(worker_id));
    running_[index] = true;
    return status(index);
  }
  kvmock::WorkerFaults& worker_faults(int index) { return faults_[index]; }

 private:
  int find(uint64_t worker_id) const { return worker_id == 1000 ? 0 : worker_id == 1001 ? 1 : -1; }
  kvmock::WorkerStatus status(int index) const {
    return {1000 + static_cast<uint64_t>(index), running_[index],
            static_cast<uint16_t>(8100 + index)};
  }
  kvmock::WorkerFaults faults_[2] = {kvmock::WorkerFaults(1, 1000), kvmock::WorkerFaults(1, 1001)};
  bool running_[2] = {true, true};
};

void check_settings(const kvmock::FaultSettings& settings) {
  if (settings.failure_injection_rate < 0 || settings.failure_injection_rate > 100 ||
      !(settings.latency_scale > 0) || settings.jitter < 0 || settings.time_factor_under_load < 1 ||
      settings.event_drop_rate < 0 || settings.event_drop_rate > 100 ||
      settings.event_duplicate_rate < 0 || settings.event_duplicate_rate > 100 ||
      settings.event_delay_ms < 0) {
    __builtin_trap();
  }
}

void check_answer(const RecordingExchange& exchange) {
  if (exchange.answers != 1) __builtin_trap();
  static const int kStatuses[] = {200, 400, 401, 404, 405, 409, 500, 503};
  bool known = false;
  for (int status : kStatuses) known |= exchange.status == status;
  if (!known) __builtin_trap();
  if (exchange.content_type == "application/json" && !nlohmann::json::accept(exchange.body)) {
    __builtin_trap();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  static const char* kMethods[] = {"GET", "POST", "PUT", "DELETE", "HEAD", "PATCH"};
  const std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  const size_t newline = rest.find('\n');
  kvmock::HttpRequest request;
  request.method = kMethods[data[0] % 6];
  request.target = std::string(rest.substr(0, newline));
  request.body = newline == std::string_view::npos ? "" : std::string(rest.substr(newline + 1));

  static kvmock::MetricsRegistry metrics;
  static kvmock::AdminEndpoints admin(metrics);
  static TwoWorkers fleet;
  admin.set_worker_control(&fleet);

  auto through_admin_port = std::make_shared<RecordingExchange>(request);
  admin.handle(through_admin_port);
  check_answer(*through_admin_port);

  RecordingExchange on_worker_port(request);
  kvmock::answer_admin_config(on_worker_port, fleet.worker_faults(0), "/admin/config");
  check_answer(on_worker_port);

  for (int index = 0; index < 2; ++index) check_settings(fleet.worker_faults(index).settings());
  return 0;
}
