#include "core/dynamo/request_frame.h"

#include <nlohmann/json.hpp>

#include "core/dynamo/big_endian.h"

namespace kvmock::dynamo {
namespace {

constexpr size_t kPathLenBytes = 2;
constexpr size_t kHeadersLenBytes = 2;
constexpr size_t kPayloadLenBytes = 4;

// Where each part of a frame starts and how long it is, as far as `bytes` tells.
struct Layout {
  size_t path_len = 0;
  size_t headers_len = 0;
  size_t payload_len = 0;
  size_t headers_at() const { return kPathLenBytes + path_len + kHeadersLenBytes; }
  size_t payload_at() const { return headers_at() + headers_len + kPayloadLenBytes; }
  size_t total() const { return payload_at() + payload_len; }
};

// The layout once all three lengths have arrived; nullopt before.
std::optional<Layout> read_layout(std::span<const uint8_t> bytes) {
  Layout layout;
  if (bytes.size() < kPathLenBytes) return std::nullopt;
  layout.path_len = load_be<uint16_t>(bytes.data());
  if (bytes.size() < layout.headers_at()) return std::nullopt;
  layout.headers_len = load_be<uint16_t>(bytes.data() + layout.headers_at() - kHeadersLenBytes);
  if (bytes.size() < layout.payload_at()) return std::nullopt;
  layout.payload_len = load_be<uint32_t>(bytes.data() + layout.payload_at() - kPayloadLenBytes);
  return layout;
}

Error too_large(const Layout& layout, size_t max_frame_bytes) {
  return make_error("too_large", "request frame of " + std::to_string(layout.total()) +
                                     " bytes exceeds the limit of " +
                                     std::to_string(max_frame_bytes));
}

bool valid_path(std::string_view path) {
  const size_t slash = path.find('/');
  if (slash == 0 || slash == std::string_view::npos || slash + 1 == path.size()) return false;
  for (char c : path) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) return false;
  }
  return true;
}

Result<std::map<std::string, std::string>> parse_headers(std::string_view text) {
  std::map<std::string, std::string> headers;
  if (text.empty()) return headers;
  const auto json = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!json.is_object()) {
    return make_error("bad_headers", "request frame headers are not a JSON object");
  }
  for (const auto& [key, value] : json.items()) {
    if (!value.is_string()) {
      return make_error("bad_headers", "request frame header '" + key + "' is not a string");
    }
    headers.emplace(key, value.get<std::string>());
  }
  return headers;
}

}  // namespace

Result<std::optional<size_t>> request_frame_size(std::span<const uint8_t> bytes,
                                                 size_t max_frame_bytes) {
  const auto layout = read_layout(bytes);
  if (!layout) {
    // The prefix so far may already be over the limit (a path or headers length alone).
    return std::optional<size_t>();
  }
  if (layout->total() > max_frame_bytes) return too_large(*layout, max_frame_bytes);
  return std::optional<size_t>(layout->total());
}

Result<RequestFrame> decode_request_frame(std::span<const uint8_t> bytes, size_t max_frame_bytes) {
  const auto layout = read_layout(bytes);
  if (!layout) return make_error("truncated", "request frame ends inside its length fields");
  if (layout->total() > max_frame_bytes) return too_large(*layout, max_frame_bytes);
  if (bytes.size() < layout->total()) {
    return make_error("truncated", "request frame needs " + std::to_string(layout->total()) +
                                       " bytes, has " + std::to_string(bytes.size()));
  }
  if (bytes.size() > layout->total()) {
    return make_error("trailing_bytes", "bytes after the request frame");
  }
  const auto* text = reinterpret_cast<const char*>(bytes.data());
  RequestFrame frame;
  frame.path.assign(text + kPathLenBytes, layout->path_len);
  if (!valid_path(frame.path)) {
    return make_error("bad_path", "request frame path is not of the form id/endpoint");
  }
  auto headers = parse_headers(std::string_view(text + layout->headers_at(), layout->headers_len));
  if (!headers) return headers.error();
  frame.headers = std::move(*headers);
  frame.payload.assign(text + layout->payload_at(), layout->payload_len);
  return frame;
}

std::string encode_request_frame(const RequestFrame& frame) {
  nlohmann::json headers = nlohmann::json::object();
  for (const auto& [key, value] : frame.headers) headers[key] = value;
  const std::string header_text =
      headers.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  std::string out;
  append_be<uint16_t>(out, static_cast<uint16_t>(frame.path.size()));
  out.append(frame.path);
  append_be<uint16_t>(out, static_cast<uint16_t>(header_text.size()));
  out.append(header_text);
  append_be<uint32_t>(out, static_cast<uint32_t>(frame.payload.size()));
  out.append(frame.payload);
  return out;
}

std::string encode_request_ack(std::string_view text) {
  std::string out;
  append_be<uint32_t>(out, static_cast<uint32_t>(text.size()));
  out.append(text);
  return out;
}

}  // namespace kvmock::dynamo
