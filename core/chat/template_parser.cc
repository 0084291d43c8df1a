// See template_parser.h. A recursive-descent parser; a failure unwinds as a private
// exception that parse_template turns into an Error, so nothing leaves this file throwing.
// Nesting is bounded so a hostile template cannot exhaust the stack.
#include "core/chat/template_parser.h"

#include <cstdlib>
#include <initializer_list>
#include <string_view>
#include <utility>

namespace kvmock::chat {
namespace {

constexpr int kMaxNesting = 128;

struct ParseFailure {
  std::string message;
};

class Parser {
 public:
  explicit Parser(const std::vector<Token>& tokens) : t_(tokens) {}

  NodeList program() {
    NodeList out;
    while (pos_ < t_.size()) out.push_back(any());
    return out;
  }

 private:
  struct DepthGuard {
    explicit DepthGuard(Parser& p) : parser(p) {
      if (++parser.depth_ > kMaxNesting)
        parser.fail("nesting deeper than " + std::to_string(kMaxNesting));
    }
    ~DepthGuard() { --parser.depth_; }
    Parser& parser;
  };

  [[noreturn]] void fail(const std::string& what) const {
    const uint32_t line = pos_ < t_.size() ? t_[pos_].line : (t_.empty() ? 1 : t_.back().line);
    throw ParseFailure{"line " + std::to_string(line) + ": " + what};
  }
  bool at_end() const { return pos_ >= t_.size(); }
  bool is(TokenKind kind) const { return !at_end() && t_[pos_].kind == kind; }
  bool is_word(std::string_view word, size_t ahead = 0) const {
    return pos_ + ahead < t_.size() && t_[pos_ + ahead].kind == TokenKind::kIdentifier &&
           t_[pos_ + ahead].text == word;
  }
  bool is_statement(std::initializer_list<std::string_view> names) const {
    if (!is(TokenKind::kOpenStatement) || pos_ + 1 >= t_.size() ||
        t_[pos_ + 1].kind != TokenKind::kIdentifier)
      return false;
    for (auto name : names) {
      if (t_[pos_ + 1].text == name) return true;
    }
    return false;
  }
  const Token& expect(TokenKind kind, const char* what) {
    if (!is(kind)) fail(std::string("expected ") + what);
    return t_[pos_++];
  }
  void expect_word(std::string_view word) {
    if (!is_word(word)) fail("expected '" + std::string(word) + "'");
    ++pos_;
  }
  std::unique_ptr<Node> node(NodeKind kind) {
    auto n = std::make_unique<Node>();
    n->kind = kind;
    n->line = at_end() ? (t_.empty() ? 1 : t_.back().line) : t_[pos_].line;
    return n;
  }
  // Parses statements until one of `enders` opens; an unclosed block names its opener.
  NodeList block_until(std::initializer_list<std::string_view> enders, const char* opener,
                       uint32_t line) {
    NodeList out;
    while (!is_statement(enders)) {
      if (at_end()) {
        throw ParseFailure{"line " + std::to_string(line) + ": unclosed '" + opener + "' block"};
      }
      out.push_back(any());
    }
    return out;
  }
  void expect_end(std::string_view word) {
    expect(TokenKind::kOpenStatement, "'{%'");
    expect_word(word);
    expect(TokenKind::kCloseStatement, "'%}'");
  }

  std::unique_ptr<Node> any() {
    DepthGuard guard(*this);
    switch (t_[pos_].kind) {
      case TokenKind::kComment: {
        auto n = node(NodeKind::kComment);
        ++pos_;
        return n;
      }
      case TokenKind::kText: {
        auto n = node(NodeKind::kText);
        n->text = t_[pos_++].text;
        return n;
      }
      case TokenKind::kOpenStatement:
        return statement();
      case TokenKind::kOpenExpression: {
        ++pos_;
        auto n = node(NodeKind::kOutput);
        n->children.push_back(expression());
        expect(TokenKind::kCloseExpression, "'}}'");
        return n;
      }
      default:
        fail("unexpected token '" + t_[pos_].text + "'");
    }
  }

