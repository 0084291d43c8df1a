// Address syntax used by config keys: "host:port" listen addresses, ZMQ endpoints and
// NATS server lists. The validators return an empty string when `text` is acceptable,
// else the message tail for "KEY: <message>".
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/common/result.h"

namespace kvmock {

struct HostPort {
  std::string host;  // without brackets for IPv6 ("::1")
  uint16_t port = 0;
};

// "host:port" or "[v6addr]:port"; host non-empty, port 0..65535.
Result<HostPort> parse_host_port(std::string_view text);

// Empty (feature off) or a valid "host:port".
std::string check_listen_address(std::string_view text);

// "tcp://host:port" or "ipc://path".
std::string check_zmq_endpoint(std::string_view text);

// Empty, or a valid ZMQ endpoint.
std::string check_optional_zmq_endpoint(std::string_view text);

// Comma-separated "nats://..." or "tls://..." URLs, each with a host.
std::string check_nats_urls(std::string_view text);

// Comma-separated "http://host[:port]" URLs of etcd's JSON gateway. https is refused with
// its own message: the gateway client speaks plain HTTP (docs/dynamo-discovery.md).
std::string check_etcd_endpoints(std::string_view text);

// The items of a comma-separated list (URLs, names), surrounding spaces trimmed, empty items
// dropped.
std::vector<std::string> split_comma_list(std::string_view text);

// `urls` (one URL or a comma-separated list) with the secret part of each URL's userinfo
// replaced by "***": "nats://user:pass@h:4222" -> "nats://user:***@h:4222", and a token
// "nats://tok@h" -> "nats://***@h". Text without "scheme://...@" comes back unchanged.
std::string redact_url_userinfo(std::string_view urls);

// Any non-empty text.
std::string check_not_empty(std::string_view text);

}  // namespace kvmock
