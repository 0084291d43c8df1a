// The response side of Dynamo's TCP request plane, "call home"
// (docs/wire-formats.md#dynamo-response-stream). For each request the worker connects to
// the frontend's response server named in the request's control header and writes
// two-part messages:
//
//   handshake (header only)  {"subject":"<subject>","stream_type":"response"}
//   prologue  (header only)  {"error":null} or {"error":"<message>"}
//   items     (body only)    {"data":<item>,"complete_final":false}   one per item
//   final     (body only)    {"complete_final":true}
//   sentinel  (header only)  "sentinel"
//
// The frontend may write "stop" or "kill" (header only) on the same connection; the worker
// then stops, sends nothing more (no sentinel) and closes.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "core/common/result.h"
#include "core/dynamo/two_part_codec.h"

namespace kvmock::dynamo {

// Where and how to answer one request, from its RequestControlMessage header.
struct CallHomeInfo {
  std::string request_id;
  std::string address;  // "host:port" of the frontend's response server
  std::string subject;  // names the response stream in the handshake
};

// Errors: "bad_control" (not the JSON Dynamo writes), "unsupported_transport" (anything
// but tcp_server), "context_mismatch" (info.context differs from id, which Dynamo refuses).
Result<CallHomeInfo> parse_request_control(std::string_view header_json);

// The message sequence above, each already encoded as a two-part message.
std::string encode_handshake(std::string_view subject);
std::string encode_prologue(std::optional<std::string_view> error);
std::string encode_stream_item(std::string_view item_json);
std::string encode_complete_final();
std::string encode_sentinel();

enum class StreamControl { kStop, kKill };
// A control message from the frontend. Errors: "bad_control".
Result<StreamControl> parse_stream_control(const TwoPartMessage& message);

}  // namespace kvmock::dynamo