  std::unique_ptr<Node> statement() {
    ++pos_;  // {%
    if (!is(TokenKind::kIdentifier)) fail("expected a statement name");
    const std::string name = t_[pos_].text;
    const uint32_t line = t_[pos_].line;
    ++pos_;
    if (name == "set") return set_statement(line);
    if (name == "if") {
      auto n = if_statement(line);
      expect_end("endif");
      return n;
    }
    if (name == "for") {
      auto n = for_statement(line);
      expect_end("endfor");
      return n;
    }
    if (name == "macro") {
      auto n = node(NodeKind::kMacro);
      n->line = line;
      n->text = expect(TokenKind::kIdentifier, "a macro name").text;
      n->params = arguments(true);
      expect(TokenKind::kCloseStatement, "'%}'");
      n->body = block_until({"endmacro"}, "macro", line);
      expect_end("endmacro");
      return n;
    }
    if (name == "call") {
      auto n = node(NodeKind::kCallBlock);
      n->line = line;
      if (is(TokenKind::kOpenParen)) n->params = arguments(true);
      auto callee = node(NodeKind::kIdentifier);
      callee->text = expect(TokenKind::kIdentifier, "a macro name after 'call'").text;
      auto call = node(NodeKind::kCall);
      call->children.push_back(std::move(callee));
      for (auto& a : arguments(false)) call->children.push_back(std::move(a));
      n->children.push_back(std::move(call));
      expect(TokenKind::kCloseStatement, "'%}'");
      n->body = block_until({"endcall"}, "call", line);
      expect_end("endcall");
      return n;
    }
    if (name == "filter") {
      auto n = node(NodeKind::kFilterBlock);
      n->line = line;
      n->children.push_back(filter_spec());
      expect(TokenKind::kCloseStatement, "'%}'");
      n->body = block_until({"endfilter"}, "filter", line);
      expect_end("endfilter");
      return n;
    }
    if (name == "break" || name == "continue") {
      auto n = node(name == "break" ? NodeKind::kBreak : NodeKind::kContinue);
      expect(TokenKind::kCloseStatement, "'%}'");
      return n;
    }
    throw ParseFailure{"line " + std::to_string(line) + ": unknown tag '" + name + "'"};
  }

  std::unique_ptr<Node> set_statement(uint32_t line) {
    auto n = node(NodeKind::kSet);
    n->line = line;
    n->children.push_back(sequence(false));
    if (is(TokenKind::kEquals)) {
      ++pos_;
      n->children.push_back(sequence(false));
    } else {
      n->children.push_back(nullptr);
      expect(TokenKind::kCloseStatement, "'%}'");
      n->body = block_until({"endset"}, "set", line);
      expect(TokenKind::kOpenStatement, "'{%'");
      expect_word("endset");
    }
    expect(TokenKind::kCloseStatement, "'%}'");
    return n;
  }

  std::unique_ptr<Node> if_statement(uint32_t line) {
    DepthGuard guard(*this);
    auto n = node(NodeKind::kIf);
    n->line = line;
    n->children.push_back(expression());
    expect(TokenKind::kCloseStatement, "'%}'");
    n->body = block_until({"elif", "else", "endif"}, "if", line);
    if (is_statement({"elif"})) {
      pos_ += 2;
      n->alternate.push_back(if_statement(t_[pos_ - 1].line));
    } else if (is_statement({"else"})) {
      pos_ += 2;
      expect(TokenKind::kCloseStatement, "'%}'");
      n->alternate = block_until({"endif"}, "if", line);
    }
    return n;
  }

  std::unique_ptr<Node> for_statement(uint32_t line) {
    auto n = node(NodeKind::kFor);
    n->line = line;
    auto target = sequence(true);
    if (target->kind != NodeKind::kIdentifier && target->kind != NodeKind::kTuple)
      fail("expected a loop variable");
    n->children.push_back(std::move(target));
    expect_word("in");
    auto iterable = expression();
    if (iterable->kind == NodeKind::kSelect) {
      n->children.push_back(std::move(iterable->children[0]));
      n->children.push_back(std::move(iterable->children[1]));
    } else {
      n->children.push_back(std::move(iterable));
      n->children.push_back(nullptr);
    }
    expect(TokenKind::kCloseStatement, "'%}'");
    n->body = block_until({"endfor", "else"}, "for", line);
    if (is_statement({"else"})) {
      pos_ += 2;
      expect(TokenKind::kCloseStatement, "'%}'");
      n->alternate = block_until({"endfor"}, "for", line);
    }
    return n;
  }

  // Comma-separated expressions become a tuple.
  std::unique_ptr<Node> sequence(bool primary_only) {
    auto first = primary_only ? primary() : expression();
    if (!is(TokenKind::kComma)) return first;
    auto tuple = node(NodeKind::kTuple);
    tuple->children.push_back(std::move(first));
    while (is(TokenKind::kComma)) {
      ++pos_;
      tuple->children.push_back(primary_only ? primary() : expression());
    }
    return tuple;
  }

