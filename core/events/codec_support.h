// Plumbing shared by the router-facing codecs in this folder (router events, envelope,
// ActiveLoad, indexer query). Not a public API: include it only from codec .cc files.
//
// Decoding goes in two steps. First the outside bytes are parsed into a document tree
// (nlohmann::json for JSON, msgpack::object for msgpack) by `parse_json` /
// `unpack_msgpack`, which enforce the size and depth limits and turn every parser
// failure into an Error. Then one serde-like reader per type walks the tree through a
// tiny node interface (`JsonNode`, `MsgNode`), so the JSON and msgpack decoders of a
// type share a single implementation and accept exactly the same shapes.
//
// Encoding is the mirror image: one `template <class W> void write(...)` per type, run
// with a JsonWriter or a MsgpackWriter (json_writer.h, msgpack_writer.h, included here).
#pragma once

#include <cstddef>
#include <cstdint>
#include <msgpack.hpp>
#include <nlohmann/json.hpp>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "core/common/result.h"
#include "core/events/json_writer.h"
#include "core/events/msgpack_writer.h"

namespace kvmock::codec {

// Containers nested deeper than this are rejected ("too_deep"). The deepest legitimate
// document (a query response holding a Stored event with multimodal offsets) uses 12.
inline constexpr size_t kMaxNestingDepth = 32;

// --- Field paths for error messages ----------------------------------------------------

// A position inside a document, as a chain of stack-allocated links, so that building
// the path costs nothing unless an error message needs it. Renders like
// `event.data.stored.blocks[2].tokens_hash`.
class Path {
 public:
  Path() = default;  // the document root
  Path field(std::string_view key) const { return Path(this, key, 0, false); }
  Path index(size_t i) const { return Path(this, {}, i, true); }
  std::string to_string() const;

