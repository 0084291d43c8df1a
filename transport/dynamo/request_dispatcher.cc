#include "transport/dynamo/request_dispatcher.h"

#include <algorithm>
#include <cstdio>

#include "transport/log/logger.h"
#include "transport/metrics/metrics_registry.h"

namespace kvmock {

struct DynamoRequestDispatcher::Decoded {
  dynamo::CallHomeInfo call_home;
  std::string body;
};

DynamoRequestDispatcher::DynamoRequestDispatcher(boost::asio::io_context& io,
                                                 CallHomeSettings call_home,
                                                 MetricsRegistry& metrics)
    : io_(io), call_home_(std::move(call_home)), metrics_(metrics) {}

std::string DynamoRequestDispatcher::endpoint_path(uint64_t instance_id,
                                                   std::string_view endpoint) {
  char id[17];
  std::snprintf(id, sizeof(id), "%llx", static_cast<unsigned long long>(instance_id));
  return std::string(id) + "/" + std::string(endpoint);
}

void DynamoRequestDispatcher::register_endpoint(uint64_t instance_id, std::string endpoint,
                                                DynamoEndpointHandler handler) {
  std::lock_guard lock(mutex_);
  handlers_[endpoint_path(instance_id, endpoint)] = std::move(handler);
  auto& names = endpoints_[instance_id];
  if (std::find(names.begin(), names.end(), endpoint) == names.end()) {
    names.push_back(std::move(endpoint));
    std::sort(names.begin(), names.end());
  }
}

void DynamoRequestDispatcher::unregister_instance(uint64_t instance_id) {
  std::lock_guard lock(mutex_);
  auto it = endpoints_.find(instance_id);
  if (it == endpoints_.end()) return;
  for (const std::string& name : it->second) handlers_.erase(endpoint_path(instance_id, name));
  endpoints_.erase(it);
}

std::vector<std::string> DynamoRequestDispatcher::endpoints_of(uint64_t instance_id) const {
  std::lock_guard lock(mutex_);
  auto it = endpoints_.find(instance_id);
  return it == endpoints_.end() ? std::vector<std::string>() : it->second;
}

void DynamoRequestDispatcher::count_error(std::string_view reason) {
  metrics_
      .counter("kvmock_dynamo_request_plane_errors_total",
               "Dynamo request-plane requests or frames refused, by reason.",
               {{"reason", std::string(reason)}})
      .inc();
}

bool DynamoRequestDispatcher::decode(std::string_view payload, Decoded& decoded,
                                     DispatchResult& result, bool count_errors) {
  const std::span<const uint8_t> bytes(reinterpret_cast<const uint8_t*>(payload.data()),
                                       payload.size());
  auto message = dynamo::decode_two_part(bytes, call_home_.max_message_bytes);
  if (!message) {
    if (count_errors) count_error("bad_payload");
    result = {DispatchOutcome::kRejectedUnanswered,
              "Invalid request payload: " + message.error().message};
    return false;
  }
  auto control = dynamo::parse_request_control(message->header);
  if (!control) {
    if (count_errors) count_error(control.error().reason);
    result = {DispatchOutcome::kRejectedUnanswered,
              "Invalid request control header: " + control.error().message};
    return false;
  }
  decoded.call_home = std::move(*control);
  decoded.body = std::move(message->body);
  return true;
}

DispatchResult DynamoRequestDispatcher::refuse_on_stream(dynamo::CallHomeInfo info,
                                                         std::string_view reason,
                                                         const std::string& message) {
  count_error(reason);
  auto stream = CallHomeStream::create(io_, std::move(info), call_home_, &metrics_);
  stream->start();
  stream->fail(message);
  return {DispatchOutcome::kRejectedOnStream, message};
}

DispatchResult DynamoRequestDispatcher::dispatch(std::string_view plane, std::string_view path,
                                                 std::string_view payload) {
  DispatchResult result;
  Decoded decoded;
  if (!decode(payload, decoded, result, /*count_errors=*/true)) return result;
  // Dynamo's worker takes only header+data messages (its "Unexpected message from work
  // queue" error); the body is the endpoint's request.
  if (decoded.body.empty()) {
    return refuse_on_stream(std::move(decoded.call_home), "bad_payload",
                            "Invalid request payload: the two-part message has no body");
  }
  DynamoEndpointHandler handler;
  std::string endpoint;
  {
    std::lock_guard lock(mutex_);
    auto it = handlers_.find(std::string(path));
    if (it != handlers_.end()) handler = it->second;
  }
  if (!handler) {
    return refuse_on_stream(std::move(decoded.call_home), "unknown_endpoint",
                            "Unknown endpoint: " + std::string(path));
  }
  const size_t slash = path.find('/');
  metrics_
      .counter(
          "kvmock_dynamo_requests_total",
          "Dynamo request-plane requests handed to an endpoint, by plane and endpoint.",
          {{"plane", std::string(plane)},
           {"endpoint", std::string(path.substr(slash == std::string_view::npos ? 0 : slash + 1))}})
      .inc();
  auto stream = CallHomeStream::create(io_, std::move(decoded.call_home), call_home_, &metrics_);
  handler(std::move(decoded.body), stream);
  stream->start();
  return result;
}

DispatchResult DynamoRequestDispatcher::reject(std::string_view reason, const std::string& message,
                                               std::string_view payload) {
  DispatchResult result;
  Decoded decoded;
  if (!decode(payload, decoded, result, /*count_errors=*/false)) {
    // The frame's own fault is the one to count and report.
    count_error(reason);
    result.error = message;
    return result;
  }
  return refuse_on_stream(std::move(decoded.call_home), reason, message);
}

}  // namespace kvmock
