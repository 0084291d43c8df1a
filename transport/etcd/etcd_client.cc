#include "transport/etcd/etcd_client.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <charconv>
#include <map>
#include <optional>

namespace kvmock::etcd {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;

constexpr std::string_view kHttpScheme = "http://";
constexpr std::string_view kDefaultPort = "2379";
// A gateway answer larger than this is not one of ours (ranges of one worker's records are
// a few KB); the bound keeps a confused server from filling memory.
constexpr uint64_t kMaxResponseBytes = uint64_t{64} << 20;

struct Endpoint {
  std::string url;  // as configured, for messages
  std::string host;
  std::string port;
};

Result<Endpoint> parse_endpoint(const std::string& url) {
  std::string_view rest(url);
  if (rest.starts_with("https://")) {
    return make_error("config", "etcd endpoint '" + url +
                                    "': https is not supported (kvmock's etcd client speaks "
                                    "plain HTTP to the JSON gateway); use http://host:port");
  }
  if (!rest.starts_with(kHttpScheme)) {
    return make_error("config", "etcd endpoint '" + url + "' must look like http://host:port");
  }
  rest.remove_prefix(kHttpScheme.size());
  if (rest.ends_with('/')) rest.remove_suffix(1);
  if (rest.empty() || rest.find('/') != std::string_view::npos) {
    return make_error("config", "etcd endpoint '" + url + "' must look like http://host:port");
  }
  Endpoint endpoint{url, std::string(rest), std::string(kDefaultPort)};
  const size_t colon = rest.rfind(':');
  const size_t bracket = rest.rfind(']');  // [::1]:2379
  if (colon != std::string_view::npos && (bracket == std::string_view::npos || colon > bracket)) {
    const std::string_view port = rest.substr(colon + 1);
    int number = 0;
    const auto [end, error] = std::from_chars(port.data(), port.data() + port.size(), number);
    if (error != std::errc() || end != port.data() + port.size() || number <= 0 || number > 65535) {
      return make_error("config", "etcd endpoint '" + url + "' has a bad port");
    }
    endpoint.host = std::string(rest.substr(0, colon));
    endpoint.port = std::string(port);
  }
  if (endpoint.host.size() >= 2 && endpoint.host.front() == '[' && endpoint.host.back() == ']') {
    endpoint.host = endpoint.host.substr(1, endpoint.host.size() - 2);
  }
  if (endpoint.host.empty()) {
    return make_error("config", "etcd endpoint '" + url + "' has no host");
  }
  return endpoint;
}

struct HttpAnswer {
  unsigned status = 0;
  std::string body;
};

}  // namespace

// One keep-alive HTTP connection at a time, to the endpoint that answered last.
struct EtcdClient::Transport {
  std::vector<Endpoint> endpoints;
  std::chrono::milliseconds timeout;
  size_t current = 0;  // the endpoint tried first
  asio::io_context io;
  std::optional<beast::tcp_stream> stream;  // connected to endpoints[current], or empty

  void disconnect() {
    if (!stream) return;
    beast::error_code ignored;
    stream->socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream->socket().close(ignored);
    stream.reset();
  }

  // Runs the io_context until the pending operation completes; every operation carries its
  // own deadline (the stream's expiry, or the resolver's cancel below), so this ends in time.
  void run_pending() {
    io.restart();
    io.run();
  }

  beast::error_code connect(const Endpoint& endpoint,
                            std::chrono::steady_clock::time_point deadline) {
    beast::error_code result = asio::error::would_block;
    tcp::resolver resolver(io);
    tcp::resolver::results_type addresses;
    resolver.async_resolve(endpoint.host, endpoint.port,
                           [&](beast::error_code ec, tcp::resolver::results_type found) {
                             result = ec;
                             addresses = std::move(found);
                           });
    io.restart();
    io.run_until(deadline);
    if (result == asio::error::would_block) {
      resolver.cancel();
      run_pending();
      return asio::error::timed_out;
    }
    if (result) return result;
    stream.emplace(io);
    stream->expires_at(deadline);
    stream->async_connect(addresses,
                          [&](beast::error_code ec, const tcp::endpoint&) { result = ec; });
    run_pending();
    if (result) disconnect();
    return result;
  }

