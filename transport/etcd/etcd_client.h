// A small synchronous client for etcd v3's JSON gateway
// (docs/dynamo-discovery-backends.md#the-json-gateway-calls): leases, create-if-absent puts, prefix
// ranges and deletes over plain HTTP/1.1, which is all a discovery backend needs, without a gRPC
// dependency.
//
// Every call blocks for at most `timeout` per endpoint it tries. A call that cannot reach an
// endpoint (connect, send, receive or timeout) moves on to the next one, and the endpoint
// that answered is tried first next time; an answer from etcd, even an error, is final.
// Not thread-safe: one thread (a discovery backend's tick thread) uses a client.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/common/result.h"
#include "transport/etcd/etcd_gateway_json.h"

namespace kvmock::etcd {

struct EtcdClientOptions {
  // "http://host:port" (the port defaults to etcd's 2379). Only http:// is supported: the
  // client has no TLS, so an https:// endpoint is a configuration error.
  std::vector<std::string> endpoints;
  // The bound on one HTTP exchange with one endpoint, connect included.
  std::chrono::milliseconds timeout{2000};
};

// Error reasons a call can return besides the parsers' ("bad_json", "bad_response",
// "gateway_error"): "unreachable" when no endpoint answered (the message names each
// endpoint's failure), "http_error" for an HTTP status other than 200, "not_found" when etcd
// answered NOT_FOUND (a lease that does not exist), "failed_precondition" when it answered
// FAILED_PRECONDITION (a lease id that is taken), "config" from create().
class EtcdClient {
 public:
  // Checks and keeps the endpoints; connects lazily, on the first call.
  static Result<std::unique_ptr<EtcdClient>> create(const EtcdClientOptions& options);
  virtual ~EtcdClient();
  EtcdClient(const EtcdClient&) = delete;
  EtcdClient& operator=(const EtcdClient&) = delete;

  // POST /v3/lease/grant. `requested_id` 0 lets etcd choose the id; any other value asks
  // for exactly that id (etcd refuses it while a lease with that id exists).
  virtual Result<LeaseGrant> grant_lease(std::chrono::seconds ttl, int64_t requested_id = 0);
  // POST /v3/lease/keepalive with one request object per id in one HTTP request, and again
  // for the ids etcd left unanswered (the gateway cuts long streams short). Returns each
  // lease's renewed TTL in seconds, in the order of `ids`; a TTL ≤ 0 means etcd no longer
  // has that lease.
  virtual Result<std::vector<int64_t>> keep_alive(std::span<const int64_t> ids);
  // POST /v3/lease/revoke: etcd deletes the lease and every key attached to it. A lease
  // that does not exist gives reason "not_found".
  virtual Result<bool> revoke_lease(int64_t id);
  // POST /v3/kv/txn: puts key=value attached to `lease` (0: none) only when the key does
  // not exist. Returns true when it was created, false when it already existed (and was
  // left as it was).
  virtual Result<bool> create_if_absent(std::string_view key, std::string_view value,
                                        int64_t lease);
  // POST /v3/kv/range over every key starting with `prefix`, in key order.
  virtual Result<std::vector<KeyValue>> range_prefix(std::string_view prefix);
  // POST /v3/kv/deleterange over every key starting with `prefix`; returns how many were
  // deleted.
  virtual Result<int64_t> delete_prefix(std::string_view prefix);

 protected:
  EtcdClient();  // for test doubles: every call must be overridden

 private:
  struct Transport;
  explicit EtcdClient(std::unique_ptr<Transport> transport);
  // POSTs `body` to `path` and returns the response body of an HTTP 200.
  Result<std::string> post(std::string_view path, const std::string& body);

  std::unique_ptr<Transport> transport_;
};

}  // namespace kvmock::etcd
