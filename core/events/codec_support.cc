#include "core/events/codec_support.h"

#include <array>
#include <exception>

#include "core/events/msgpack_reader.h"

namespace kvmock::codec {

// --- Path ------------------------------------------------------------------------------------

std::string Path::to_string() const {
  std::array<const Path*, 64> links{};
  size_t n = 0;
  for (const Path* p = this; p != nullptr && p->parent_ != nullptr && n < links.size();
       p = p->parent_) {
    links[n++] = p;
  }
  std::string out;
  for (size_t i = n; i-- > 0;) {
    const Path* p = links[i];
    if (p->is_index_) {
      out.push_back('[');
      append_u64(out, p->index_);
      out.push_back(']');
    } else {
      if (!out.empty()) out.push_back('.');
      out.append(p->key_);
    }
  }
  return out;
}

Error path_error(std::string_view reason, const Path& path, std::string_view what) {
  std::string where = path.to_string();
  if (where.empty()) where = "document";
  where.append(": ");
  where.append(what);
  return make_error(reason, std::move(where));
}

std::string_view kind_name(Kind kind) {
  switch (kind) {
    case Kind::kNull:
      return "null";
    case Kind::kBool:
      return "boolean";
    case Kind::kUint:
      return "unsigned integer";
    case Kind::kNegInt:
      return "negative integer";
    case Kind::kFloat:
      return "float";
    case Kind::kString:
      return "string";
    case Kind::kBin:
      return "binary";
    case Kind::kArray:
      return "array";
    case Kind::kMap:
      return "map";
    case Kind::kOther:
      return "extension";
  }
  return "unknown";
}

// --- JsonNode ----------------------------------------------------------------------------

Kind node_kind(const JsonNode& n) {
  const auto& j = *n.j;
  switch (j.type()) {
    case nlohmann::json::value_t::null:
      return Kind::kNull;
    case nlohmann::json::value_t::boolean:
      return Kind::kBool;
    case nlohmann::json::value_t::number_unsigned:
      return Kind::kUint;
    case nlohmann::json::value_t::number_integer:
      // The parser stores non-negative integers as unsigned; a signed non-negative one
      // only appears in a programmatically built tree.
      return j.get<int64_t>() >= 0 ? Kind::kUint : Kind::kNegInt;
    case nlohmann::json::value_t::number_float:
      return Kind::kFloat;
    case nlohmann::json::value_t::string:
      return Kind::kString;
    case nlohmann::json::value_t::binary:
      return Kind::kBin;
    case nlohmann::json::value_t::array:
      return Kind::kArray;
    case nlohmann::json::value_t::object:
      return Kind::kMap;
    case nlohmann::json::value_t::discarded:
      return Kind::kOther;
  }
  return Kind::kOther;
}

std::optional<JsonNode> node_find(const JsonNode& map, std::string_view key) {
  auto it = map.j->find(key);
  if (it == map.j->end()) return std::nullopt;
  return JsonNode{&*it};
}

size_t node_size(const JsonNode& container) { return container.j->size(); }

JsonNode node_at(const JsonNode& array, size_t i) { return JsonNode{&(*array.j)[i]}; }

std::string_view node_str(const JsonNode& n) { return n.j->get_ref<const std::string&>(); }

std::span<const uint8_t> node_bin(const JsonNode&) { return {}; }

uint64_t node_uint(const JsonNode& n) {
  if (n.j->is_number_unsigned()) return n.j->get<uint64_t>();
  return static_cast<uint64_t>(n.j->get<int64_t>());
}

double node_float(const JsonNode& n) { return n.j->get<double>(); }

std::optional<std::pair<std::string_view, JsonNode>> node_single_entry(const JsonNode& map) {
  if (map.j->size() != 1) return std::nullopt;
  auto it = map.j->begin();
  return std::make_pair(std::string_view(it.key()), JsonNode{&it.value()});
}

// --- MsgNode ------------------------------------------------------------------------------

Kind node_kind(const MsgNode& n) {
  switch (n.o->type) {
    case msgpack::type::NIL:
      return Kind::kNull;
    case msgpack::type::BOOLEAN:
      return Kind::kBool;
    case msgpack::type::POSITIVE_INTEGER:
      return Kind::kUint;
    case msgpack::type::NEGATIVE_INTEGER:
      return Kind::kNegInt;
    case msgpack::type::FLOAT32:
    case msgpack::type::FLOAT64:
      return Kind::kFloat;
    case msgpack::type::STR:
      return Kind::kString;
    case msgpack::type::BIN:
      return Kind::kBin;
    case msgpack::type::ARRAY:
      return Kind::kArray;
    case msgpack::type::MAP:
      return Kind::kMap;
    case msgpack::type::EXT:
      return Kind::kOther;
  }
  return Kind::kOther;
}

std::optional<MsgNode> node_find(const MsgNode& map, std::string_view key) {
  const auto& m = map.o->via.map;
  for (uint32_t i = 0; i < m.size; ++i) {
    const msgpack::object& k = m.ptr[i].key;
    if (k.type == msgpack::type::STR && std::string_view(k.via.str.ptr, k.via.str.size) == key) {
      return MsgNode{&m.ptr[i].val};
    }
  }
  return std::nullopt;
}

size_t node_size(const MsgNode& container) {
  return container.o->type == msgpack::type::MAP ? container.o->via.map.size
                                                 : container.o->via.array.size;
}

MsgNode node_at(const MsgNode& array, size_t i) { return MsgNode{&array.o->via.array.ptr[i]}; }

std::string_view node_str(const MsgNode& n) {
  return std::string_view(n.o->via.str.ptr, n.o->via.str.size);
}

std::span<const uint8_t> node_bin(const MsgNode& n) {
  return {reinterpret_cast<const uint8_t*>(n.o->via.bin.ptr), n.o->via.bin.size};
}

uint64_t node_uint(const MsgNode& n) { return n.o->via.u64; }

double node_float(const MsgNode& n) { return n.o->via.f64; }

std::optional<std::pair<std::string_view, MsgNode>> node_single_entry(const MsgNode& map) {
  const auto& m = map.o->via.map;
  if (m.size != 1 || m.ptr[0].key.type != msgpack::type::STR) return std::nullopt;
  return std::make_pair(std::string_view(m.ptr[0].key.via.str.ptr, m.ptr[0].key.via.str.size),
                        MsgNode{&m.ptr[0].val});
}

// --- Parsing -------------------------------------------------------------------------------

namespace {

// nlohmann has no depth limit; count brackets outside strings first.
std::optional<Error> check_json_depth(std::string_view text) {
  size_t depth = 0;
  bool in_string = false;
  bool escaped = false;
  for (char c : text) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > kMaxNestingDepth) {
        return make_error("too_deep", "document: nesting deeper than " +
                                          std::to_string(kMaxNestingDepth) + " levels");
      }
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return std::nullopt;
}

template <class Json>
Result<Json> parse_bounded_json(std::string_view text) {
  if (auto too_deep = check_json_depth(text)) return std::move(*too_deep);
  try {
    Json doc = Json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
    if (doc.is_discarded()) return make_error("json", "document: invalid JSON");
    return doc;
  } catch (const std::exception& e) {  // allocation failure; the parser itself won't throw
    return make_error("json", std::string("document: ") + e.what());
  }
}

}  // namespace

