#include "core/tokenizer/unicode_regex.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

namespace kvmock::tokenizer {

struct UnicodeRegex::Code {
  pcre2_code* code = nullptr;
  ~Code() { pcre2_code_free(code); }
};

namespace {

// One match-data block per thread, reused by every pattern: only the whole-match offsets
// are read, so a single pair suffices (PCRE2 still fills pair 0 when groups overflow).
pcre2_match_data* thread_match_data() {
  struct Holder {
    pcre2_match_data* data = pcre2_match_data_create(1, nullptr);
    ~Holder() { pcre2_match_data_free(data); }
  };
  thread_local Holder holder;
  return holder.data;
}

size_t utf8_char_length(std::string_view text, size_t pos) {
  size_t length = 1;
  while (pos + length < text.size() && (static_cast<uint8_t>(text[pos + length]) & 0xC0) == 0x80) {
    ++length;
  }
  return length;
}

}  // namespace

std::string widen_whitespace_classes(std::string_view pattern) {
  std::string out;
  out.reserve(pattern.size() + 16);
  bool in_class = false;
  for (size_t i = 0; i < pattern.size(); ++i) {
    const char c = pattern[i];
    if (c == '\\' && i + 1 < pattern.size()) {
      const char next = pattern[i + 1];
      ++i;
      if (next == 's') {
        out += in_class ? "\\s\\x{85}" : "[\\s\\x{85}]";
      } else if (next == 'S' && !in_class) {
        out += "[^\\s\\x{85}]";
      } else {
        // \S inside a class cannot be widened by adding a member; it is kept as PCRE2's
        // (they differ on U+0085 only).
        out += c;
        out += next;
      }
      continue;
    }
    if (c == '[' && !in_class) {
      in_class = true;
      out += c;
      // A ']' right after '[' or '[^' is a literal member, not the end of the class.
      if (i + 1 < pattern.size() && pattern[i + 1] == '^') out += pattern[++i];
      if (i + 1 < pattern.size() && pattern[i + 1] == ']') out += pattern[++i];
      continue;
    }
    if (c == ']' && in_class) in_class = false;
    out += c;
  }
  return out;
}

Result<UnicodeRegex> UnicodeRegex::compile(std::string_view pattern, bool literal) {
  const std::string source = literal ? std::string(pattern) : widen_whitespace_classes(pattern);
  // PCRE2 rejects UCP together with LITERAL (a literal has no classes for it to change).
  const uint32_t options = literal ? PCRE2_UTF | PCRE2_LITERAL : PCRE2_UTF | PCRE2_UCP;
  int error_code = 0;
  PCRE2_SIZE error_offset = 0;
  pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(source.data()), source.size(),
                                   options, &error_code, &error_offset, nullptr);
  if (code == nullptr) {
    PCRE2_UCHAR buffer[256];
    pcre2_get_error_message(error_code, buffer, sizeof(buffer));
    return make_error("unsupported", "regex '" + std::string(pattern) + "' at offset " +
                                         std::to_string(error_offset) + ": " +
                                         reinterpret_cast<const char*>(buffer));
  }
  // JIT is an optimisation only: without it (or when it fails) the interpreter runs.
  (void)pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
  auto owned = std::make_shared<Code>();
  owned->code = code;
  return UnicodeRegex(std::move(owned));
}

Result<bool> UnicodeRegex::find_all(std::string_view text, std::vector<MatchSpan>& matches) const {
  pcre2_match_data* data = thread_match_data();
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  size_t pos = 0;
  bool have_last_end = false;
  size_t last_end = 0;
  while (pos <= text.size()) {
    // Callers pass validated UTF-8, so PCRE2's own check (linear per call) is skipped.
    int rc = pcre2_match(code_->code, subject, text.size(), pos, PCRE2_NO_UTF_CHECK, data, nullptr);
    if (rc == PCRE2_ERROR_JIT_STACKLIMIT) {
      // Deep backtracking outgrew the JIT stack; the interpreter keeps its frames on the heap.
      rc = pcre2_match(code_->code, subject, text.size(), pos, PCRE2_NO_UTF_CHECK | PCRE2_NO_JIT,
                       data, nullptr);
    }
    if (rc == PCRE2_ERROR_NOMATCH) break;
    if (rc < 0)
      return make_error("regex_limit", "regex match failed with PCRE2 code " + std::to_string(rc));
    const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(data);
    const size_t start = ovector[0];
    const size_t end = ovector[1];
    if (start == end && have_last_end && last_end == end) {
      // An empty match where the previous match ended: step one character and search on.
      if (pos >= text.size()) break;
      pos += utf8_char_length(text, pos);
      continue;
    }
    matches.push_back({start, end});
    have_last_end = true;
    last_end = end;
    pos = end;
  }
  return true;
}

Result<std::string> UnicodeRegex::replace_all(std::string_view text,
                                              std::string_view replacement) const {
  std::vector<MatchSpan> matches;
  auto found = find_all(text, matches);
  if (!found) return found.error();
  std::string out;
  out.reserve(text.size());
  size_t copied = 0;
  for (const MatchSpan& match : matches) {
    out.append(text.substr(copied, match.start - copied));
    out.append(replacement);
    copied = match.end;
  }
  out.append(text.substr(copied));
  return out;
}

}  // namespace kvmock::tokenizer
