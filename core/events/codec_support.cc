#include "core/events/codec_support.h"

#include <array>
#include <charconv>
#include <exception>

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

Result<nlohmann::json> parse_json(std::string_view text) {
  // nlohmann has no depth limit; count brackets outside strings first.
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
  try {
    nlohmann::json doc = nlohmann::json::parse(text.begin(), text.end(), nullptr,
                                               /*allow_exceptions=*/false);
    if (doc.is_discarded()) return make_error("json", "document: invalid JSON");
    return doc;
  } catch (const std::exception& e) {  // allocation failure; the parser itself won't throw
    return make_error("json", std::string("document: ") + e.what());
  }
}

namespace {

uint64_t read_be(const uint8_t* p, size_t width) {
  uint64_t v = 0;
  for (size_t i = 0; i < width; ++i) v = (v << 8) | p[i];
  return v;
}

// Walks the msgpack structure without building it. See unpack_msgpack for why.
Result<bool> prescan_msgpack(std::span<const uint8_t> bytes) {
  const uint8_t* data = bytes.data();
  const size_t size = bytes.size();
  size_t pos = 0;
  // remaining[d]: values still expected at nesting level d; level 0 holds the root.
  std::array<uint64_t, kMaxNestingDepth + 1> remaining{};
  size_t levels = 1;
  remaining[0] = 1;
  uint64_t pending = 1;  // sum of remaining[]; every pending value needs >= 1 byte
  auto truncated = [&](std::string_view what) {
    return make_error("truncated", "document: input ends inside " + std::string(what) +
                                       " at byte " + std::to_string(pos));
  };
  while (levels > 0) {
    if (remaining[levels - 1] == 0) {
      --levels;
      continue;
    }
    if (pos >= size) return truncated("a container");
    --remaining[levels - 1];
    --pending;
    const uint8_t b = data[pos++];
    uint64_t payload = 0;   // bytes following the header (scalars, str, bin, ext)
    uint64_t children = 0;  // values inside (containers; a map entry counts 2)
    bool container = false;
    size_t len_width = 0;    // width of a big-endian length field to read first
    uint64_t len_extra = 0;  // added to the length (ext type byte)
    bool map_len = false;
    if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3) {
      payload = 0;
    } else if (b <= 0x8f) {
      container = true;
      children = 2u * (b & 0x0fu);
    } else if (b <= 0x9f) {
      container = true;
      children = b & 0x0fu;
    } else if (b <= 0xbf) {
      payload = b & 0x1fu;
    } else {
      switch (b) {
        case 0xc1:
          return make_error("msgpack",
                            "document: reserved byte 0xc1 at byte " + std::to_string(pos - 1));
        case 0xc4:
        case 0xd9:
          len_width = 1;
          break;
        case 0xc5:
        case 0xda:
          len_width = 2;
          break;
        case 0xc6:
        case 0xdb:
          len_width = 4;
          break;
        case 0xc7:
          len_width = 1;
          len_extra = 1;
          break;
        case 0xc8:
          len_width = 2;
          len_extra = 1;
          break;
        case 0xc9:
          len_width = 4;
          len_extra = 1;
          break;
        case 0xca:
          payload = 4;
          break;
        case 0xcb:
          payload = 8;
          break;
        case 0xcc:
        case 0xd0:
          payload = 1;
          break;
        case 0xcd:
        case 0xd1:
          payload = 2;
          break;
        case 0xce:
        case 0xd2:
          payload = 4;
          break;
        case 0xcf:
        case 0xd3:
          payload = 8;
          break;
        case 0xd4:
          payload = 2;
          break;
        case 0xd5:
          payload = 3;
          break;
        case 0xd6:
          payload = 5;
          break;
        case 0xd7:
          payload = 9;
          break;
        case 0xd8:
          payload = 17;
          break;
        case 0xdc:
          container = true;
          len_width = 2;
          break;
        case 0xdd:
          container = true;
          len_width = 4;
          break;
        case 0xde:
          container = true;
          len_width = 2;
          map_len = true;
          break;
        case 0xdf:
          container = true;
          len_width = 4;
          map_len = true;
          break;
        default:
          break;
      }
      if (len_width > 0) {
        if (size - pos < len_width) return truncated("a length field");
        const uint64_t len = read_be(data + pos, len_width);
        pos += len_width;
        if (container) {
          children = map_len ? 2 * len : len;
        } else {
          payload = len + len_extra;
        }
      }
    }
    if (!container) {
      if (size - pos < payload) return truncated("a value");
      pos += payload;
      continue;
    }
    if (levels > kMaxNestingDepth) {
      return make_error("too_deep", "document: nesting deeper than " +
                                        std::to_string(kMaxNestingDepth) + " levels");
    }
    if (children == 0) continue;
    if (children > size - pos - pending) {
      return make_error("truncated", "document: container header at byte " + std::to_string(pos) +
                                         " claims " + std::to_string(children) +
                                         " values but only " + std::to_string(size - pos) +
                                         " bytes remain");
    }
    remaining[levels++] = children;
    pending += children;
  }
  if (pos != size) {
    return make_error("trailing_bytes", "document: " + std::to_string(size - pos) +
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

// --- Encoding ----------------------------------------------------------------------------

void append_u64(std::string& out, uint64_t v) {
  char buf[20];
  const auto res = std::to_chars(buf, buf + sizeof(buf), v);
  out.append(buf, res.ptr);
}

namespace {

// Length of the valid UTF-8 sequence starting at s[i], or 0 if it is not valid.
size_t utf8_sequence_length(std::string_view s, size_t i) {
  const auto at = [&](size_t k) { return static_cast<uint8_t>(s[k]); };
  const uint8_t b0 = at(i);
  size_t len = 0;
  uint32_t lo = 0x80;  // bounds of the second byte (exclude overlongs, surrogates, > U+10FFFF)
  uint32_t hi = 0xbf;
  if (b0 >= 0xc2 && b0 <= 0xdf) {
    len = 2;
  } else if (b0 >= 0xe0 && b0 <= 0xef) {
    len = 3;
    if (b0 == 0xe0) lo = 0xa0;
    if (b0 == 0xed) hi = 0x9f;
  } else if (b0 >= 0xf0 && b0 <= 0xf4) {
    len = 4;
    if (b0 == 0xf0) lo = 0x90;
    if (b0 == 0xf4) hi = 0x8f;
  } else {
    return 0;
  }
  if (s.size() - i < len) return 0;
  if (at(i + 1) < lo || at(i + 1) > hi) return 0;
  for (size_t k = 2; k < len; ++k) {
    if ((at(i + k) & 0xc0) != 0x80) return 0;
  }
  return len;
}

}  // namespace

void append_json_string(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out.push_back('"');
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<uint8_t>(s[i]);
    if (c >= 0x80) {
      const size_t len = utf8_sequence_length(s, i);
      if (len == 0) {
        out.append("\xef\xbf\xbd");
        ++i;
      } else {
        out.append(s.substr(i, len));
        i += len;
      }
      continue;
    }
    switch (c) {
      case '"':
        out.append("\\\"");
        break;
      case '\\':
        out.append("\\\\");
        break;
      case '\n':
        out.append("\\n");
        break;
      case '\r':
        out.append("\\r");
        break;
      case '\t':
        out.append("\\t");
        break;
      case '\b':
        out.append("\\b");
        break;
      case '\f':
        out.append("\\f");
        break;
      default:
        if (c < 0x20) {
          out.append("\\u00");
          out.push_back(kHex[c >> 4]);
          out.push_back(kHex[c & 0xf]);
        } else {
          out.push_back(static_cast<char>(c));
        }
    }
    ++i;
  }
  out.push_back('"');
}

}  // namespace kvmock::codec
