#include "transport/http/admin_config.h"

#include "transport/http/openai_errors.h"

namespace kvmock {

void answer_openai_error(HttpExchange& exchange, int status, std::string_view message,
                         std::string_view code, std::string_view param,
                         const std::map<std::string, std::string>& headers) {
  exchange.respond(status, "application/json",
                   openai_error_json(status, message, code, param)
                       .dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace),
                   headers);
}

void answer_admin_config(HttpExchange& exchange, WorkerFaults& faults, std::string_view path,
                         const std::map<std::string, std::string>& headers) {
  const std::string& method = exchange.request().method;
  if (method == "GET" || method == "HEAD") {
    exchange.respond(200, "application/json", fault_settings_json(faults.settings()), headers);
    return;
  }
  if (method != "POST") {
    answer_openai_error(exchange, 405, "method " + method + " not allowed on " + std::string(path),
                        "method_not_allowed", {}, headers);
    return;
  }
  auto updated = faults.update(exchange.request().body);
  if (!updated) {
    answer_openai_error(exchange, 400, updated.error().message, "bad_setting", {}, headers);
    return;
  }
  exchange.respond(200, "application/json", fault_settings_json(*updated), headers);
}

}  // namespace kvmock
