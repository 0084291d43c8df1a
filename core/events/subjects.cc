#include "core/events/subjects.h"

#include <cstdint>

namespace kvmock {
namespace {

bool is_token_byte(uint8_t c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-';
}

void append_token(std::string& out, std::string_view name) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  for (char ch : name) {
    const auto c = static_cast<uint8_t>(ch);
    if (is_token_byte(c)) {
      out.push_back(ch);
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0xf]);
    }
  }
}

// Decodes the UTF-8 scalar at s[i]; returns its length (0 if invalid) and sets `cp`.
size_t decode_utf8(std::string_view s, size_t i, uint32_t& cp) {
  const auto b = [&](size_t k) { return static_cast<uint8_t>(s[i + k]); };
  const uint8_t b0 = b(0);
  size_t len = 0;
  uint32_t min = 0;
  if (b0 >= 0xc0 && b0 <= 0xdf) {
    len = 2;
    cp = b0 & 0x1fu;
    min = 0x80;
  } else if (b0 >= 0xe0 && b0 <= 0xef) {
    len = 3;
    cp = b0 & 0x0fu;
    min = 0x800;
  } else if (b0 >= 0xf0 && b0 <= 0xf7) {
    len = 4;
    cp = b0 & 0x07u;
    min = 0x10000;
  } else {
    return 0;
  }
  if (s.size() - i < len) return 0;
  for (size_t k = 1; k < len; ++k) {
    if ((b(k) & 0xc0) != 0x80) return 0;
    cp = (cp << 6) | (b(k) & 0x3fu);
  }
  if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
  return len;
}

}  // namespace

std::string encode_subject_token(std::string_view name) {
  std::string out;
  out.reserve(name.size());
  append_token(out, name);
  return out;
}

std::string kv_events_subject(std::string_view ns, std::string_view component,
                              std::string_view kv_subject) {
  std::string out = "namespace.";
  append_token(out, ns);
  out.append(".component.");
  append_token(out, component);
  out.push_back('.');
  append_token(out, kv_subject);
  return out;
}

std::string kv_metrics_subject(std::string_view ns) {
  std::string out = "namespace.";
  append_token(out, ns);
  out.append(".kv_metrics");
  return out;
}

std::string kv_indexer_query_subject(std::string_view ns, WorkerId worker_id) {
  std::string out = "namespace.";
  append_token(out, ns);
  out.append(".worker_kv_indexer_query.");
  out.append(std::to_string(worker_id));
  return out;
}

std::string slugify(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<uint8_t>(s[i]);
    if (c < 0x80) {
      const char lower = (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : s[i];
      const bool keep = (lower >= 'a' && lower <= 'z') || (lower >= '0' && lower <= '9') ||
                        lower == '_' || lower == '-';
      out.push_back(keep ? lower : '_');
      ++i;
      continue;
    }
    uint32_t cp = 0;
    const size_t len = decode_utf8(s, i, cp);
    if (len == 0) {
      out.push_back('_');
      ++i;
      continue;
    }
    // The only non-ASCII characters whose Unicode lowercase contains ASCII letters:
    // KELVIN SIGN → 'k', and LATIN CAPITAL I WITH DOT ABOVE → 'i' + U+0307.
    if (cp == 0x212a) {
      out.push_back('k');
    } else if (cp == 0x0130) {
      out.append("i_");
    } else {
      out.push_back('_');
    }
    i += len;
  }
  const size_t first = out.find_first_not_of('_');
  return first == std::string::npos ? std::string() : out.substr(first);
}

std::string jetstream_stream_name(std::string_view ns, std::string_view component) {
  std::string name = "namespace.";
  name.append(ns);
  name.append(".component.");
  name.append(component);
  name.append(".kv_events");
  std::string slug = slugify(name);
  for (char& c : slug) {
    if (c == '_') c = '-';
  }
  return slug;
}

std::string jetstream_subject(std::string_view stream, std::string_view kv_subject) {
  std::string out(stream);
  out.push_back('.');
  append_token(out, kv_subject);
  return out;
}

}  // namespace kvmock
