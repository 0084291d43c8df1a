// See template_lexer.h. The rewrite rules and the token rules follow @huggingface/jinja's
// lexer (with trim_blocks and lstrip_blocks on, as transformers renders chat templates).
#include "core/chat/template_lexer.h"

#include <array>
#include <utility>

#include "core/chat/template_text.h"

namespace kvmock::chat {
namespace {

// A string with the original source line of each of its bytes.
struct LinedText {
  std::string text;
  std::vector<uint32_t> lines;
  void push(char c, uint32_t line) {
    text += c;
    lines.push_back(line);
  }
};

bool is_line_terminator_before(const std::string& s, size_t pos) {
  // JavaScript's multiline ^ matches after \n, \r, U+2028 and U+2029.
  if (pos == 0) return true;
  const char c = s[pos - 1];
  if (c == '\n' || c == '\r') return true;
  return pos >= 3 && static_cast<unsigned char>(s[pos - 3]) == 0xE2 &&
         static_cast<unsigned char>(s[pos - 2]) == 0x80 &&
         (static_cast<unsigned char>(s[pos - 1]) == 0xA8 ||
          static_cast<unsigned char>(s[pos - 1]) == 0xA9);
}

// The source rewrite done before lexing: drop one final newline; lstrip_blocks removes
// blanks before "{%", "{#" (and "{-") at a line start; trim_blocks removes the newline after
// "%}", "#}" (and "-}"); {% generation %} markers disappear.
LinedText preprocess(std::string_view source) {
  LinedText input;
  uint32_t line = 1;
  for (char c : source) {
    input.push(c, line);
    if (c == '\n') ++line;
  }
  if (!input.text.empty() && input.text.back() == '\n') {
    input.text.pop_back();
    input.lines.pop_back();
  }

  LinedText lstripped;
  const std::string& a = input.text;
  for (size_t i = 0; i < a.size();) {
    if (is_line_terminator_before(a, i)) {
      size_t j = i;
      while (j < a.size() && (a[j] == ' ' || a[j] == '\t')) ++j;
      if (j + 1 < a.size() && a[j] == '{' &&
          (a[j + 1] == '#' || a[j + 1] == '%' || a[j + 1] == '-')) {
        i = j;
      }
    }
    lstripped.push(a[i], input.lines[i]);
    ++i;
  }

  LinedText trimmed;
  const std::string& b = lstripped.text;
  for (size_t i = 0; i < b.size(); ++i) {
    trimmed.push(b[i], lstripped.lines[i]);
    if (b[i] == '}' && i > 0 && (b[i - 1] == '#' || b[i - 1] == '%' || b[i - 1] == '-') &&
        i + 1 < b.size() && b[i + 1] == '\n') {
      ++i;  // swallow the newline
    }
  }

  // {%-? (end)?generation -?%} and the whitespace after it unless it has no right "-".
  LinedText out;
  const std::string& c = trimmed.text;
  for (size_t i = 0; i < c.size();) {
    if (c.compare(i, 2, "{%") == 0) {
      size_t j = i + 2;
      const bool strip_left = j < c.size() && c[j] == '-';
      if (strip_left) ++j;
      j += js_whitespace_run(c, j);
      if (c.compare(j, 3, "end") == 0 && c.compare(j + 3, 10, "generation") == 0) j += 3;
      if (c.compare(j, 10, "generation") == 0) {
        j += 10;
        j += js_whitespace_run(c, j);
        const bool strip_right = j < c.size() && c[j] == '-';
        if (strip_right) ++j;
        if (c.compare(j, 2, "%}") == 0) {
          j += 2;
          if (strip_left) {
            std::string_view kept = js_trim_end(out.text);
            out.text.resize(kept.size());
            out.lines.resize(kept.size());
          }
          const size_t blanks = js_whitespace_run(c, j);
          if (!strip_right) {
            for (size_t k = j; k < j + blanks; ++k) out.push(c[k], trimmed.lines[k]);
          }
          i = j + blanks;
          continue;
        }
      }
    }
    out.push(c[i], trimmed.lines[i]);
    ++i;
  }
  return out;
}

bool is_word(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}
bool is_digit(char c) { return c >= '0' && c <= '9'; }

struct Rule {
  std::string_view text;
  TokenKind kind;
};
// Longest-first where one symbol prefixes another.
constexpr std::array<Rule, 27> kRules{{
    {"{%", TokenKind::kOpenStatement},  {"%}", TokenKind::kCloseStatement},
    {"{{", TokenKind::kOpenExpression}, {"}}", TokenKind::kCloseExpression},
    {"(", TokenKind::kOpenParen},       {")", TokenKind::kCloseParen},
    {"{", TokenKind::kOpenBrace},       {"}", TokenKind::kCloseBrace},
    {"[", TokenKind::kOpenBracket},     {"]", TokenKind::kCloseBracket},
    {",", TokenKind::kComma},           {".", TokenKind::kDot},
    {":", TokenKind::kColon},           {"|", TokenKind::kPipe},
    {"<=", TokenKind::kComparison},     {">=", TokenKind::kComparison},
    {"==", TokenKind::kComparison},     {"!=", TokenKind::kComparison},
    {"<", TokenKind::kComparison},      {">", TokenKind::kComparison},
    {"+", TokenKind::kAdditive},        {"-", TokenKind::kAdditive},
    {"~", TokenKind::kAdditive},        {"**", TokenKind::kPower},
    {"*", TokenKind::kMultiplicative},  {"//", TokenKind::kMultiplicative},
    {"/", TokenKind::kMultiplicative},
}};

class Lexer {
 public:
  explicit Lexer(LinedText src) : src_(std::move(src)), s_(src_.text) {}

