// A blocking HTTP/1.1 client for tests (127.0.0.1 only), with a deadline on every call.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <string>

namespace kvmock::testing {

struct HttpResult {
  int status = 0;  // 0 when the request failed
  std::string body;
  std::map<std::string, std::string> headers;  // lower-cased names
  std::string error;
};

HttpResult http_request(uint16_t port, const std::string& method, const std::string& target,
                        const std::string& body = {},
                        std::chrono::milliseconds deadline = std::chrono::seconds(10));

// The same with more request headers (e.g. X-data-parallel-rank).
HttpResult http_request(uint16_t port, const std::string& method, const std::string& target,
                        const std::string& body,
                        const std::map<std::string, std::string>& extra_headers,
                        std::chrono::milliseconds deadline = std::chrono::seconds(10));

// Reads a chunked/streamed response piece by piece; `on_data` returns false to hang up
// early (simulating a client that goes away mid-stream).
HttpResult http_stream(uint16_t port, const std::string& method, const std::string& target,
                       const std::string& body,
                       const std::function<bool(const std::string&)>& on_data,
                       std::chrono::milliseconds deadline = std::chrono::seconds(30));

// The same with more request headers.
HttpResult http_stream(uint16_t port, const std::string& method, const std::string& target,
                       const std::string& body,
                       const std::map<std::string, std::string>& extra_headers,
                       const std::function<bool(const std::string&)>& on_data,
                       std::chrono::milliseconds deadline = std::chrono::seconds(30));

}  // namespace kvmock::testing
