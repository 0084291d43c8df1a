#include "core/dynamo/call_home.h"

#include <nlohmann/json.hpp>

#include "core/events/json_writer.h"

namespace kvmock::dynamo {
namespace {

using Json = nlohmann::json;

const Json* string_field(const Json& object, const char* name) {
  const auto it = object.find(name);
  if (it == object.end() || !it->is_string()) return nullptr;
  return &*it;
}

Error bad_control(std::string what) { return make_error("bad_control", std::move(what)); }

}  // namespace

Result<CallHomeInfo> parse_request_control(std::string_view header_json) {
  const Json header = Json::parse(header_json, nullptr, /*allow_exceptions=*/false);
  if (!header.is_object()) return bad_control("request control header is not a JSON object");
  const Json* id = string_field(header, "id");
  if (id == nullptr) return bad_control("request control header has no string 'id'");
  const auto connection = header.find("connection_info");
  if (connection == header.end() || !connection->is_object()) {
    return bad_control("request control header has no 'connection_info' object");
  }
  const Json* transport = string_field(*connection, "transport");
  if (transport == nullptr) return bad_control("connection_info has no string 'transport'");
  if (transport->get_ref<const std::string&>() != "tcp_server") {
    return make_error("unsupported_transport",
                      "response transport '" + transport->get<std::string>() +
                          "' is not supported (only tcp_server, as Dynamo 1.0 writes)");
  }
  const Json* info_text = string_field(*connection, "info");
  if (info_text == nullptr) return bad_control("connection_info has no string 'info'");
  const Json info = Json::parse(info_text->get_ref<const std::string&>(), nullptr, false);
  if (!info.is_object()) return bad_control("connection_info.info is not JSON object text");
  const Json* address = string_field(info, "address");
  const Json* subject = string_field(info, "subject");
  const Json* context = string_field(info, "context");
  if (address == nullptr || subject == nullptr || context == nullptr) {
    return bad_control("connection_info.info needs string 'address', 'subject' and 'context'");
  }
  if (*context != *id) {
    return make_error("context_mismatch", "connection_info.info.context differs from id");
  }
  return CallHomeInfo{id->get<std::string>(), address->get<std::string>(),
                      subject->get<std::string>()};
}

std::string encode_handshake(std::string_view subject) {
  std::string header = "{\"subject\":";
  codec::append_json_string(header, subject);
  header += ",\"stream_type\":\"response\"}";
  return encode_two_part(header, {});
}

std::string encode_prologue(std::optional<std::string_view> error) {
  std::string header = "{\"error\":";
  if (error) {
    codec::append_json_string(header, *error);
  } else {
    header += "null";
  }
  header += '}';
  return encode_two_part(header, {});
}

std::string encode_stream_item(std::string_view item_json) {
  std::string body;
  body.reserve(item_json.size() + 40);
  body += "{\"data\":";
  body += item_json;
  body += ",\"complete_final\":false}";
  return encode_two_part({}, body);
}

std::string encode_complete_final() { return encode_two_part({}, "{\"complete_final\":true}"); }

std::string encode_sentinel() { return encode_two_part("\"sentinel\"", {}); }

Result<StreamControl> parse_stream_control(const TwoPartMessage& message) {
  if (!message.body.empty()) return bad_control("control message with a body");
  if (message.header == "\"stop\"") return StreamControl::kStop;
  if (message.header == "\"kill\"") return StreamControl::kKill;
  return bad_control("unknown control message (expected \"stop\" or \"kill\")");
}

}  // namespace kvmock::dynamo