  Result<std::vector<Token>> run() {
    size_t curly_depth = 0;
    while (pos_ < s_.size()) {
      const bool after_close = tokens_.empty() || last() == TokenKind::kCloseStatement ||
                               last() == TokenKind::kCloseExpression ||
                               last() == TokenKind::kComment;
      if (after_close) {
        size_t end = pos_;
        while (true) {
          end = s_.find('{', end);
          if (end == std::string::npos) {
            end = s_.size();
            break;
          }
          if (end + 1 < s_.size() &&
              (s_[end + 1] == '%' || s_[end + 1] == '{' || s_[end + 1] == '#'))
            break;
          ++end;
        }
        if (end > pos_) {
          push(TokenKind::kText, s_.substr(pos_, end - pos_));
          pos_ = end;
          continue;
        }
      }
      if (s_[pos_] == '{' && pos_ + 1 < s_.size()) {
        const char next = s_[pos_ + 1];
        if (next == '#') {
          pos_ += 2;
          const bool strip_before = pos_ < s_.size() && s_[pos_] == '-';
          if (strip_before) ++pos_;
          const size_t end = s_.find("#}", pos_);
          if (end == std::string::npos) return fail("unclosed comment");
          std::string comment(s_.substr(pos_, end - pos_));
          const bool strip_after = !comment.empty() && comment.back() == '-';
          if (strip_after) comment.pop_back();
          if (strip_before) strip_trailing_whitespace();
          push(TokenKind::kComment, comment);
          pos_ = end + 2;
          if (strip_after) pos_ += js_whitespace_run(s_, pos_);
          continue;
        }
        if (pos_ + 2 < s_.size() && s_[pos_ + 2] == '-' && (next == '%' || next == '{')) {
          strip_trailing_whitespace();
          push(next == '%' ? TokenKind::kOpenStatement : TokenKind::kOpenExpression,
               next == '%' ? "{%" : "{{");
          if (next == '{') curly_depth = 0;
          pos_ += 3;
          continue;
        }
      }
      pos_ += js_whitespace_run(s_, pos_);
      if (pos_ >= s_.size()) return fail("unexpected end of template inside a tag");
      const char c = s_[pos_];
      if (c == '-' && pos_ + 2 < s_.size() && s_[pos_ + 2] == '}' &&
          (s_[pos_ + 1] == '%' || s_[pos_ + 1] == '}')) {
        push(s_[pos_ + 1] == '%' ? TokenKind::kCloseStatement : TokenKind::kCloseExpression,
             s_[pos_ + 1] == '%' ? "%}" : "}}");
        pos_ += 3;
        pos_ += js_whitespace_run(s_, pos_);
        continue;
      }
      if (c == '-' || c == '+') {
        if (tokens_.empty() || last() == TokenKind::kText)
          return fail(std::string("unexpected character ") + c);
        const TokenKind previous = last();
        if (previous != TokenKind::kIdentifier && previous != TokenKind::kNumber &&
            previous != TokenKind::kString && previous != TokenKind::kCloseParen &&
            previous != TokenKind::kCloseBracket) {
          ++pos_;
          std::string number = digits();
          if (!number.empty() && pos_ + 1 < s_.size() && s_[pos_] == '.' &&
              is_digit(s_[pos_ + 1])) {
            ++pos_;
            number += "." + digits();
          }
          push(number.empty() ? TokenKind::kUnary : TokenKind::kNumber, std::string(1, c) + number);
          continue;
        }
      }
      bool matched = false;
      for (const Rule& rule : kRules) {
        if (rule.text == "}}" && curly_depth > 0) continue;
        if (s_.compare(pos_, rule.text.size(), rule.text) != 0) continue;
        if (rule.kind == TokenKind::kOpenExpression) curly_depth = 0;
        if (rule.kind == TokenKind::kOpenBrace) ++curly_depth;
        if (rule.kind == TokenKind::kCloseBrace && curly_depth > 0) --curly_depth;
        push(rule.kind, std::string(rule.text));
        pos_ += rule.text.size();
        matched = true;
        break;
      }
      if (matched) continue;
      if (c == '%') {  // "%" the operator, after "%}" had its chance above
        push(TokenKind::kMultiplicative, "%");
        ++pos_;
        continue;
      }
      if (c == '=') {
        push(TokenKind::kEquals, "=");
        ++pos_;
        continue;
      }
      if (c == '\'' || c == '"') {
        auto literal = string_literal(c);
        if (!literal.ok()) return literal.error();
        push(TokenKind::kString, *literal);
        continue;
      }
      if (is_digit(c)) {
        std::string number = digits();
        if (last() != TokenKind::kDot && pos_ + 1 < s_.size() && s_[pos_] == '.' &&
            is_digit(s_[pos_ + 1])) {
          ++pos_;
          number += "." + digits();
        }
        push(TokenKind::kNumber, number);
        continue;
      }
      if (is_word(c)) {
        size_t end = pos_;
        while (end < s_.size() && is_word(s_[end])) ++end;
        push(TokenKind::kIdentifier, s_.substr(pos_, end - pos_));
        pos_ = end;
        continue;
      }
      return fail(std::string("unexpected character '") + c + "'");
    }
    return std::move(tokens_);
  }