 private:
  Path(const Path* parent, std::string_view key, size_t i, bool is_index)
      : parent_(parent), key_(key), index_(i), is_index_(is_index) {}
  const Path* parent_ = nullptr;  // nullptr only at the root
  std::string_view key_;
  size_t index_ = 0;
  bool is_index_ = false;
};

// An Error whose message is "<path>: <what>" ("document: <what>" at the root).
Error path_error(std::string_view reason, const Path& path, std::string_view what);

// --- Document trees ----------------------------------------------------------------------

enum class Kind : uint8_t {
  kNull,
  kBool,
  kUint,
  kNegInt,
  kFloat,
  kString,
  kBin,
  kArray,
  kMap,
  kOther
};
std::string_view kind_name(Kind kind);

// Read-only view of one nlohmann::json value. The document must outlive it.
struct JsonNode {
  const nlohmann::json* j;
};
Kind node_kind(const JsonNode& n);
std::optional<JsonNode> node_find(const JsonNode& map, std::string_view key);
size_t node_size(const JsonNode& container);
JsonNode node_at(const JsonNode& array, size_t i);
std::string_view node_str(const JsonNode& n);
std::span<const uint8_t> node_bin(const JsonNode& n);  // JSON has no bin: always empty
uint64_t node_uint(const JsonNode& n);
double node_float(const JsonNode& n);
// The only entry of a one-entry map whose key is a string.
std::optional<std::pair<std::string_view, JsonNode>> node_single_entry(const JsonNode& map);

// Read-only view of one msgpack::object. The object_handle must outlive it.
struct MsgNode {
  const msgpack::object* o;
};
Kind node_kind(const MsgNode& n);
// First entry whose key is the string `key`; non-string keys never match.
std::optional<MsgNode> node_find(const MsgNode& map, std::string_view key);
size_t node_size(const MsgNode& container);
MsgNode node_at(const MsgNode& array, size_t i);
std::string_view node_str(const MsgNode& n);
std::span<const uint8_t> node_bin(const MsgNode& n);
uint64_t node_uint(const MsgNode& n);
double node_float(const MsgNode& n);
std::optional<std::pair<std::string_view, MsgNode>> node_single_entry(const MsgNode& map);

// Parses one JSON document (surrounding whitespace allowed). Errors: "json" (syntax,
// invalid UTF-8), "too_deep". Never throws.
Result<nlohmann::json> parse_json(std::string_view text);
// The same, keeping objects' key order (a chat template printing `tools | tojson` prints
// them as the client sent them).
Result<nlohmann::ordered_json> parse_ordered_json(std::string_view text);

// Unpacks exactly one msgpack value covering all of `bytes`. A structural pre-scan
// (MsgpackReader::skip) runs first so that no container header can claim more elements
// than the bytes left could hold (bounding allocation by the input size) and nesting
// stays within kMaxNestingDepth. Errors: "truncated", "msgpack" (reserved byte 0xc1),
// "too_deep", "trailing_bytes". Never throws.
Result<msgpack::object_handle> unpack_msgpack(std::span<const uint8_t> bytes);

// --- Field readers (serde rules) -----------------------------------------------------------

// Wrong kind → "bad_type"; negative integer, integer beyond 2^64-1 (JSON) or beyond the
// target width → "bad_value".
template <class N>
Result<uint64_t> read_u64(const N& n, const Path& path) {
  switch (node_kind(n)) {
    case Kind::kUint:
      return node_uint(n);
    case Kind::kNegInt:
      return path_error("bad_value", path, "expected unsigned integer, got a negative number");
    case Kind::kFloat: {
      const double d = node_float(n);
      // nlohmann turns JSON integers past 2^64-1 into doubles; name that case precisely.
      if (std::is_same_v<N, JsonNode> && d >= 18446744073709551616.0) {
        return path_error("bad_value", path, "expected unsigned integer, got one above 2^64-1");
      }
      return path_error("bad_type", path, "expected unsigned integer, got float");
    }
    default:
      return path_error(
          "bad_type", path,
          std::string("expected unsigned integer, got ") + std::string(kind_name(node_kind(n))));
  }
}

template <class N>
Result<uint32_t> read_u32(const N& n, const Path& path) {
  auto v = read_u64(n, path);
  if (!v) return v.error();
  if (*v > UINT32_MAX) return path_error("bad_value", path, "expected u32, value too large");
  return static_cast<uint32_t>(*v);
}

// The field `key` of `map`; "missing_field" when absent.
template <class N>
Result<N> require_field(const N& map, std::string_view key, const Path& field_path) {
  auto f = node_find(map, key);
  if (!f) return path_error("missing_field", field_path, "required field is missing");
  return *f;
}

// Ok (true) when `n` has the given kind, else "bad_type".
template <class N>
Result<bool> expect_kind(const N& n, Kind kind, const Path& path) {
  if (node_kind(n) == kind) return true;
  return path_error("bad_type", path,
                    std::string("expected ") + std::string(kind_name(kind)) + ", got " +
                        std::string(kind_name(node_kind(n))));
}

// An Option<u64> field: absent or null → nullopt.
template <class N>
Result<std::optional<uint64_t>> read_optional_u64(const N& map, std::string_view key,
                                                  const Path& field_path) {
  auto f = node_find(map, key);
  if (!f || node_kind(*f) == Kind::kNull) return std::optional<uint64_t>();
  auto v = read_u64(*f, field_path);
  if (!v) return v.error();
  return std::optional<uint64_t>(*v);
}

template <class N>
Result<std::optional<uint32_t>> read_optional_u32(const N& map, std::string_view key,
                                                  const Path& field_path) {
  auto f = node_find(map, key);
  if (!f || node_kind(*f) == Kind::kNull) return std::optional<uint32_t>();
  auto v = read_u32(*f, field_path);
  if (!v) return v.error();
  return std::optional<uint32_t>(*v);
}

// A `#[serde(default)]` u32 field: absent → 0, null is a type error as in serde.
template <class N>
Result<uint32_t> read_defaulted_u32(const N& map, std::string_view key, const Path& field_path) {
  auto f = node_find(map, key);
  if (!f) return uint32_t{0};
  return read_u32(*f, field_path);
}

}  // namespace kvmock::codec

// Early return of an Error from a Result-producing expression: `lhs` receives the value.
#define KVMOCK_CODEC_CONCAT_INNER(a, b) a##b
#define KVMOCK_CODEC_CONCAT(a, b) KVMOCK_CODEC_CONCAT_INNER(a, b)
#define KVMOCK_ASSIGN_OR_RETURN(lhs, expr)                        \
  auto KVMOCK_CODEC_CONCAT(kvmock_result_, __LINE__) = (expr);    \
  if (!KVMOCK_CODEC_CONCAT(kvmock_result_, __LINE__))             \
    return KVMOCK_CODEC_CONCAT(kvmock_result_, __LINE__).error(); \
  lhs = std::move(KVMOCK_CODEC_CONCAT(kvmock_result_, __LINE__)).value()

// Early return of the Error of a Result<bool>-producing check.
#define KVMOCK_RETURN_IF_ERROR(expr)                                               \
  do {                                                                             \
    if (auto kvmock_check_ = (expr); !kvmock_check_) return kvmock_check_.error(); \
  } while (false)
