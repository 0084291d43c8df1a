#include "config/endpoint.h"

#include <algorithm>

#include "config/scalar_text.h"

namespace kvmock {

Result<HostPort> parse_host_port(std::string_view text) {
  const size_t colon = text.rfind(':');
  if (colon == std::string_view::npos) {
    return make_error("bad_address", "must be host:port, got " + std::string(text));
  }
  std::string_view host = text.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  } else if (host.find(':') != std::string_view::npos) {
    return make_error("bad_address",
                      "must be host:port (IPv6 hosts in brackets), got " + std::string(text));
  }
  if (host.empty()) {
    return make_error("bad_address", "must be host:port, got " + std::string(text));
  }
  const ParsedUnsigned port = parse_unsigned(text.substr(colon + 1));
  if (port.status != UnsignedParse::kOk || port.value > 65535 ||
      text.substr(colon + 1).find_first_of("+-") != std::string_view::npos) {
    return make_error("bad_address", "port must be between 0 and 65535, got " + std::string(text));
  }
  return HostPort{std::string(host), static_cast<uint16_t>(port.value)};
}

std::string check_listen_address(std::string_view text) {
  if (text.empty()) return {};
  auto parsed = parse_host_port(text);
  return parsed.ok() ? std::string() : parsed.error().message;
}

std::string check_zmq_endpoint(std::string_view text) {
  const std::string expected =
      "must be tcp://host:port or ipc://path, got \"" + std::string(text) + "\"";
  if (text.starts_with("ipc://")) return text.size() > 6 ? std::string() : expected;
  if (!text.starts_with("tcp://")) return expected;
  return parse_host_port(text.substr(6)).ok() ? std::string() : expected;
}

std::string check_optional_zmq_endpoint(std::string_view text) {
  return text.empty() ? std::string() : check_zmq_endpoint(text);
}

std::string check_nats_urls(std::string_view text) {
  std::string_view rest = text;
  while (true) {
    const size_t comma = rest.find(',');
    const std::string_view url = rest.substr(0, comma);
    const size_t scheme_end = url.find("://");
    const std::string_view scheme = url.substr(0, scheme_end);
    if (scheme_end == std::string_view::npos || (scheme != "nats" && scheme != "tls") ||
        url.size() == scheme_end + 3 || url.find(' ') != std::string_view::npos) {
      return "must be a comma-separated list of nats://host:port URLs, got \"" + std::string(text) +
             "\"";
    }
    if (comma == std::string_view::npos) return {};
    rest.remove_prefix(comma + 1);
  }
}

std::vector<std::string> split_comma_list(std::string_view text) {
  std::vector<std::string> urls;
  while (!text.empty()) {
    const size_t comma = text.find(',');
    std::string_view url = text.substr(0, comma);
    while (!url.empty() && url.front() == ' ') url.remove_prefix(1);
    while (!url.empty() && url.back() == ' ') url.remove_suffix(1);
    if (!url.empty()) urls.emplace_back(url);
    if (comma == std::string_view::npos) break;
    text.remove_prefix(comma + 1);
  }
  return urls;
}

std::string check_etcd_endpoints(std::string_view text) {
  const std::vector<std::string> urls = split_comma_list(text);
  if (urls.empty()) return "must list at least one http://host:port URL";
  for (const std::string& url : urls) {
    if (url.starts_with("https://")) {
      return "\"" + url + "\": https is not supported (kvmock uses etcd's plain-HTTP JSON gateway)";
    }
    constexpr std::string_view kScheme = "http://";
    std::string_view authority = std::string_view(url);
    if (!authority.starts_with(kScheme)) {
      return "must be a comma-separated list of http://host:port URLs, got \"" + std::string(text) +
             "\"";
    }
    authority.remove_prefix(kScheme.size());
    if (authority.ends_with("/")) authority.remove_suffix(1);
    const size_t bracket = authority.rfind(']');
    const size_t colon = authority.rfind(':');
    const bool has_port =
        colon != std::string_view::npos && (bracket == std::string_view::npos || colon > bracket);
    if (authority.empty() || (has_port && !parse_host_port(authority).ok())) {
      return "\"" + url + "\" is not an http://host:port URL";
    }
  }
  return {};
}

std::string redact_url_userinfo(std::string_view urls) {
  std::string out;
  std::string_view rest = urls;
  while (true) {
    const size_t comma = rest.find(',');
    const std::string_view url = rest.substr(0, comma);
    const size_t scheme_end = url.find("://");
    const size_t authority = scheme_end == std::string_view::npos ? url.size() : scheme_end + 3;
    const size_t authority_end = std::min(url.find_first_of("/?#", authority), url.size());
    const size_t at = url.substr(0, authority_end).rfind('@');
    if (at == std::string_view::npos || at < authority) {
      out += url;
    } else {
      const std::string_view userinfo = url.substr(authority, at - authority);
      const size_t colon = userinfo.find(':');
      out += url.substr(0, authority);
      if (colon != std::string_view::npos) out += userinfo.substr(0, colon + 1);
      out += "***";
      out += url.substr(at);
    }
    if (comma == std::string_view::npos) return out;
    out += ',';
    rest.remove_prefix(comma + 1);
  }
}

std::string check_not_empty(std::string_view text) {
  return text.empty() ? "must not be empty" : std::string();
}

}  // namespace kvmock
