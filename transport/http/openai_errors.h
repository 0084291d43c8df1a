// The OpenAI error body every kvmock worker answer uses:
// {"error":{"message","type","param","code"}} with a string `code` and `param` null when the
// error is not about one request field (docs/wire-formats.md#openai-errors).
#pragma once

#include <nlohmann/json.hpp>
#include <string_view>

namespace kvmock {

// OpenAI's `type` for an HTTP status: invalid_request_error, rate_limit_error, ...
std::string_view openai_error_type(int status);

nlohmann::ordered_json openai_error_json(int status, std::string_view message,
                                         std::string_view code, std::string_view param);

}  // namespace kvmock