  NodeList arguments(bool declaration) {
    expect(TokenKind::kOpenParen, "'('");
    NodeList out;
    while (!is(TokenKind::kCloseParen)) {
      if (at_end()) fail("unclosed argument list");
      auto argument = expression();
      if (is(TokenKind::kEquals)) {
        ++pos_;
        if (argument->kind != NodeKind::kIdentifier) fail("expected a name before '='");
        auto keyword = node(NodeKind::kKeywordArg);
        keyword->text = argument->text;
        keyword->children.push_back(expression());
        argument = std::move(keyword);
      }
      if (declaration && argument->kind != NodeKind::kIdentifier &&
          argument->kind != NodeKind::kKeywordArg) {
        fail("expected a parameter name");
      }
      out.push_back(std::move(argument));
      if (is(TokenKind::kComma)) ++pos_;
    }
    ++pos_;
    return out;
  }

  std::unique_ptr<Node> expression() {
    DepthGuard guard(*this);
    auto value = logical_or();
    if (is_word("if")) {
      ++pos_;
      auto test = logical_or();
      if (is_word("else")) {
        ++pos_;
        auto n = node(NodeKind::kTernary);
        n->children.push_back(std::move(test));
        n->children.push_back(std::move(value));
        n->children.push_back(expression());
        return n;
      }
      auto n = node(NodeKind::kSelect);
      n->children.push_back(std::move(value));
      n->children.push_back(std::move(test));
      return n;
    }
    return value;
  }

  std::unique_ptr<Node> binary(std::string op, std::unique_ptr<Node> left,
                               std::unique_ptr<Node> right) {
    auto n = node(NodeKind::kBinary);
    n->text = std::move(op);
    n->children.push_back(std::move(left));
    n->children.push_back(std::move(right));
    return n;
  }

  std::unique_ptr<Node> logical_or() {
    auto left = logical_and();
    while (is_word("or")) {
      ++pos_;
      left = binary("or", std::move(left), logical_and());
    }
    return left;
  }
  std::unique_ptr<Node> logical_and() {
    auto left = logical_not();
    while (is_word("and")) {
      ++pos_;
      left = binary("and", std::move(left), logical_not());
    }
    return left;
  }
  std::unique_ptr<Node> logical_not() {
    if (is_word("not")) {
      DepthGuard guard(*this);
      ++pos_;
      auto n = node(NodeKind::kUnary);
      n->text = "not";
      n->children.push_back(logical_not());
      return n;
    }
    return comparison();
  }
  std::unique_ptr<Node> comparison() {
    auto left = additive();
    while (true) {
      std::string op;
      if (is_word("not") && is_word("in", 1)) {
        op = "not in";
        pos_ += 2;
      } else if (is_word("in")) {
        op = "in";
        ++pos_;
      } else if (is(TokenKind::kComparison)) {
        op = t_[pos_++].text;
      } else {
        return left;
      }
      left = binary(op, std::move(left), additive());
    }
  }
  std::unique_ptr<Node> additive() {
    auto left = multiplicative();
    while (is(TokenKind::kAdditive)) {
      std::string op = t_[pos_++].text;
      left = binary(op, std::move(left), multiplicative());
    }
    return left;
  }
  std::unique_ptr<Node> multiplicative() {
    auto left = power();
    while (is(TokenKind::kMultiplicative)) {
      std::string op = t_[pos_++].text;
      left = binary(op, std::move(left), power());
    }
    return left;
  }
  std::unique_ptr<Node> power() {
    auto left = test();
    while (is(TokenKind::kPower)) {
      ++pos_;
      left = binary("**", std::move(left), test());
    }
    return left;
  }
  std::unique_ptr<Node> test() {
    auto operand = filter();
    while (is_word("is")) {
      ++pos_;
      auto n = node(NodeKind::kTest);
      if (is_word("not")) {
        n->number = 1;
        ++pos_;
      }
      n->text = expect(TokenKind::kIdentifier, "a test name").text;
      n->children.push_back(std::move(operand));
      operand = std::move(n);
    }
    return operand;
  }
  std::unique_ptr<Node> filter_spec() {
    auto name = node(NodeKind::kIdentifier);
    name->text = expect(TokenKind::kIdentifier, "a filter name").text;
    if (!is(TokenKind::kOpenParen)) return name;
    auto call = node(NodeKind::kCall);
    call->children.push_back(std::move(name));
    for (auto& a : arguments(false)) call->children.push_back(std::move(a));
    return call;
  }
  std::unique_ptr<Node> filter() {
    auto operand = unary_sign();
    while (is(TokenKind::kPipe)) {
      ++pos_;
      auto n = node(NodeKind::kFilter);
      n->children.push_back(std::move(operand));
      n->children.push_back(filter_spec());
      operand = std::move(n);
    }
    return operand;
  }
  std::unique_ptr<Node> unary_sign() {
    if ((is(TokenKind::kUnary) || is(TokenKind::kAdditive)) &&
        (t_[pos_].text == "-" || t_[pos_].text == "+")) {
      DepthGuard guard(*this);
      auto n = node(NodeKind::kUnary);
      n->text = t_[pos_++].text;
      n->children.push_back(unary_sign());
      return n;
    }
    return call_member(primary());
  }
  std::unique_ptr<Node> call_member(std::unique_ptr<Node> object) {
    while (true) {
      if (is(TokenKind::kDot)) {
        ++pos_;
        if (is(TokenKind::kIdentifier)) {
          auto n = node(NodeKind::kDotMember);
          n->text = t_[pos_++].text;
          n->children.push_back(std::move(object));
          object = std::move(n);
        } else if (is(TokenKind::kNumber) &&
                   t_[pos_].text.find_first_of(".-+") == std::string::npos) {
          auto n = node(NodeKind::kMember);
          auto index = node(NodeKind::kInteger);
          index->number = std::strtod(t_[pos_++].text.c_str(), nullptr);
          n->children.push_back(std::move(object));
          n->children.push_back(std::move(index));
          object = std::move(n);
        } else {
          fail("expected a name after '.'");
        }
      } else if (is(TokenKind::kOpenBracket)) {
        ++pos_;
        object = subscript(std::move(object));
      } else if (is(TokenKind::kOpenParen)) {
        DepthGuard guard(*this);
        auto n = node(NodeKind::kCall);
        n->children.push_back(std::move(object));
        for (auto& a : arguments(false)) n->children.push_back(std::move(a));
        object = std::move(n);
      } else {
        return object;
      }
    }
  }
  std::unique_ptr<Node> subscript(std::unique_ptr<Node> object) {
    NodeList parts;
    bool is_slice = false;
    while (!is(TokenKind::kCloseBracket)) {
      if (at_end()) fail("unclosed '['");
      if (is(TokenKind::kColon)) {
        parts.push_back(nullptr);
        ++pos_;
        is_slice = true;
      } else {
        parts.push_back(expression());
        if (is(TokenKind::kColon)) {
          ++pos_;
          is_slice = true;
        }
      }
    }
    ++pos_;
    if (parts.empty()) fail("empty subscript");
    if (is_slice) {
      if (parts.size() > 3) fail("a slice has at most 3 parts");
      auto n = node(NodeKind::kSlice);
      n->children.push_back(std::move(object));
      for (auto& p : parts) n->children.push_back(std::move(p));
      while (n->children.size() < 4) n->children.push_back(nullptr);
      return n;
    }
    auto n = node(NodeKind::kMember);
    n->children.push_back(std::move(object));
    n->children.push_back(std::move(parts[0]));
    return n;
  }

