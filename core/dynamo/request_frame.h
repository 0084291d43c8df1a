// The frames a Dynamo frontend writes on a persistent TCP connection to a worker
// (docs/wire-formats.md#dynamo-request-plane), all big-endian:
//
//   u16 path_len | path | u16 headers_len | headers (JSON object) | u32 payload_len | payload
//
// `path` is "{instance_id:x}/{endpoint}"; `payload` is a two-part message. The worker
// answers each frame, in order, with `u32 len | bytes` (empty = queued).
//
// As with two-part messages, request_frame_size() finds the frame's length on a stream
// and decode_request_frame() takes exactly one frame; the size is bounded before any
// allocation.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>

#include "core/common/result.h"

namespace kvmock::dynamo {

struct RequestFrame {
  std::string path;
  std::map<std::string, std::string> headers;
  std::string payload;  // a two-part message
};

// nullopt while the frame's length is not yet known. Errors: "too_large".
Result<std::optional<size_t>> request_frame_size(std::span<const uint8_t> bytes,
                                                 size_t max_frame_bytes);

// Errors: "truncated", "trailing_bytes", "too_large", "bad_path" (not UTF-8 text of the
// form id/endpoint), "bad_headers" (not a JSON object of strings).
Result<RequestFrame> decode_request_frame(std::span<const uint8_t> bytes, size_t max_frame_bytes);

// The frame's encoding (the frontend's side; tests and the fuzz corpus use it).
std::string encode_request_frame(const RequestFrame& frame);

// The worker's answer to a frame: `u32 len | text`; an empty text acknowledges it.
std::string encode_request_ack(std::string_view text = {});

}  // namespace kvmock::dynamo
