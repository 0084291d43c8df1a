// The endpoint logic shared by Dynamo's two request-plane intakes, TCP and NATS
// (docs/wire-formats.md#dynamo-request-plane). An intake hands over a request's path
// ("{instance_id:x}/{endpoint}") and its two-part payload; the dispatcher decodes the
// control header, opens the call-home response stream it names, and runs the endpoint's
// handler, which answers on that stream.
//
// Every rejected request is counted in kvmock_dynamo_request_plane_errors_total{reason}.
// When the payload names a response stream, the rejection is an error prologue there
// (that is what fails the request in Dynamo's frontend; it ignores the ACK's text);
// otherwise the intake is told the request cannot be answered, so it can close the
// connection or reply with the error.
//
// Threading: register/unregister from the owner's thread, dispatch() from any thread
// (the TCP connections' strands, NATS callback threads).
#pragma once

#include <boost/asio/io_context.hpp>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "transport/dynamo/call_home_stream.h"

namespace kvmock {

class MetricsRegistry;

// Runs on the intake's thread and must not block: it queues the work and answers on
// `stream` later (the stream's methods are thread-safe).
using DynamoEndpointHandler =
    std::function<void(std::string body, const std::shared_ptr<CallHomeStream>& stream)>;

enum class DispatchOutcome {
  kAccepted,            // the handler has it
  kRejectedOnStream,    // refused with an error prologue on its response stream
  kRejectedUnanswered,  // refused, and there is no response stream to say so on
};

struct DispatchResult {
  DispatchOutcome outcome = DispatchOutcome::kAccepted;
  std::string error;  // why it was refused
};

class DynamoRequestDispatcher {
 public:
  // `metrics` must outlive the dispatcher and every stream it opened.
  DynamoRequestDispatcher(boost::asio::io_context& io, CallHomeSettings call_home,
                          MetricsRegistry& metrics);

  // "{instance_id:x}/{endpoint}", the path Dynamo's frontend sends.
  static std::string endpoint_path(uint64_t instance_id, std::string_view endpoint);

  // Replaces an earlier handler of the same endpoint.
  void register_endpoint(uint64_t instance_id, std::string endpoint, DynamoEndpointHandler handler);
  void unregister_instance(uint64_t instance_id);
  // The endpoint names registered for `instance_id`, sorted.
  std::vector<std::string> endpoints_of(uint64_t instance_id) const;

  // `plane` labels kvmock_dynamo_requests_total ("tcp", "nats").
  DispatchResult dispatch(std::string_view plane, std::string_view path, std::string_view payload);
  // A request the intake refuses itself (its frame's path or headers are bad): answered with
  // an error prologue when the payload names a response stream.
  DispatchResult reject(std::string_view reason, const std::string& message,
                        std::string_view payload);

  // Counts one kvmock_dynamo_request_plane_errors_total{reason}; `reason` names a literal.
  void count_error(std::string_view reason);
  MetricsRegistry& metrics() { return metrics_; }

 private:
  struct Decoded;
  // Decodes the payload down to its control header; counts and fills `result` on failure.
  bool decode(std::string_view payload, Decoded& decoded, DispatchResult& result,
              bool count_errors);
  DispatchResult refuse_on_stream(dynamo::CallHomeInfo info, std::string_view reason,
                                  const std::string& message);

  boost::asio::io_context& io_;
  const CallHomeSettings call_home_;
  MetricsRegistry& metrics_;
  mutable std::mutex mutex_;
  std::map<std::string, DynamoEndpointHandler> handlers_;  // by path
  std::map<uint64_t, std::vector<std::string>> endpoints_;
};

}  // namespace kvmock