  // One HTTP exchange with the connected endpoint.
  beast::error_code exchange(const Endpoint& endpoint, std::string_view path,
                             const std::string& body,
                             std::chrono::steady_clock::time_point deadline, HttpAnswer& answer) {
    http::request<http::string_body> request{http::verb::post, std::string(path), 11};
    request.set(http::field::host, endpoint.host + ":" + endpoint.port);
    request.set(http::field::content_type, "application/json");
    request.set(http::field::user_agent, "kvmock-etcd-client");
    request.keep_alive(true);
    request.body() = body;
    request.prepare_payload();

    beast::error_code result;
    stream->expires_at(deadline);
    http::async_write(*stream, request, [&](beast::error_code ec, size_t) { result = ec; });
    run_pending();
    if (result) return result;

    beast::flat_buffer buffer;
    http::response_parser<http::string_body> parser;
    parser.body_limit(kMaxResponseBytes);
    http::async_read(*stream, buffer, parser, [&](beast::error_code ec, size_t) { result = ec; });
    run_pending();
    if (result) return result;
    answer.status = parser.get().result_int();
    answer.body = std::move(parser.get().body());
    if (!parser.get().keep_alive()) disconnect();
    return {};
  }

  // Tries each endpoint once, starting with the current one; returns the first answer.
  Result<HttpAnswer> post(std::string_view path, const std::string& body) {
    std::string failures;
    for (size_t attempt = 0; attempt < endpoints.size(); ++attempt) {
      const Endpoint& endpoint = endpoints[current];
      const auto deadline = std::chrono::steady_clock::now() + timeout;
      // A kept-alive connection the server has closed in the meantime fails at once; one
      // fresh connection to the same endpoint tells that apart from a dead endpoint.
      const bool reused = stream.has_value();
      beast::error_code ec;
      for (int connection = 0; connection < (reused ? 2 : 1); ++connection) {
        if (!stream) {
          ec = connect(endpoint, deadline);
          if (ec) break;
        }
        HttpAnswer answer;
        ec = exchange(endpoint, path, body, deadline, answer);
        if (!ec) return answer;
        disconnect();
        if (ec == beast::error::timeout) break;  // the deadline is spent
      }
      if (!failures.empty()) failures += "; ";
      failures += endpoint.url + ": " +
                  (ec == beast::error::timeout || ec == asio::error::timed_out
                       ? "no answer within " + std::to_string(timeout.count()) + " ms"
                       : ec.message());
      current = (current + 1) % endpoints.size();
    }
    return make_error("unreachable", "no etcd endpoint answered POST " + std::string(path) + " (" +
                                         failures + ")");
  }
};

Result<std::unique_ptr<EtcdClient>> EtcdClient::create(const EtcdClientOptions& options) {
  if (options.endpoints.empty()) return make_error("config", "no etcd endpoint given");
  if (options.timeout.count() <= 0) {
    return make_error("config", "the etcd call timeout must be positive");
  }
  auto transport = std::make_unique<Transport>();
  transport->timeout = options.timeout;
  for (const std::string& url : options.endpoints) {
    auto endpoint = parse_endpoint(url);
    if (!endpoint.ok()) return endpoint.error();
    transport->endpoints.push_back(std::move(endpoint).value());
  }
  return std::unique_ptr<EtcdClient>(new EtcdClient(std::move(transport)));
}

EtcdClient::EtcdClient() = default;

EtcdClient::EtcdClient(std::unique_ptr<Transport> transport) : transport_(std::move(transport)) {}

EtcdClient::~EtcdClient() {
  if (transport_) transport_->disconnect();
}

