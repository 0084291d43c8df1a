// The JSON side of etcd's gRPC gateway (docs/dynamo-discovery-backends.md#the-json-gateway-calls):
// request bodies and response parsers for the few calls a discovery backend makes. Pure
// functions of bytes, so the parsers are fuzzed (tests/fuzz/etcd_gateway_json_fuzz.cc) and
// tested without a server. The gateway writes bytes fields (keys, values) in base64 and
// int64 fields (lease ids, TTLs, versions) as JSON strings; the parsers accept strings and
// numbers for those, and the builders write strings, as the gateway does.
#pragma once

#include <chrono>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/common/result.h"

namespace kvmock::etcd {

// Standard base64 (RFC 4648, with padding), as protobuf's JSON mapping writes bytes.
std::string base64_encode(std::string_view bytes);
// Accepts padded and unpadded standard base64 and the URL-safe alphabet (protobuf's JSON
// parser accepts both); anything else is an Error with reason "bad_base64".
Result<std::string> base64_decode(std::string_view text);

// The end of the key range that covers every key starting with `prefix`: the prefix with
// its last byte below 0xff incremented and what follows dropped; "\0" (the whole keyspace)
// for an empty prefix or one of only 0xff bytes.
std::string prefix_range_end(std::string_view prefix);

struct KeyValue {
  std::string key;
  std::string value;
  int64_t lease = 0;  // 0 when the key has no lease
  int64_t version = 0;

  bool operator==(const KeyValue&) const = default;
};

// A lease and the TTL etcd gave it (on grant, or on renewal).
struct LeaseGrant {
  int64_t id = 0;
  int64_t ttl_seconds = 0;

  bool operator==(const LeaseGrant&) const = default;
};

// Bodies of the POSTs (compact JSON).
std::string lease_grant_request(std::chrono::seconds ttl, int64_t requested_id);
std::string lease_id_request(int64_t id);  // /v3/lease/revoke; one object of a keep-alive stream
// /v3/kv/txn: if version(key) == 0 put key=value attached to `lease`, else range the key.
std::string create_if_absent_request(std::string_view key, std::string_view value, int64_t lease);
std::string range_request(std::string_view key, std::string_view range_end);
std::string delete_range_request(std::string_view key, std::string_view range_end);

// The gateway's error body when a call failed, for both shapes it writes: the unary form
// {"error": "...", "code": 5, "message": "..."} (3.4), {"code": 5, "message": "..."} (3.5+),
// and the streaming form {"error": {"grpc_code": 5, "message": "...", ...}}. Returns the
// gRPC status code and message, or nullopt-like {0, ""} when `body` is not an error.
struct GatewayError {
  int grpc_code = 0;  // 0: the body is not an error object
  std::string message;
};
GatewayError parse_gateway_error(std::string_view body);

// gRPC status code NOT_FOUND, which etcd uses for "requested lease not found".
inline constexpr int kGrpcNotFound = 5;
// gRPC status code FAILED_PRECONDITION, which etcd uses for "lease already exists".
inline constexpr int kGrpcFailedPrecondition = 9;

// Response parsers. Each fails with reason "bad_json" for text that is not JSON,
// "bad_response" for JSON of the wrong shape, and "gateway_error" when the body is the
// gateway's error object (message included).
Result<LeaseGrant> parse_lease_grant_response(std::string_view body);
// A keep-alive POST's body: one {"result": {...}} object per line, each naming the lease it
// renewed. Returns each lease's id and TTL (0 when etcd left it out: the lease is gone).
// The gateway may end the stream before answering every request object sent
// (docs/dynamo-discovery-backends.md#the-json-gateway-calls), so this can hold fewer.
Result<std::vector<LeaseGrant>> parse_keep_alive_response(std::string_view body);
// true when the put branch ran (the key was created).
Result<bool> parse_txn_succeeded(std::string_view body);
Result<std::vector<KeyValue>> parse_range_response(std::string_view body);
// The number of keys deleted.
Result<int64_t> parse_delete_range_response(std::string_view body);
// Any success body of a unary call: accepts every JSON object that is not an error.
Result<bool> parse_header_only_response(std::string_view body);

}  // namespace kvmock::etcd
