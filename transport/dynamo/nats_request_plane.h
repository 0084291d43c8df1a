// Dynamo's NATS request plane, the worker side (docs/wire-formats.md#nats-request-plane):
// each (instance, endpoint) is served on the subject `{ns}_{comp}.{endpoint}-{id:x}`. A
// request's payload is the same two-part message as on the TCP plane; the worker replies
// with an empty payload (the ACK) and answers over the call-home TCP stream, exactly as
// for TCP. The endpoint logic is the dispatcher's, shared with DynamoTcpRequestServer.
//
// A request that names no response stream (undecodable payload or control header) gets
// the error text as its reply instead of the empty ACK.
//
// Threading: serve_instance()/stop() from the owner's thread; requests arrive on nats.c's
// threads and go straight to the dispatcher, which does not block.
#pragma once

#include <nats/nats.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <vector>

#include "transport/dynamo/request_dispatcher.h"
#include "transport/nats/nats_client.h"

namespace kvmock {

class DynamoNatsRequestPlane {
 public:
  // `client` and `dispatcher` must outlive the plane.
  DynamoNatsRequestPlane(NatsClient& client, DynamoRequestDispatcher& dispatcher, std::string ns,
                         std::string component);
  ~DynamoNatsRequestPlane();
  DynamoNatsRequestPlane(const DynamoNatsRequestPlane&) = delete;
  DynamoNatsRequestPlane& operator=(const DynamoNatsRequestPlane&) = delete;

  // `{ns}_{comp}.{endpoint}-{id:x}`, the subject Dynamo advertises as "nats_tcp".
  static std::string subject(std::string_view ns, std::string_view component,
                             std::string_view endpoint, uint64_t instance_id);

  // Subscribes every endpoint registered for `instance_id` in the dispatcher.
  Result<bool> serve_instance(uint64_t instance_id);
  // Unsubscribes every endpoint of `instance_id` (a crashed worker: requesters get "no
  // responders"). Its routes stay until stop(), so a request being handled finishes.
  void stop_instance(uint64_t instance_id);
  // Unsubscribes everything and waits for a request in progress. Idempotent.
  void stop();

 private:
  struct Route {
    DynamoNatsRequestPlane* plane;
    std::string path;
    natsSubscription* subscription = nullptr;
  };
  static void on_message(natsConnection*, natsSubscription*, natsMsg* msg, void* route);
  void handle(const Route& route, natsMsg* msg);

  NatsClient& client_;
  DynamoRequestDispatcher& dispatcher_;
  const std::string ns_;
  const std::string component_;
  std::mutex routes_mutex_;
  std::vector<std::unique_ptr<Route>> routes_;
  std::shared_mutex handling_;  // shared by each request, exclusive by stop()
  bool stopped_ = false;        // guarded by handling_
};

}  // namespace kvmock