  std::unique_ptr<Node> primary() {
    DepthGuard guard(*this);
    if (at_end()) fail("unexpected end of template");
    const Token& token = t_[pos_++];
    switch (token.kind) {
      case TokenKind::kNumber: {
        auto n =
            node(token.text.find('.') != std::string::npos ? NodeKind::kFloat : NodeKind::kInteger);
        n->number = std::strtod(token.text.c_str(), nullptr);
        return n;
      }
      case TokenKind::kString: {
        auto n = node(NodeKind::kString);
        n->text = token.text;
        while (is(TokenKind::kString)) n->text += t_[pos_++].text;  // adjacent literals join
        return n;
      }
      case TokenKind::kIdentifier: {
        auto n = node(NodeKind::kIdentifier);
        n->text = token.text;
        return n;
      }
      case TokenKind::kOpenParen: {
        auto inner = sequence(false);
        expect(TokenKind::kCloseParen, "')'");
        return inner;
      }
      case TokenKind::kOpenBracket: {
        auto n = node(NodeKind::kList);
        while (!is(TokenKind::kCloseBracket)) {
          if (at_end()) fail("unclosed '['");
          n->children.push_back(expression());
          if (is(TokenKind::kComma)) ++pos_;
        }
        ++pos_;
        return n;
      }
      case TokenKind::kOpenBrace: {
        auto n = node(NodeKind::kDict);
        while (!is(TokenKind::kCloseBrace)) {
          if (at_end()) fail("unclosed '{'");
          n->children.push_back(expression());
          expect(TokenKind::kColon, "':' in a dict literal");
          n->children.push_back(expression());
          if (is(TokenKind::kComma)) ++pos_;
        }
        ++pos_;
        return n;
      }
      default:
        --pos_;
        fail("unexpected '" + token.text + "'");
    }
  }

  const std::vector<Token>& t_;
  size_t pos_ = 0;
  int depth_ = 0;
};

}  // namespace

Result<NodeList> parse_template(const std::vector<Token>& tokens) {
  try {
    Parser parser(tokens);
    return parser.program();
  } catch (const ParseFailure& failure) {
    return make_error("bad_template", failure.message);
  }
}

}  // namespace kvmock::chat
