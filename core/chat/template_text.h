// UTF-8 helpers for the template engine. The reference renderer runs on JavaScript strings,
// so "whitespace" is JavaScript's set (ASCII blanks plus the Unicode spaces, NBSP and BOM)
// and a string's length counts UTF-16 code units; these functions reproduce that on UTF-8.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace kvmock::chat {

// Decodes the code point at `pos` and its byte length; invalid bytes decode as themselves
// (one byte) so nothing loops forever on malformed input.
inline uint32_t decode_utf8(std::string_view s, size_t pos, size_t* length) {
  const auto b0 = static_cast<unsigned char>(s[pos]);
  auto cont = [&](size_t i) {
    return pos + i < s.size() && (static_cast<unsigned char>(s[pos + i]) & 0xC0) == 0x80;
  };
  auto bits = [&](size_t i) { return static_cast<uint32_t>(s[pos + i]) & 0x3F; };
  if (b0 < 0x80) {
    *length = 1;
    return b0;
  }
  if ((b0 & 0xE0) == 0xC0 && cont(1)) {
    *length = 2;
    return ((b0 & 0x1Fu) << 6) | bits(1);
  }
  if ((b0 & 0xF0) == 0xE0 && cont(1) && cont(2)) {
    *length = 3;
    return ((b0 & 0x0Fu) << 12) | (bits(1) << 6) | bits(2);
  }
  if ((b0 & 0xF8) == 0xF0 && cont(1) && cont(2) && cont(3)) {
    *length = 4;
    return ((b0 & 0x07u) << 18) | (bits(1) << 12) | (bits(2) << 6) | bits(3);
  }
  *length = 1;
  return b0;
}

inline void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

// JavaScript's WhiteSpace and LineTerminator code points (what String.trim removes).
inline bool is_js_whitespace(uint32_t cp) {
  if (cp <= 32) return cp == 32 || (cp >= 9 && cp <= 13);
  return cp == 0xA0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 ||
         cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000 || cp == 0xFEFF;
}

// Byte length of the whitespace run starting at `pos`.
inline size_t js_whitespace_run(std::string_view s, size_t pos) {
  size_t end = pos;
  while (end < s.size()) {
    size_t length = 0;
    if (!is_js_whitespace(decode_utf8(s, end, &length))) break;
    end += length;
  }
  return end - pos;
}

inline std::string_view js_trim_start(std::string_view s) {
  return s.substr(js_whitespace_run(s, 0));
}

inline std::string_view js_trim_end(std::string_view s) {
  // Walk forward remembering where the last non-whitespace code point ended: UTF-8 is not
  // safely decodable backwards when it is malformed.
  size_t keep = 0;
  for (size_t pos = 0; pos < s.size();) {
    size_t length = 0;
    const uint32_t cp = decode_utf8(s, pos, &length);
    pos += length;
    if (!is_js_whitespace(cp)) keep = pos;
  }
  return s.substr(0, keep);
}

inline std::string_view js_trim(std::string_view s) { return js_trim_end(js_trim_start(s)); }

}  // namespace kvmock::chat
