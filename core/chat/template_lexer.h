// Template source to tokens, the way @huggingface/jinja splits it (the reference our renders
// must match byte for byte): first the trim_blocks/lstrip_blocks rewrite of the source, then
// text runs, tag delimiters with their "-" whitespace control, and expression tokens. Every
// token keeps the source line it came from so parse errors can name it.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/common/result.h"

namespace kvmock::chat {

enum class TokenKind {
  kText,
  kNumber,
  kString,
  kIdentifier,
  kEquals,
  kOpenParen,
  kCloseParen,
  kOpenStatement,
  kCloseStatement,
  kOpenExpression,
  kCloseExpression,
  kOpenBracket,
  kCloseBracket,
  kOpenBrace,
  kCloseBrace,
  kComma,
  kDot,
  kColon,
  kPipe,
  kAdditive,        // + - ~
  kMultiplicative,  // * / // %
  kPower,           // **
  kComparison,      // < > <= >= == !=
  kUnary,           // a lone + or - before an operand
  kComment,
};

struct Token {
  TokenKind kind;
  std::string text;
  uint32_t line;
};

Result<std::vector<Token>> tokenize_template(std::string_view source);

}  // namespace kvmock::chat