Result<std::string> EtcdClient::post(std::string_view path, const std::string& body) {
  auto answer = transport_->post(path, body);
  if (!answer.ok()) return answer.error();
  if (answer->status == 200) return std::move(answer->body);
  const GatewayError error = parse_gateway_error(answer->body);
  const std::string where = "etcd gateway " + transport_->endpoints[transport_->current].url +
                            std::string(path) + " answered HTTP " + std::to_string(answer->status);
  if (error.grpc_code == kGrpcNotFound) {
    return make_error("not_found", where + ": " + error.message);
  }
  if (error.grpc_code == kGrpcFailedPrecondition) {
    return make_error("failed_precondition", where + ": " + error.message);
  }
  if (error.grpc_code != 0) {
    return make_error("gateway_error", where + ": etcd error (gRPC code " +
                                           std::to_string(error.grpc_code) + "): " + error.message);
  }
  return make_error("http_error", where + ": " + answer->body.substr(0, 200));
}

Result<LeaseGrant> EtcdClient::grant_lease(std::chrono::seconds ttl, int64_t requested_id) {
  auto body = post("/v3/lease/grant", lease_grant_request(ttl, requested_id));
  if (!body.ok()) return body.error();
  return parse_lease_grant_response(*body);
}

Result<std::vector<int64_t>> EtcdClient::keep_alive(std::span<const int64_t> ids) {
  // The gateway maps the keep-alive stream onto one POST: each JSON object in the body is
  // one request on the stream. It ends the stream once the request body is read, and etcd
  // 3.4 then drops the answers it has not sent yet, so a long batch comes back short. The
  // answers name their lease: send the unanswered ones again until every lease has one.
  std::map<int64_t, int64_t> ttl_by_id;
  std::vector<int64_t> unanswered(ids.begin(), ids.end());
  while (!unanswered.empty()) {
    std::string stream_body;
    for (const int64_t id : unanswered) stream_body += lease_id_request(id) + "\n";
    auto body = post("/v3/lease/keepalive", stream_body);
    if (!body.ok()) return body.error();
    auto renewed = parse_keep_alive_response(*body);
    if (!renewed.ok()) return renewed.error();
    for (const LeaseGrant& lease : *renewed) ttl_by_id[lease.id] = lease.ttl_seconds;
    const size_t before = unanswered.size();
    std::erase_if(unanswered, [&](int64_t id) { return ttl_by_id.contains(id); });
    if (unanswered.size() == before) {
      return make_error("bad_response",
                        "etcd answered none of " + std::to_string(before) + " lease keep-alives");
    }
  }
  std::vector<int64_t> ttls;
  ttls.reserve(ids.size());
  for (const int64_t id : ids) ttls.push_back(ttl_by_id[id]);
  return ttls;
}

Result<bool> EtcdClient::revoke_lease(int64_t id) {
  auto body = post("/v3/lease/revoke", lease_id_request(id));
  if (!body.ok()) return body.error();
  return parse_header_only_response(*body);
}

Result<bool> EtcdClient::create_if_absent(std::string_view key, std::string_view value,
                                          int64_t lease) {
  auto body = post("/v3/kv/txn", create_if_absent_request(key, value, lease));
  if (!body.ok()) return body.error();
  return parse_txn_succeeded(*body);
}

Result<std::vector<KeyValue>> EtcdClient::range_prefix(std::string_view prefix) {
  auto body = post("/v3/kv/range", range_request(prefix, prefix_range_end(prefix)));
  if (!body.ok()) return body.error();
  return parse_range_response(*body);
}

Result<int64_t> EtcdClient::delete_prefix(std::string_view prefix) {
  auto body = post("/v3/kv/deleterange", delete_range_request(prefix, prefix_range_end(prefix)));
  if (!body.ok()) return body.error();
  return parse_delete_range_response(*body);
}

}  // namespace kvmock::etcd