 private:
  TokenKind last() const { return tokens_.back().kind; }
  uint32_t line_here() const {
    return src_.lines.empty() ? 1 : src_.lines[std::min(pos_, src_.lines.size() - 1)];
  }
  void push(TokenKind kind, std::string_view text) {
    tokens_.push_back({kind, std::string(text), line_here()});
  }
  Error fail(const std::string& what) const {
    return make_error("bad_template", "line " + std::to_string(line_here()) + ": " + what);
  }
  std::string digits() {
    const size_t start = pos_;
    while (pos_ < s_.size() && is_digit(s_[pos_])) ++pos_;
    return std::string(s_.substr(start, pos_ - start));
  }
  void strip_trailing_whitespace() {
    if (!tokens_.empty() && last() == TokenKind::kText) {
      tokens_.back().text = std::string(js_trim_end(tokens_.back().text));
      if (tokens_.back().text.empty()) tokens_.pop_back();
    }
  }
  Result<std::string> string_literal(char quote) {
    ++pos_;
    std::string out;
    while (true) {
      if (pos_ >= s_.size()) return fail("unterminated string literal");
      const char c = s_[pos_];
      if (c == quote) break;
      ++pos_;
      if (c != '\\') {
        out += c;
        continue;
      }
      if (pos_ >= s_.size()) return fail("unterminated string literal");
      const char escaped = s_[pos_++];
      if (escaped == 'x' || escaped == 'u') {
        const size_t width = escaped == 'x' ? 2 : 4;
        if (pos_ + width > s_.size()) return fail("bad hexadecimal escape");
        uint32_t cp = 0;
        for (size_t i = 0; i < width; ++i) {
          const char h = s_[pos_ + i];
          const int v = is_digit(h)              ? h - '0'
                        : (h >= 'a' && h <= 'f') ? h - 'a' + 10
                        : (h >= 'A' && h <= 'F') ? h - 'A' + 10
                                                 : -1;
          if (v < 0) return fail("bad hexadecimal escape");
          cp = cp * 16 + static_cast<uint32_t>(v);
        }
        append_utf8(out, cp);
        pos_ += width;
        continue;
      }
      switch (escaped) {
        case 'n':
          out += '\n';
          break;
        case 't':
          out += '\t';
          break;
        case 'r':
          out += '\r';
          break;
        case 'b':
          out += '\b';
          break;
        case 'f':
          out += '\f';
          break;
        case 'v':
          out += '\v';
          break;
        case '\'':
        case '"':
        case '\\':
          out += escaped;
          break;
        default:
          return fail(std::string("unknown escape \\") + escaped);
      }
    }
    ++pos_;
    return out;
  }

  LinedText src_;
  std::string_view s_;
  size_t pos_ = 0;
  std::vector<Token> tokens_;
};

}  // namespace

Result<std::vector<Token>> tokenize_template(std::string_view source) {
  Lexer lexer(preprocess(source));
  return lexer.run();
}

}  // namespace kvmock::chat
