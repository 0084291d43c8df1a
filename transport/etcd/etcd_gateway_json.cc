#include "transport/etcd/etcd_gateway_json.h"

#include <array>
#include <charconv>
#include <nlohmann/json.hpp>
#include <optional>

namespace kvmock::etcd {
namespace {

using nlohmann::json;

constexpr std::string_view kBase64Alphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

// -1 for bytes outside both the standard and the URL-safe alphabet.
constexpr std::array<int8_t, 256> make_base64_table() {
  std::array<int8_t, 256> table{};
  for (auto& entry : table) entry = -1;
  for (size_t i = 0; i < kBase64Alphabet.size(); ++i) {
    table[static_cast<uint8_t>(kBase64Alphabet[i])] = static_cast<int8_t>(i);
  }
  table[static_cast<uint8_t>('-')] = 62;
  table[static_cast<uint8_t>('_')] = 63;
  return table;
}
constexpr std::array<int8_t, 256> kBase64Table = make_base64_table();

std::string int64_text(int64_t value) { return std::to_string(value); }

// An int64 field as the gateway writes it (a string of digits) or as a client may (a number).
std::optional<int64_t> int64_field(const json& object, const char* name) {
  const auto it = object.find(name);
  if (it == object.end() || it->is_null()) return int64_t{0};  // proto3 omits zero values
  if (it->is_number_integer()) {
    if (it->is_number_unsigned() && it->get<uint64_t>() > uint64_t{INT64_MAX}) return std::nullopt;
    return it->get<int64_t>();
  }
  if (!it->is_string()) return std::nullopt;
  const std::string& text = it->get_ref<const std::string&>();
  int64_t value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size() || text.empty()) return std::nullopt;
  return value;
}

std::optional<std::string> bytes_field(const json& object, const char* name) {
  const auto it = object.find(name);
  if (it == object.end() || it->is_null()) return std::string();
  if (!it->is_string()) return std::nullopt;
  auto decoded = base64_decode(it->get_ref<const std::string&>());
  if (!decoded.ok()) return std::nullopt;
  return std::move(decoded).value();
}

Error bad_response(std::string what) {
  return make_error("bad_response", "etcd gateway response: " + std::move(what));
}

// Parses a unary response body into a JSON object, turning the gateway's error object into
// an Error that carries etcd's message.
Result<json> parse_object(std::string_view body) {
  json parsed = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded()) {
    return make_error("bad_json",
                      "etcd gateway response is not JSON: " + std::string(body.substr(0, 200)));
  }
  if (!parsed.is_object()) return bad_response("not a JSON object");
  const GatewayError error = parse_gateway_error(body);
  if (error.grpc_code != 0) {
    return make_error("gateway_error", "etcd error (gRPC code " + std::to_string(error.grpc_code) +
                                           "): " + error.message);
  }
  return parsed;
}

