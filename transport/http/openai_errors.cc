#include "transport/http/openai_errors.h"

namespace kvmock {

std::string_view openai_error_type(int status) {
  switch (status) {
    case 429:
      return "rate_limit_error";
    case 503:
      return "service_unavailable_error";
    case 500:
      return "server_error";
    default:
      return "invalid_request_error";
  }
}

nlohmann::ordered_json openai_error_json(int status, std::string_view message,
                                         std::string_view code, std::string_view param) {
  nlohmann::ordered_json error;
  error["message"] = message;
  error["type"] = openai_error_type(status);
  error["param"] = param.empty() ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(param);
  error["code"] = code;
  return nlohmann::ordered_json{{"error", std::move(error)}};
}

}  // namespace kvmock
