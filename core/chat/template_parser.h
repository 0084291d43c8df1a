// Tokens to a syntax tree. One node type for statements and expressions (a kind, a name or
// literal, children) keeps the tree small; the grammar and its operator precedence follow
// @huggingface/jinja's parser so the same template means the same thing here.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/chat/template_lexer.h"
#include "core/common/result.h"

namespace kvmock::chat {

enum class NodeKind {
  // statements
  kText,       // text: the literal output
  kOutput,     // children[0]: the expression to print
  kIf,         // children[0] test; body; alternate
  kFor,        // children[0] target, [1] iterable, [2] filter test or null; body; alternate (else)
  kSet,        // children[0] target, [1] value or null (then body is the block)
  kMacro,      // text: name; children: parameters; body
  kCallBlock,  // children[0] the call; params: caller parameters; body
  kFilterBlock,  // children[0] the filter (identifier or call); body
  kBreak,
  kContinue,
  kComment,
  // expressions
  kIdentifier,  // text
  kInteger,     // number
  kFloat,       // number
  kString,      // text
  kList,        // children
  kTuple,       // children
  kDict,        // children: key, value, key, value...
  kBinary,      // text: operator; children[0], [1]
  kUnary,       // text: operator (not, -, +); children[0]
  kMember,      // children[0] object, [1] property (computed: any expression)
  kDotMember,   // children[0] object, text: the attribute name
  kSlice,       // children[0] object, [1..3] start/stop/step (null when left out)
  kCall,        // children[0] callee, then arguments
  kKeywordArg,  // text: name; children[0] value
  kFilter,      // children[0] operand, [1] filter (identifier or call)
  kTest,        // text: test name; number: 1 when negated; children[0] operand
  kTernary,     // children[0] condition, [1] when true, [2] when false
  kSelect,      // children[0] value, [1] condition (a if c, no else)
};

struct Node {
  NodeKind kind;
  uint32_t line = 0;
  std::string text;
  double number = 0;
  std::vector<std::unique_ptr<Node>> children;  // a null child is a left-out part
  std::vector<std::unique_ptr<Node>> params;    // macro / caller parameters
  std::vector<std::unique_ptr<Node>> body;
  std::vector<std::unique_ptr<Node>> alternate;
};

using NodeList = std::vector<std::unique_ptr<Node>>;

// Errors "bad_template" with the line of the offending token.
Result<NodeList> parse_template(const std::vector<Token>& tokens);

}  // namespace kvmock::chat