std::string dump(const json& value) {
  return value.dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace

std::string base64_encode(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    const uint32_t triple = (static_cast<uint8_t>(bytes[i]) << 16) |
                            (static_cast<uint8_t>(bytes[i + 1]) << 8) |
                            static_cast<uint8_t>(bytes[i + 2]);
    out += kBase64Alphabet[(triple >> 18) & 63];
    out += kBase64Alphabet[(triple >> 12) & 63];
    out += kBase64Alphabet[(triple >> 6) & 63];
    out += kBase64Alphabet[triple & 63];
  }
  const size_t rest = bytes.size() - i;
  if (rest > 0) {
    uint32_t triple = static_cast<uint8_t>(bytes[i]) << 16;
    if (rest == 2) triple |= static_cast<uint8_t>(bytes[i + 1]) << 8;
    out += kBase64Alphabet[(triple >> 18) & 63];
    out += kBase64Alphabet[(triple >> 12) & 63];
    out += rest == 2 ? kBase64Alphabet[(triple >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

Result<std::string> base64_decode(std::string_view text) {
  while (!text.empty() && text.back() == '=') text.remove_suffix(1);
  if (text.size() % 4 == 1) {
    return make_error("bad_base64",
                      "base64 text of impossible length " + std::to_string(text.size()));
  }
  std::string out;
  out.reserve(text.size() * 3 / 4);
  uint32_t bits = 0;
  int bit_count = 0;
  for (const char c : text) {
    const int8_t sextet = kBase64Table[static_cast<uint8_t>(c)];
    if (sextet < 0) return make_error("bad_base64", "not a base64 character in etcd bytes");
    bits = (bits << 6) | static_cast<uint32_t>(sextet);
    bit_count += 6;
    if (bit_count >= 8) {
      bit_count -= 8;
      out += static_cast<char>((bits >> bit_count) & 0xff);
    }
  }
  return out;
}

std::string prefix_range_end(std::string_view prefix) {
  std::string end(prefix);
  while (!end.empty()) {
    auto& last = reinterpret_cast<unsigned char&>(end.back());
    if (last < 0xff) {
      ++last;
      return end;
    }
    end.pop_back();
  }
  return std::string(1, '\0');
}

std::string lease_grant_request(std::chrono::seconds ttl, int64_t requested_id) {
  json body = {{"TTL", int64_text(ttl.count())}};
  if (requested_id != 0) body["ID"] = int64_text(requested_id);
  return dump(body);
}

std::string lease_id_request(int64_t id) { return dump(json{{"ID", int64_text(id)}}); }

std::string create_if_absent_request(std::string_view key, std::string_view value, int64_t lease) {
  const std::string encoded_key = base64_encode(key);
  json put = {{"key", encoded_key}, {"value", base64_encode(value)}};
  if (lease != 0) put["lease"] = int64_text(lease);
  const json body = {
      {"compare",
       json::array(
           {{{"key", encoded_key}, {"target", "VERSION"}, {"result", "EQUAL"}, {"version", "0"}}})},
      {"success", json::array({{{"request_put", put}}})},
      {"failure", json::array({{{"request_range", {{"key", encoded_key}}}}})},
  };
  return dump(body);
}

std::string range_request(std::string_view key, std::string_view range_end) {
  json body = {{"key", base64_encode(key)}};
  if (!range_end.empty()) body["range_end"] = base64_encode(range_end);
  return dump(body);
}

std::string delete_range_request(std::string_view key, std::string_view range_end) {
  return range_request(key, range_end);
}

GatewayError parse_gateway_error(std::string_view body) {
  const json parsed = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded() || !parsed.is_object()) return {};
  auto code_of = [](const json& object, const char* name) {
    const auto it = object.find(name);
    if (it == object.end() || !it->is_number_integer()) return 0;
    const int64_t code = it->get<int64_t>();
    return code > 0 && code < 1000 ? static_cast<int>(code) : 0;
  };
  auto message_of = [](const json& object) {
    for (const char* name : {"message", "error"}) {
      const auto it = object.find(name);
      if (it != object.end() && it->is_string()) return it->get<std::string>();
    }
    return std::string("(no message)");
  };
  const auto error = parsed.find("error");
  if (error != parsed.end() && error->is_object()) {  // streaming calls
    return {code_of(*error, "grpc_code"), message_of(*error)};
  }
  // Unary calls: a success body never has a top-level integer "code".
  const int code = code_of(parsed, "code");
  if (code != 0) return {code, message_of(parsed)};
  // 3.4's unary form names the error in a string; a success body never has a non-empty one.
  if (error != parsed.end() && error->is_string() &&
      !error->get_ref<const std::string&>().empty()) {
    return {2 /* UNKNOWN */, message_of(parsed)};
  }
  return {};
}

Result<LeaseGrant> parse_lease_grant_response(std::string_view body) {
  auto parsed = parse_object(body);
  if (!parsed.ok()) return parsed.error();
  const auto id = int64_field(*parsed, "ID");
  const auto ttl = int64_field(*parsed, "TTL");
  if (!id || !ttl) return bad_response("lease grant without an integer ID and TTL");
  if (*id == 0) {
    const auto error = parsed->find("error");
    if (error != parsed->end() && error->is_string() && !error->get<std::string>().empty()) {
      return make_error("gateway_error", "etcd refused the lease: " + error->get<std::string>());
    }
    return bad_response("lease grant with lease id 0");
  }
  return LeaseGrant{*id, *ttl};
}

Result<std::vector<LeaseGrant>> parse_keep_alive_response(std::string_view body) {
  std::vector<LeaseGrant> renewed;
  size_t start = 0;
  while (start < body.size()) {
    size_t end = body.find('\n', start);
    if (end == std::string_view::npos) end = body.size();
    const std::string_view line = body.substr(start, end - start);
    start = end + 1;
    if (line.find_first_not_of(" \t\r") == std::string_view::npos) continue;
    auto object = parse_object(line);
    if (!object.ok()) return object.error();
    const auto result = object->find("result");
    if (result == object->end() || !result->is_object()) {
      return bad_response("keep-alive line without a result object");
    }
    const auto id = int64_field(*result, "ID");
    const auto ttl = int64_field(*result, "TTL");
    if (!id || !ttl) return bad_response("keep-alive result without an integer ID and TTL");
    renewed.push_back(LeaseGrant{*id, *ttl});
  }
  return renewed;
}

Result<bool> parse_txn_succeeded(std::string_view body) {
  auto parsed = parse_object(body);
  if (!parsed.ok()) return parsed.error();
  const auto it = parsed->find("succeeded");
  if (it == parsed->end() || it->is_null()) return false;  // proto3 omits false
  if (!it->is_boolean()) return bad_response("txn 'succeeded' is not a boolean");
  return it->get<bool>();
}

Result<std::vector<KeyValue>> parse_range_response(std::string_view body) {
  auto parsed = parse_object(body);
  if (!parsed.ok()) return parsed.error();
  std::vector<KeyValue> out;
  const auto kvs = parsed->find("kvs");
  if (kvs == parsed->end() || kvs->is_null()) return out;
  if (!kvs->is_array()) return bad_response("range 'kvs' is not an array");
  for (const json& entry : *kvs) {
    if (!entry.is_object()) return bad_response("range entry is not an object");
    auto key = bytes_field(entry, "key");
    auto value = bytes_field(entry, "value");
    const auto lease = int64_field(entry, "lease");
    const auto version = int64_field(entry, "version");
    if (!key || !value || !lease || !version) return bad_response("malformed range entry");
    out.push_back(KeyValue{std::move(*key), std::move(*value), *lease, *version});
  }
  return out;
}

Result<int64_t> parse_delete_range_response(std::string_view body) {
  auto parsed = parse_object(body);
  if (!parsed.ok()) return parsed.error();
  const auto deleted = int64_field(*parsed, "deleted");
  if (!deleted) return bad_response("deleterange 'deleted' is not an integer");
  return *deleted;
}

Result<bool> parse_header_only_response(std::string_view body) {
  auto parsed = parse_object(body);
  if (!parsed.ok()) return parsed.error();
  return true;
}

}  // namespace kvmock::etcd