Result<nlohmann::json> parse_json(std::string_view text) {
  return parse_bounded_json<nlohmann::json>(text);
}

Result<nlohmann::ordered_json> parse_ordered_json(std::string_view text) {
  return parse_bounded_json<nlohmann::ordered_json>(text);
}

namespace {

// Walks the msgpack structure without building it (see unpack_msgpack for why), and maps
// the reader's verdict to this folder's error reasons.
Result<bool> prescan_msgpack(std::span<const uint8_t> bytes) {
  MsgpackReader r(bytes);
  switch (r.skip(static_cast<int>(kMaxNestingDepth))) {
    case MsgpackStatus::kOk:
      break;
    case MsgpackStatus::kTruncated:
      // skip() leaves the reader at the start on failure; name the input size instead.
      return make_error("truncated",
                        "document: input ends inside a value, or a container header claims "
                        "more values than the " +
                            std::to_string(bytes.size()) + " bytes could hold");
    case MsgpackStatus::kInvalid:
      return make_error("msgpack", "document: reserved byte 0xc1");
    case MsgpackStatus::kTooDeep:
      return make_error("too_deep", "document: nesting deeper than " +
                                        std::to_string(kMaxNestingDepth) + " levels");
    case MsgpackStatus::kWrongType:  // skip() accepts every type
      return make_error("msgpack", "document: unexpected reader state");
  }
  if (!r.at_end()) {
    return make_error("trailing_bytes", "document: " + std::to_string(r.remaining()) +
                                            " bytes after the end of the value");
  }
  return true;
}

}  // namespace

Result<msgpack::object_handle> unpack_msgpack(std::span<const uint8_t> bytes) {
  // msgpack-c allocates a container's element slots when it reads the header, so a
  // 5-byte `dd ffffffff` would ask for ~100 GB. The pre-scan rejects such claims (and
  // truncation, excess depth, trailing bytes) before msgpack-c sees the bytes; the
  // limits below are a second line of defence.
  auto scan = prescan_msgpack(bytes);
  if (!scan) return scan.error();
  const size_t n = bytes.size();
  const msgpack::unpack_limit limit(n, n / 2, n, n, n, kMaxNestingDepth + 2);
  try {
    size_t offset = 0;
    msgpack::object_handle handle = msgpack::unpack(reinterpret_cast<const char*>(bytes.data()), n,
                                                    offset, nullptr, nullptr, limit);
    if (offset != n) return make_error("trailing_bytes", "document: bytes after the value");
    return handle;
  } catch (const msgpack::insufficient_bytes& e) {
    return make_error("truncated", std::string("document: ") + e.what());
  } catch (const msgpack::depth_size_overflow& e) {
    return make_error("too_deep", std::string("document: ") + e.what());
  } catch (const std::exception& e) {
    return make_error("msgpack", std::string("document: ") + e.what());
  }
}

}  // namespace kvmock::codec
