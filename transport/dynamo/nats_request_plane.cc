#include "transport/dynamo/nats_request_plane.h"

#include <cstdio>

#include "transport/log/logger.h"

namespace kvmock {

DynamoNatsRequestPlane::DynamoNatsRequestPlane(NatsClient& client,
                                               DynamoRequestDispatcher& dispatcher, std::string ns,
                                               std::string component)
    : client_(client),
      dispatcher_(dispatcher),
      ns_(std::move(ns)),
      component_(std::move(component)) {}

DynamoNatsRequestPlane::~DynamoNatsRequestPlane() { stop(); }

std::string DynamoNatsRequestPlane::subject(std::string_view ns, std::string_view component,
                                            std::string_view endpoint, uint64_t instance_id) {
  char id[17];
  std::snprintf(id, sizeof(id), "%llx", static_cast<unsigned long long>(instance_id));
  return std::string(ns) + "_" + std::string(component) + "." + std::string(endpoint) + "-" + id;
}

Result<bool> DynamoNatsRequestPlane::serve_instance(uint64_t instance_id) {
  std::lock_guard lock(routes_mutex_);
  for (const std::string& endpoint : dispatcher_.endpoints_of(instance_id)) {
    const std::string path = DynamoRequestDispatcher::endpoint_path(instance_id, endpoint);
    bool served = false;
    for (const auto& route : routes_) served = served || route->path == path;
    if (served) continue;
    auto route = std::make_unique<Route>(Route{this, path, nullptr});
    const std::string name = subject(ns_, component_, endpoint, instance_id);
    const natsStatus s = natsConnection_Subscribe(&route->subscription, client_.connection(),
                                                  name.c_str(), &on_message, route.get());
    if (s != NATS_OK) return nats_error("serving Dynamo requests on " + name, s);
    routes_.push_back(std::move(route));
  }
  return true;
}

void DynamoNatsRequestPlane::stop_instance(uint64_t instance_id) {
  const std::string prefix = DynamoRequestDispatcher::endpoint_path(instance_id, "");
  std::lock_guard lock(routes_mutex_);
  for (auto& route : routes_) {
    if (route->path.starts_with(prefix)) natsSubscription_Unsubscribe(route->subscription);
  }
}

void DynamoNatsRequestPlane::stop() {
  {
    std::lock_guard lock(routes_mutex_);
    for (auto& route : routes_) {
      natsSubscription_Unsubscribe(route->subscription);
    }
  }
  {
    std::unique_lock wait_for_requests(handling_);
    stopped_ = true;
  }
  // Destroyed only now: a callback in flight may still read its route until it took the
  // shared lock and saw stopped_.
  std::lock_guard lock(routes_mutex_);
  for (auto& route : routes_) natsSubscription_Destroy(route->subscription);
  routes_.clear();
}

void DynamoNatsRequestPlane::on_message(natsConnection*, natsSubscription*, natsMsg* msg,
                                        void* route) {
  const auto* r = static_cast<const Route*>(route);
  r->plane->handle(*r, msg);
  natsMsg_Destroy(msg);
}

void DynamoNatsRequestPlane::handle(const Route& route, natsMsg* msg) {
  std::shared_lock running(handling_);
  if (stopped_) return;
  const std::string_view payload(natsMsg_GetData(msg),
                                 static_cast<size_t>(natsMsg_GetDataLength(msg)));
  const DispatchResult result = dispatcher_.dispatch("nats", route.path, payload);
  const char* reply_to = natsMsg_GetReply(msg);
  if (reply_to == nullptr || *reply_to == '\0') return;
  // The ACK is empty; only a request with no response stream to refuse it on says why.
  const std::string reply =
      result.outcome == DispatchOutcome::kRejectedUnanswered ? result.error : std::string();
  auto sent = client_.publish_reply(
      reply_to, std::span(reinterpret_cast<const uint8_t*>(reply.data()), reply.size()));
  if (!sent) {
    Logger::instance().log_limited(LogSeverity::kWarn, "dynamo-nats-ack", "dynamo",
                                   "Dynamo request ACK not sent: " + sent.error().message);
  }
}

}  // namespace kvmock
