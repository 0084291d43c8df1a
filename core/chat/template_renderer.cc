// See template_renderer.h. A tree-walking interpreter. Runtime failures unwind as a private
// exception caught in render_template; nothing escapes it. Where @huggingface/jinja has a
// quirk (strip() ignoring its argument, none printing as "", JavaScript number formatting,
// loose ==), this follows the quirk: matching its output is the point.
#include "core/chat/template_renderer.h"

#include <utf8proc.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <unordered_map>
#include <unordered_set>

#include "core/chat/template_text.h"
#include "core/chat/template_value.h"

namespace kvmock::chat {
namespace {

using Type = Value::Type;
constexpr int kMaxValueNesting = 128;

struct RenderFailure {
  std::string message;
};
[[noreturn]] void fail(std::string message) { throw RenderFailure{std::move(message)}; }

// ---- JavaScript-compatible text forms -------------------------------------------------

std::string js_number(double x) {
  if (std::isnan(x)) return "NaN";
  if (std::isinf(x)) return x > 0 ? "Infinity" : "-Infinity";
  if (x == 0) return "0";
  char buffer[64];
  const auto written =
      std::to_chars(buffer, buffer + sizeof buffer, x, std::chars_format::scientific);
  std::string s(buffer, written.ptr);
  const bool negative = s[0] == '-';
  if (negative) s.erase(0, 1);
  const size_t e = s.find('e');
  const int exponent = std::atoi(s.c_str() + e + 1);
  std::string digits;
  for (size_t i = 0; i < e; ++i) {
    if (s[i] != '.') digits += s[i];
  }
  const int k = static_cast<int>(digits.size());
  const int n = exponent + 1;
  std::string out;
  if (k <= n && n <= 21) {
    out = digits + std::string(static_cast<size_t>(n - k), '0');
  } else if (0 < n && n <= 21) {
    out = digits.substr(0, static_cast<size_t>(n)) + "." + digits.substr(static_cast<size_t>(n));
  } else if (-6 < n && n <= 0) {
    out = "0." + std::string(static_cast<size_t>(-n), '0') + digits;
  } else {
    out = digits.substr(0, 1);
    if (k > 1) out += "." + digits.substr(1);
    out += n - 1 >= 0 ? "e+" : "e-";
    out += std::to_string(std::abs(n - 1));
  }
  return negative ? "-" + out : out;
}

std::string float_display(double x) {
  if (x == 0 && std::signbit(x)) return "-0.0";
  if (std::isfinite(x) && std::fmod(x, 1.0) == 0) {
    if (std::fabs(x) >= 1e21) return js_number(x);
    char buffer[400];
    const auto written =
        std::to_chars(buffer, buffer + sizeof buffer, x, std::chars_format::fixed, 1);
    return std::string(buffer, written.ptr);
  }
  return js_number(x);
}

void append_hex4(std::string& out, uint32_t unit) {
  static const char kHex[] = "0123456789abcdef";
  out += "\\u";
  for (int shift = 12; shift >= 0; shift -= 4) out += kHex[(unit >> shift) & 0xF];
}

std::string json_quote(const std::string& s, bool ensure_ascii) {
  std::string out = "\"";
  for (size_t pos = 0; pos < s.size();) {
    size_t length = 0;
    const uint32_t cp = decode_utf8(s, pos, &length);
    switch (cp) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (cp < 0x20) {
          append_hex4(out, cp);
        } else if (ensure_ascii && cp >= 0x7F) {
          if (cp >= 0x10000) {
            append_hex4(out, 0xD800 + ((cp - 0x10000) >> 10));
            append_hex4(out, 0xDC00 + ((cp - 0x10000) & 0x3FF));
          } else {
            append_hex4(out, cp);
          }
        } else {
          out.append(s, pos, length);
        }
    }
    pos += length;
  }
  return out + "\"";
}

struct JsonStyle {
  int indent = 0;
  bool ensure_ascii = false;
  bool sort_keys = false;
  bool has_separators = false;
  std::string item_separator;
  std::string key_separator;
  bool undefined_as_null = true;
};

void to_json(const Value& v, const JsonStyle& style, int depth, std::string& out) {
  if (depth > kMaxValueNesting) fail("value nested too deeply to print");
  std::string item_sep = style.has_separators ? style.item_separator : (style.indent ? "," : ", ");
  std::string key_sep = style.has_separators ? style.key_separator : ": ";
  switch (v.type) {
    case Type::kNone:
      out += "null";
      return;
    case Type::kUndefined:
      out += style.undefined_as_null ? "null" : "undefined";
      return;
    case Type::kBool:
      out += v.boolean ? "true" : "false";
      return;
    case Type::kInteger:
    case Type::kFloat:
      out += std::isfinite(v.number) ? js_number(v.number) : "null";
      return;
    case Type::kString:
      out += json_quote(v.str(), style.ensure_ascii);
      return;
    case Type::kFunction:
      fail("cannot convert a function to JSON");
    default:
      break;
  }
  const std::string indent(static_cast<size_t>(std::max(style.indent, 0)), ' ');
  std::string base = "\n";
  for (int i = 0; i < depth; ++i) base += indent;
  const std::string child = base + indent;
  if (v.type == Type::kList) {
    const bool pretty = style.indent > 0 && !v.list->empty();
    out += '[';
    for (size_t i = 0; i < v.list->size(); ++i) {
      out += i == 0 ? (pretty ? child : "") : item_sep + (pretty ? child : "");
      to_json((*v.list)[i], style, depth + 1, out);
    }
    if (pretty) out += base;
    out += ']';
    return;
  }
  ValueDict entries = *v.dict;
  if (style.sort_keys) {
    std::stable_sort(entries.begin(), entries.end(),
                     [](const auto& a, const auto& b) { return a.first < b.first; });
  }
  out += '{';
  for (size_t i = 0; i < entries.size(); ++i) {
    if (i > 0) out += item_sep;
    if (style.indent > 0) out += child;
    out += json_quote(entries[i].first, style.ensure_ascii) + key_sep;
    to_json(entries[i].second, style, depth + 1, out);
  }
  if (style.indent > 0 && !entries.empty()) out += base;
  out += '}';
}

std::string json_text(const Value& v, bool undefined_as_null) {
  JsonStyle style;
  style.undefined_as_null = undefined_as_null;
  std::string out;
  to_json(v, style, 0, out);
  return out;
}

// RuntimeValue.toString(): what {{ }} prints.
std::string display(const Value& v) {
  switch (v.type) {
    case Type::kUndefined:
    case Type::kNone:
      return "undefined";
    case Type::kBool:
      return v.boolean ? "true" : "false";
    case Type::kInteger:
      return js_number(v.number);
    case Type::kFloat:
      return float_display(v.number);
    case Type::kString:
      return v.str();
    case Type::kFunction:
      return "[function]";
    default:
      return json_text(v, false);
  }
}

// The underlying JavaScript value's toString(), which + and ~ concatenate.
std::string primitive_text(const Value& v) {
  switch (v.type) {
    case Type::kInteger:
    case Type::kFloat:
      return js_number(v.number);
    case Type::kList: {
      std::string out;
      for (size_t i = 0; i < v.list->size(); ++i) {
        if (i > 0) out += ',';
        out += display((*v.list)[i]);
      }
      return out;
    }
    case Type::kDict:
    case Type::kNamespace:
      return "[object Map]";
    default:
      return display(v);
  }
}

bool truthy(const Value& v) {
  switch (v.type) {
    case Type::kUndefined:
    case Type::kNone:
      return false;
    case Type::kBool:
      return v.boolean;
    case Type::kInteger:
    case Type::kFloat:
      return v.number != 0 && !std::isnan(v.number);
    case Type::kString:
      return !v.str().empty();
    case Type::kList:
      return !v.list->empty();
    case Type::kDict:
      return !v.dict->empty();
    default:
      return true;
  }
}

bool is_nullish(const Value& v) { return v.type == Type::kUndefined || v.type == Type::kNone; }

// JavaScript Number(string), for loose equality.
double js_string_to_number(const std::string& s) {
  const std::string_view trimmed = js_trim(s);
  if (trimmed.empty()) return 0;
  const std::string t(trimmed);
  if (t == "Infinity" || t == "+Infinity") return INFINITY;
  if (t == "-Infinity") return -INFINITY;
  for (char c : t) {
    if (!((c >= '0' && c <= '9') || c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-'))
      return NAN;
  }
  char* end = nullptr;
  const double value = std::strtod(t.c_str(), &end);
  return end == t.c_str() + t.size() ? value : NAN;
}

double as_number(const Value& v) {
  if (v.type == Type::kBool) return v.boolean ? 1 : 0;
  if (v.type == Type::kString) return js_string_to_number(v.str());
  return v.number;
}

bool same_object(const Value& a, const Value& b) {
  if (a.type == Type::kList) return a.list == b.list;
  if (a.type == Type::kFunction) return a.function == b.function;
  return a.dict == b.dict;
}

bool is_object(const Value& v) {
  return v.type == Type::kList || v.type == Type::kDict || v.type == Type::kNamespace ||
         v.type == Type::kFunction;
}

// `a.value == b.value` in JavaScript.
bool loose_equal(const Value& a, const Value& b) {
  if (is_nullish(a) || is_nullish(b)) return is_nullish(a) && is_nullish(b);
  if (is_object(a) || is_object(b)) return a.type == b.type && same_object(a, b);
  if (a.type == Type::kString && b.type == Type::kString) return a.str() == b.str();
  if (a.type == Type::kBool && b.type == Type::kBool) return a.boolean == b.boolean;
  return as_number(a) == as_number(b);
}

// `a.value === b.value` in JavaScript.
bool strict_equal(const Value& a, const Value& b) {
  if (is_nullish(a) || is_nullish(b)) return is_nullish(a) && is_nullish(b);
  if (a.is_number() && b.is_number()) return a.number == b.number;
  if (a.type != b.type) return false;
  switch (a.type) {
    case Type::kString:
      return a.str() == b.str();
    case Type::kBool:
      return a.boolean == b.boolean;
    default:
      return same_object(a, b);
  }
}

// ---- strings -----------------------------------------------------------------------------

size_t utf16_length(const std::string& s) {
  size_t units = 0;
  for (size_t pos = 0; pos < s.size();) {
    size_t length = 0;
    units += decode_utf8(s, pos, &length) >= 0x10000 ? 2 : 1;
    pos += length;
  }
  return units;
}

std::vector<std::string> code_points(const std::string& s) {
  std::vector<std::string> out;
  for (size_t pos = 0; pos < s.size();) {
    size_t length = 0;
    decode_utf8(s, pos, &length);
    out.push_back(s.substr(pos, length));
    pos += length;
  }
  return out;
}

// Simple (one code point to one) Unicode case mapping; JavaScript's full mapping differs
// only for a few characters such as German sharp s.
std::string ascii_case(const std::string& s, bool upper) {
  std::string out;
  out.reserve(s.size());
  for (size_t pos = 0; pos < s.size();) {
    size_t length = 0;
    const uint32_t cp = decode_utf8(s, pos, &length);
    if (cp < 0x80 || length > 1) {
      const auto mapped = upper ? utf8proc_toupper(static_cast<utf8proc_int32_t>(cp))
                                : utf8proc_tolower(static_cast<utf8proc_int32_t>(cp));
      append_utf8(out, static_cast<uint32_t>(mapped));
    } else {
      out += s[pos];  // a stray byte stays as it is
    }
    pos += length;
  }
  return out;
}

bool is_ascii_word(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

// /\b\w/g uppercased: the first ASCII word character of each word.
std::string title_case(std::string s) {
  for (size_t i = 0; i < s.size(); ++i) {
    if (is_ascii_word(s[i]) && (i == 0 || !is_ascii_word(s[i - 1])) && s[i] >= 'a' && s[i] <= 'z') {
      s[i] = static_cast<char>(s[i] - 32);
    }
  }
  return s;
}

std::string replace_all(const std::string& s, const std::string& from, const std::string& to,
                        double count) {
  if (count == 0) return s;
  double remaining = (std::isnan(count) || count < 0) ? INFINITY : count;
  std::string out;
  if (from.empty()) {
    const auto points = code_points(s);
    for (size_t i = 0; i <= points.size(); ++i) {
      if (remaining > 0) {
        out += to;
        --remaining;
      }
      if (i < points.size()) out += points[i];
    }
    return out;
  }
  size_t pos = 0;
  while (true) {
    const size_t hit = remaining > 0 ? s.find(from, pos) : std::string::npos;
    if (hit == std::string::npos) break;
    out.append(s, pos, hit - pos);
    out += to;
    pos = hit + from.size();
    --remaining;
  }
  out.append(s, pos, std::string::npos);
  return out;
}

// parseInt(s, 10) / parseFloat(s); NaN when no number starts the string.
double js_parse_number(const std::string& s, bool integer) {
  const std::string t(js_trim_start(s));
  size_t i = 0;
  if (i < t.size() && (t[i] == '+' || t[i] == '-')) ++i;
  if (!integer && t.compare(i, 8, "Infinity") == 0) return t[0] == '-' ? -INFINITY : INFINITY;
  const size_t digits_start = i;
  while (i < t.size() && t[i] >= '0' && t[i] <= '9') ++i;
  bool any = i > digits_start;
  if (!integer) {
    if (i < t.size() && t[i] == '.') {
      const size_t after = i + 1;
      size_t j = after;
      while (j < t.size() && t[j] >= '0' && t[j] <= '9') ++j;
      if (j > after || any) {
        any = any || j > after;
        i = j;
      }
    }
    if (any && i < t.size() && (t[i] == 'e' || t[i] == 'E')) {
      size_t j = i + 1;
      if (j < t.size() && (t[j] == '+' || t[j] == '-')) ++j;
      const size_t exp_start = j;
      while (j < t.size() && t[j] >= '0' && t[j] <= '9') ++j;
      if (j > exp_start) i = j;
    }
  }
  if (!any) return NAN;
  return std::strtod(t.substr(0, i).c_str(), nullptr);
}

// ---- JSON context in ------------------------------------------------------------------

bool is_array_index_key(const std::string& key) {
  if (key.empty() || key.size() > 10 || (key.size() > 1 && key[0] == '0')) return false;
  for (char c : key) {
    if (c < '0' || c > '9') return false;
  }
  return std::stoull(key) < 4294967295ULL;
}

Value from_json(const nlohmann::ordered_json& j, int depth) {
  if (depth > kMaxValueNesting) fail("context nested too deeply");
  switch (j.type()) {
    case nlohmann::ordered_json::value_t::null:
      return Value::none();
    case nlohmann::ordered_json::value_t::boolean:
      return Value::of_bool(j.get<bool>());
    case nlohmann::ordered_json::value_t::number_integer:
    case nlohmann::ordered_json::value_t::number_unsigned:
    case nlohmann::ordered_json::value_t::number_float: {
      // JavaScript cannot tell 1.0 from 1: an integral number is an integer there.
      const double n = j.get<double>();
      return std::isfinite(n) && std::floor(n) == n ? Value::of_integer(n) : Value::of_float(n);
    }
    case nlohmann::ordered_json::value_t::string:
      return Value::of_string(j.get<std::string>());
    case nlohmann::ordered_json::value_t::array: {
      ValueList items;
      for (const auto& item : j) items.push_back(from_json(item, depth + 1));
      return Value::of_list(std::move(items));
    }
    case nlohmann::ordered_json::value_t::object: {
      // JavaScript objects list array-index keys first, ascending, then the rest in order.
      ValueDict indexed, named;
      for (const auto& [key, item] : j.items()) {
        (is_array_index_key(key) ? indexed : named).emplace_back(key, from_json(item, depth + 1));
      }
      std::stable_sort(indexed.begin(), indexed.end(), [](const auto& a, const auto& b) {
        return std::stoull(a.first) < std::stoull(b.first);
      });
      for (auto& entry : named) indexed.push_back(std::move(entry));
      return Value::of_dict(std::move(indexed));
    }
    default:
      return Value::undefined();
  }
}

// ---- scopes ---------------------------------------------------------------------------

struct Scope {
  explicit Scope(std::shared_ptr<Scope> p) : parent(std::move(p)) {}
  std::unordered_map<std::string, Value> variables;
  std::shared_ptr<Scope> parent;

  const Value* lookup(const std::string& name) const {
    for (const Scope* s = this; s; s = s->parent.get()) {
      auto it = s->variables.find(name);
      if (it != s->variables.end()) return &it->second;
    }
    return nullptr;
  }
};
using ScopePtr = std::shared_ptr<Scope>;

enum class Flow { kNormal, kBreak, kContinue };

}  // namespace

struct Interpreter {
  RenderLimits limits;
  long long steps = 0;
  int depth = 0;
  int now_year = 1970, now_month = 1, now_day = 1, now_hour = 0, now_minute = 0;
  Value pending_caller;

  struct DepthGuard {
    explicit DepthGuard(Interpreter& i) : in(i) {
      if (++in.depth > in.limits.max_depth) fail("template recursion too deep");
    }
    ~DepthGuard() { --in.depth; }
    Interpreter& in;
  };

  void step(long long n = 1) {
    steps += n;
    if (steps > limits.max_steps) fail("template took too many steps");
  }
  void check_size(size_t bytes) const {
    if (bytes > limits.max_output_bytes) fail("template output too large");
  }

  Value make_list(ValueList items, bool tuple = false) {
    step(static_cast<long long>(items.size()));
    Value v = Value::of_list(std::move(items), tuple);
    if (v.depth > kMaxValueNesting) fail("value nested too deeply");
    return v;
  }
  Value make_string(std::string s) {
    check_size(s.size());
    return Value::of_string(std::move(s));
  }

  // ---- statements -----------------------------------------------------------------------

  Flow render_block(const NodeList& nodes, const ScopePtr& scope, std::string& out) {
    DepthGuard guard(*this);
    for (const auto& node : nodes) {
      step();
      switch (node->kind) {
        case NodeKind::kText:
          out += node->text;
          break;
        case NodeKind::kComment:
          break;
        case NodeKind::kIf: {
          const Flow flow = render_block(
              truthy(eval(*node->children[0], scope)) ? node->body : node->alternate, scope, out);
          if (flow != Flow::kNormal) return flow;
          break;
        }
        case NodeKind::kFor:
          render_for(*node, scope, out);
          break;
        case NodeKind::kSet:
          execute_set(*node, scope);
          break;
        case NodeKind::kBreak:
          return Flow::kBreak;
        case NodeKind::kContinue:
          return Flow::kContinue;
        case NodeKind::kMacro:
          define_macro(*node, scope);
          break;
        case NodeKind::kOutput: {
          const Value v = eval(*node->children[0], scope);
          if (!is_nullish(v)) out += display(v);
          break;
        }
        case NodeKind::kCallBlock:
          out += display(call_block(*node, scope));
          break;
        case NodeKind::kFilterBlock: {
          std::string inner;
          if (render_block(node->body, scope, inner) != Flow::kNormal) fail("break outside a loop");
          const Value v = apply_filter(make_string(std::move(inner)), *node->children[0], scope);
          if (!is_nullish(v)) out += display(v);
          break;
        }
        default:
          fail("unexpected node");
      }
      check_size(out.size());
    }
    return Flow::kNormal;
  }

  void bind_target(const Node& target, const Value& v, Scope& scope) {
    if (target.kind == NodeKind::kIdentifier) {
      scope.variables[target.text] = v;
      return;
    }
    for (size_t i = 0; i < target.children.size(); ++i) {
      if (target.children[i]->kind != NodeKind::kIdentifier) fail("cannot unpack to a non-name");
      scope.variables[target.children[i]->text] =
          v.list && i < v.list->size() ? (*v.list)[i] : Value::undefined();
    }
  }

  void render_for(const Node& node, const ScopePtr& parent, std::string& out) {
    auto scope = std::make_shared<Scope>(parent);
    Value iterable = eval(*node.children[1], scope);
    if (iterable.type == Type::kDict) {
      ValueList keys;
      for (const auto& entry : *iterable.dict) keys.push_back(Value::of_string(entry.first));
      iterable = make_list(std::move(keys));
    }
    if (iterable.type != Type::kList) fail("cannot loop over " + type_name(iterable));
    const Node& target = *node.children[0];
    const Node* test = node.children[2].get();
    ValueList items;
    if (target.kind == NodeKind::kIdentifier && !test) {
      items = *iterable.list;
    } else {
      for (const Value& item : *iterable.list) {
        step();
        if (target.kind == NodeKind::kTuple) {
          if (item.type != Type::kList || item.is_tuple) fail("cannot unpack " + type_name(item));
          if (item.list->size() != target.children.size()) fail("wrong number of items to unpack");
        }
        if (test) {
          auto test_scope = std::make_shared<Scope>(scope);
          bind_target(target, item, *test_scope);
          if (!truthy(eval(*test, test_scope))) continue;
        }
        items.push_back(item);
      }
    }
    bool no_iteration = true;
    const double length = static_cast<double>(items.size());
    for (size_t i = 0; i < items.size(); ++i) {
      step();
      const double index = static_cast<double>(i);
      ValueDict loop{
          {"index", Value::of_integer(index + 1)},
          {"index0", Value::of_integer(index)},
          {"revindex", Value::of_integer(length - index)},
          {"revindex0", Value::of_integer(length - index - 1)},
          {"first", Value::of_bool(i == 0)},
          {"last", Value::of_bool(i + 1 == items.size())},
          {"length", Value::of_integer(length)},
          {"previtem", i > 0 ? items[i - 1] : Value::undefined()},
          {"nextitem", i + 1 < items.size() ? items[i + 1] : Value::undefined()},
      };
      scope->variables["loop"] = Value::of_dict(std::move(loop));
      bind_target(target, items[i], *scope);
      const Flow flow = render_block(node.body, scope, out);
      if (flow == Flow::kContinue) continue;
      if (flow == Flow::kBreak) break;
      no_iteration = false;
    }
    if (no_iteration && render_block(node.alternate, scope, out) != Flow::kNormal)
      fail("break outside a loop");
  }

  void execute_set(const Node& node, const ScopePtr& scope) {
    Value value;
    if (node.children[1]) {
      value = eval(*node.children[1], scope);
    } else {
      std::string text;
      if (render_block(node.body, scope, text) != Flow::kNormal) fail("break outside a loop");
      value = make_string(std::move(text));
    }
    const Node& target = *node.children[0];
    if (target.kind == NodeKind::kIdentifier) {
      scope->variables[target.text] = value;
    } else if (target.kind == NodeKind::kTuple) {
      if (value.type != Type::kList) fail("cannot unpack " + type_name(value) + " in set");
      if (value.list->size() != target.children.size())
        fail("wrong number of items to unpack in set");
      bind_target(target, value, *scope);
    } else if (target.kind == NodeKind::kDotMember) {
      Value object = eval(*target.children[0], scope);
      if (object.type != Type::kNamespace) fail("cannot assign an attribute of a non-namespace");
      for (auto& entry : *object.dict) {
        if (entry.first == target.text) {
          entry.second = value;
          return;
        }
      }
      object.dict->emplace_back(target.text, value);
    } else {
      fail("cannot assign to this expression");
    }
  }

  static bool mentions(const NodeList& nodes, const std::string& name) {
    for (const auto& n : nodes) {
      if (!n) continue;
      if (n->kind == NodeKind::kIdentifier && n->text == name) return true;
      if (mentions(n->children, name) || mentions(n->body, name) || mentions(n->alternate, name))
        return true;
    }
    return false;
  }

  void bind_arguments(const std::string& display_name, const Node& decl, bool takes_kwargs,
                      bool takes_varargs, ValueList& args, const ValueDict* kwargs,
                      const ScopePtr& scope) {
    ValueDict remaining = kwargs ? *kwargs : ValueDict{};
    std::vector<const Node*> pending_defaults;
    for (size_t i = 0; i < decl.params.size(); ++i) {
      const Node& param = *decl.params[i];
      Value value;
      bool given = i < args.size();
      if (given) value = args[i];
      if (!given) {
        for (auto it = remaining.begin(); it != remaining.end(); ++it) {
          if (it->first == param.text) {
            value = it->second;
            given = true;
            remaining.erase(it);
            break;
          }
        }
      }
      if (!given && param.kind == NodeKind::kKeywordArg) pending_defaults.push_back(&param);
      scope->variables[param.text] = value;
    }
    if (takes_kwargs) {
      scope->variables["kwargs"] = Value::of_dict(remaining);
    } else if (!remaining.empty()) {
      fail("macro " + display_name + " takes no keyword argument '" + remaining.front().first +
           "'");
    }
    if (takes_varargs) {
      ValueList extra;
      for (size_t i = decl.params.size(); i < args.size(); ++i) extra.push_back(args[i]);
      scope->variables["varargs"] = make_list(std::move(extra));
    } else if (args.size() > decl.params.size()) {
      fail("macro " + display_name + " takes not more than " + std::to_string(decl.params.size()) +
           " argument(s)");
    }
    for (const Node* param : pending_defaults)
      scope->variables[param->text] = eval(*param->children[0], scope);
  }

  void define_macro(const Node& node, const ScopePtr& scope) {
    const bool takes_kwargs = mentions(node.body, "kwargs");
    const bool takes_varargs = mentions(node.body, "varargs");
    const bool takes_caller = mentions(node.body, "caller");
    std::weak_ptr<Scope> weak_scope = scope;  // the macro lives in that scope: no cycle
    const Node* macro = &node;
    scope->variables[node.text] =
        Value::of_function([=](Interpreter& in, ValueList& args, const ValueDict* kwargs) {
          ScopePtr parent = weak_scope.lock();
          if (!parent) fail("macro used outside its scope");
          if (takes_caller) {
            parent = std::make_shared<Scope>(parent);
            parent->variables["caller"] = in.pending_caller;
          }
          in.pending_caller = Value::undefined();
          auto macro_scope = std::make_shared<Scope>(parent);
          in.bind_arguments("'" + macro->text + "'", *macro, takes_kwargs, takes_varargs, args,
                            kwargs, macro_scope);
          std::string out;
          if (in.render_block(macro->body, macro_scope, out) != Flow::kNormal)
            fail("break outside a loop");
          return in.make_string(std::move(out));
        });
  }

  Value call_block(const Node& node, const ScopePtr& scope) {
    const Node* block = &node;
    const bool takes_kwargs = mentions(node.body, "kwargs");
    const bool takes_varargs = mentions(node.body, "varargs");
    std::weak_ptr<Scope> weak_scope = scope;
    Value caller = Value::of_function([=](Interpreter& in, ValueList& args,
                                          const ValueDict* kwargs) {
      ScopePtr parent = weak_scope.lock();
      if (!parent) fail("caller used outside its scope");
      auto caller_scope = std::make_shared<Scope>(parent);
      in.bind_arguments("None", *block, takes_kwargs, takes_varargs, args, kwargs, caller_scope);
      std::string out;
      if (in.render_block(block->body, caller_scope, out) != Flow::kNormal)
        fail("break outside a loop");
      return in.make_string(std::move(out));
    });
    const Node& call = *node.children[0];
    ValueList args;
    ValueDict kwargs;
    evaluate_arguments(call, scope, args, kwargs);
    const Value callee = eval(*call.children[0], scope);
    if (callee.type != Type::kFunction) fail("cannot call " + type_name(callee));
    pending_caller = caller;
    return (*callee.function)(*this, args, &kwargs);
  }

  // ---- expressions ----------------------------------------------------------------------

  static std::string type_name(const Value& v) {
    switch (v.type) {
      case Type::kUndefined:
        return "UndefinedValue";
      case Type::kNone:
        return "NullValue";
      case Type::kBool:
        return "BooleanValue";
      case Type::kInteger:
        return "IntegerValue";
      case Type::kFloat:
        return "FloatValue";
      case Type::kString:
        return "StringValue";
      case Type::kList:
        return v.is_tuple ? "TupleValue" : "ArrayValue";
      case Type::kDict:
        return "ObjectValue";
      case Type::kNamespace:
        return "NamespaceValue";
      case Type::kFunction:
        return "FunctionValue";
    }
    return "?";
  }

  void evaluate_arguments(const Node& call, const ScopePtr& scope, ValueList& args,
                          ValueDict& kwargs) {
    for (size_t i = 1; i < call.children.size(); ++i) {
      const Node& a = *call.children[i];
      if (a.kind == NodeKind::kKeywordArg) {
        kwargs.emplace_back(a.text, eval(*a.children[0], scope));
      } else {
        args.push_back(eval(a, scope));
      }
    }
  }

  Value eval(const Node& node, const ScopePtr& scope) {
    DepthGuard guard(*this);
    step();
    switch (node.kind) {
      case NodeKind::kIdentifier: {
        const Value* v = scope->lookup(node.text);
        return v ? *v : Value::undefined();
      }
      case NodeKind::kInteger:
        return Value::of_integer(node.number);
      case NodeKind::kFloat:
        return Value::of_float(node.number);
      case NodeKind::kString:
        return Value::of_string(node.text);
      case NodeKind::kList:
      case NodeKind::kTuple: {
        ValueList items;
        for (const auto& child : node.children) items.push_back(eval(*child, scope));
        return make_list(std::move(items), node.kind == NodeKind::kTuple);
      }
      case NodeKind::kDict: {
        ValueDict entries;
        for (size_t i = 0; i + 1 < node.children.size(); i += 2) {
          const Value key = eval(*node.children[i], scope);
          if (key.type != Type::kString) fail("dict keys must be strings: got " + type_name(key));
          Value value = eval(*node.children[i + 1], scope);
          auto it = std::find_if(entries.begin(), entries.end(),
                                 [&](const auto& e) { return e.first == key.str(); });
          if (it != entries.end()) {
            it->second = std::move(value);
          } else {
            entries.emplace_back(key.str(), std::move(value));
          }
        }
        Value v = Value::of_dict(std::move(entries));
        if (v.depth > kMaxValueNesting) fail("value nested too deeply");
        return v;
      }
      case NodeKind::kBinary:
        return binary(node, scope);
      case NodeKind::kUnary: {
        const Value v = eval(*node.children[0], scope);
        if (node.text == "not") return Value::of_bool(!truthy(v));
        const double sign = node.text == "-" ? -1 : 1;
        if (v.is_number() || v.type == Type::kBool) {
          const double n = sign * as_number(v);
          return v.type == Type::kFloat ? Value::of_float(n) : Value::of_integer(n);
        }
        fail("unknown operator " + node.text + " for " + type_name(v));
      }
      case NodeKind::kTernary:
        return truthy(eval(*node.children[0], scope)) ? eval(*node.children[1], scope)
                                                      : eval(*node.children[2], scope);
      case NodeKind::kSelect:
        return truthy(eval(*node.children[1], scope)) ? eval(*node.children[0], scope)
                                                      : Value::undefined();
      case NodeKind::kDotMember:
        return member(eval(*node.children[0], scope), Value::of_string(node.text));
      case NodeKind::kMember: {
        const Value object = eval(*node.children[0], scope);
        return member(object, eval(*node.children[1], scope));
      }
      case NodeKind::kSlice:
        return slice(node, scope);
      case NodeKind::kCall: {
        ValueList args;
        ValueDict kwargs;
        evaluate_arguments(node, scope, args, kwargs);
        const Value callee = eval(*node.children[0], scope);
        if (callee.type != Type::kFunction)
          fail("cannot call something that is not a function: got " + type_name(callee));
        return (*callee.function)(*this, args, kwargs.empty() ? nullptr : &kwargs);
      }
      case NodeKind::kFilter:
        return apply_filter(eval(*node.children[0], scope), *node.children[1], scope);
      case NodeKind::kTest: {
        const Value operand = eval(*node.children[0], scope);
        const bool result = run_test(node.text, operand, nullptr);
        return Value::of_bool(node.number != 0 ? !result : result);
      }
      default:
        fail("unexpected expression");
    }
  }

  Value binary(const Node& node, const ScopePtr& scope) {
    const std::string& op = node.text;
    const Value left = eval(*node.children[0], scope);
    if (op == "and") return truthy(left) ? eval(*node.children[1], scope) : left;
    if (op == "or") return truthy(left) ? left : eval(*node.children[1], scope);
    const Value right = eval(*node.children[1], scope);
    if (op == "==") return Value::of_bool(loose_equal(left, right));
    if (op == "!=") return Value::of_bool(!loose_equal(left, right));
    if (left.is_number() && right.is_number() && op != "~" && op != "**") {
      const double a = left.number, b = right.number;
      const bool is_float = left.type == Type::kFloat || right.type == Type::kFloat;
      auto number = [&](double n) { return is_float ? Value::of_float(n) : Value::of_integer(n); };
      if (op == "+") return number(a + b);
      if (op == "-") return number(a - b);
      if (op == "*") return number(a * b);
      if (op == "/") return Value::of_float(a / b);
      if (op == "//") return number(std::floor(a / b));
      if (op == "%") return number(std::fmod(a, b));
      if (op == "<") return Value::of_bool(a < b);
      if (op == ">") return Value::of_bool(a > b);
      if (op == "<=") return Value::of_bool(a <= b);
      if (op == ">=") return Value::of_bool(a >= b);
    } else if (left.type == Type::kUndefined || right.type == Type::kUndefined) {
      if (right.type == Type::kUndefined && (op == "in" || op == "not in"))
        return Value::of_bool(op == "not in");
      if (op == "~" && left.type != Type::kNone && right.type != Type::kNone) {
        return make_string((left.type == Type::kUndefined ? "" : primitive_text(left)) +
                           (right.type == Type::kUndefined ? "" : primitive_text(right)));
      }
      fail("cannot perform operation " + op + " on undefined values");
    } else if (left.type == Type::kNone || right.type == Type::kNone) {
      fail("cannot perform operation on null values");
    } else if (op == "~") {
      return make_string(primitive_text(left) + primitive_text(right));
    } else if (op == "**" && (left.is_number() || left.type == Type::kBool) &&
               (right.is_number() || right.type == Type::kBool)) {
      const double a = as_number(left), b = as_number(right);
      if (a == 0 && b < 0) fail("0.0 cannot be raised to a negative power");
      const double result = std::pow(a, b);
      if (!std::isfinite(result)) fail("exponentiation result is not a finite real number");
      const bool is_float = left.type == Type::kFloat || right.type == Type::kFloat || b < 0;
      return is_float ? Value::of_float(result) : Value::of_integer(result);
    } else if (left.type == Type::kList && right.type == Type::kList) {
      if (op == "+") {
        ValueList joined = *left.list;
        joined.insert(joined.end(), right.list->begin(), right.list->end());
        return make_list(std::move(joined));
      }
    } else if (right.type == Type::kList) {
      const bool member = std::any_of(right.list->begin(), right.list->end(),
                                      [&](const Value& x) { return strict_equal(x, left); });
      if (op == "in") return Value::of_bool(member);
      if (op == "not in") return Value::of_bool(!member);
    }
    if ((left.type == Type::kString || right.type == Type::kString) && op == "+") {
      return make_string(primitive_text(left) + primitive_text(right));
    }
    if (left.type == Type::kString && right.type == Type::kString &&
        (op == "in" || op == "not in")) {
      const bool found = right.str().find(left.str()) != std::string::npos;
      return Value::of_bool(op == "in" ? found : !found);
    }
    if (left.type == Type::kString && right.type == Type::kDict && (op == "in" || op == "not in")) {
      const bool found = right.find(left.str()) != nullptr;
      return Value::of_bool(op == "in" ? found : !found);
    }
    fail("unknown operator \"" + op + "\" between " + type_name(left) + " and " + type_name(right));
  }

  Value slice(const Node& node, const ScopePtr& scope) {
    const Value object = eval(*node.children[0], scope);
    if (object.type != Type::kList && object.type != Type::kString)
      fail("slice object must be an array or string");
    double bounds[3];
    bool given[3];
    for (int i = 0; i < 3; ++i) {
      const Node* part = node.children[static_cast<size_t>(i) + 1].get();
      const Value v = part ? eval(*part, scope) : Value::undefined();
      if (v.type != Type::kInteger && v.type != Type::kUndefined)
        fail("slice bounds must be integers");
      given[i] = v.type == Type::kInteger;
      bounds[i] = v.number;
    }
    std::vector<std::string> points;
    const size_t size = object.type == Type::kList ? object.list->size()
                                                   : (points = code_points(object.str())).size();
    const double length = static_cast<double>(size);
    const double step_by = given[2] ? bounds[2] : 1;
    const double direction = step_by > 0 ? 1 : (step_by < 0 ? -1 : 0);
    double start, stop;
    if (direction >= 0) {
      start = given[0] ? bounds[0] : 0;
      start = start < 0 ? std::max(length + start, 0.0) : std::min(start, length);
      stop = given[1] ? bounds[1] : length;
      stop = stop < 0 ? std::max(length + stop, 0.0) : std::min(stop, length);
    } else {
      start = given[0] ? bounds[0] : length - 1;
      start = start < 0 ? std::max(length + start, -1.0) : std::min(start, length - 1);
      stop = given[1] ? bounds[1] : -1;
      stop = stop < -1 ? std::max(length + stop, -1.0) : std::min(stop, length - 1);
    }
    ValueList items;
    std::string text;
    for (double i = start; direction * i < direction * stop; i += step_by) {
      step();
      const auto index = static_cast<size_t>(i);
      if (object.type == Type::kList) {
        items.push_back((*object.list)[index]);
      } else {
        text += points[index];
      }
    }
    return object.type == Type::kList ? make_list(std::move(items)) : make_string(std::move(text));
  }

  Value member(const Value& object, const Value& property) {
    if (object.type == Type::kDict || object.type == Type::kNamespace) {
      if (property.type != Type::kString)
        fail("cannot access property with non-string: got " + type_name(property));
      if (const Value* v = object.find(property.str())) return *v;
      if (object.type == Type::kDict) return dict_method(object, property.str());
      return Value::undefined();
    }
    if (object.type == Type::kList || object.type == Type::kString) {
      if (property.type == Type::kInteger) {
        if (object.type == Type::kList) {
          const double n = static_cast<double>(object.list->size());
          const double i = property.number < 0 ? n + property.number : property.number;
          if (i < 0 || i >= n || std::floor(i) != i) return Value::undefined();
          return (*object.list)[static_cast<size_t>(i)];
        }
        // Indexes count UTF-16 units in the reference; code points agree for BMP text.
        const auto points = code_points(object.str());
        const double n = static_cast<double>(points.size());
        const double i = property.number < 0 ? n + property.number : property.number;
        if (i < 0 || i >= n || std::floor(i) != i) return Value::undefined();
        return Value::of_string(points[static_cast<size_t>(i)]);
      }
      if (property.type == Type::kString) {
        if (property.str() == "length") {
          return Value::of_integer(static_cast<double>(
              object.type == Type::kList ? object.list->size() : utf16_length(object.str())));
        }
        return object.type == Type::kString ? string_method(object, property.str())
                                            : Value::undefined();
      }
      fail("cannot access property with non-string/non-number: got " + type_name(property));
    }
    if (property.type != Type::kString)
      fail("cannot access property with non-string: got " + type_name(property));
    return Value::undefined();
  }

  static const Value* keyword(const ValueDict* kwargs, const char* name) {
    if (!kwargs) return nullptr;
    for (const auto& entry : *kwargs) {
      if (entry.first == name) return &entry.second;
    }
    return nullptr;
  }

  Value string_method(const Value& object, const std::string& name) {
    const std::string s = object.str();
    auto simple = [&](std::function<std::string()> f) {
      return Value::of_function(
          [f](Interpreter& in, ValueList&, const ValueDict*) { return in.make_string(f()); });
    };
    if (name == "upper") return simple([s] { return ascii_case(s, true); });
    if (name == "lower") return simple([s] { return ascii_case(s, false); });
    if (name == "strip") return simple([s] { return std::string(js_trim(s)); });
    if (name == "lstrip") return simple([s] { return std::string(js_trim_start(s)); });
    if (name == "rstrip") return simple([s] { return std::string(js_trim_end(s)); });
    if (name == "title") return simple([s] { return title_case(s); });
    if (name == "capitalize") {
      return simple([s] { return s.empty() ? s : ascii_case(s.substr(0, 1), true) + s.substr(1); });
    }
    if (name == "startswith" || name == "endswith") {
      const bool starts = name == "startswith";
      return Value::of_function([s, starts, name](Interpreter&, ValueList& args, const ValueDict*) {
        if (args.empty()) fail(name + "() requires at least one argument");
        auto matches = [&](const std::string& p) {
          return p.size() <= s.size() &&
                 (starts ? s.compare(0, p.size(), p) == 0
                         : s.compare(s.size() - p.size(), p.size(), p) == 0);
        };
        if (args[0].type == Type::kString) return Value::of_bool(matches(args[0].str()));
        if (args[0].type == Type::kList) {
          for (const Value& p : *args[0].list) {
            if (p.type != Type::kString) fail(name + "() tuple elements must be strings");
            if (matches(p.str())) return Value::of_bool(true);
          }
          return Value::of_bool(false);
        }
        fail(name + "() argument must be a string or tuple of strings");
      });
    }
    if (name == "split") {
      return Value::of_function([s](Interpreter& in, ValueList& args, const ValueDict*) {
        const Value sep = args.empty() ? Value::none() : args[0];
        if (sep.type != Type::kString && sep.type != Type::kNone)
          fail("sep argument must be a string or null");
        const Value maxsplit = args.size() > 1 ? args[1] : Value::of_integer(-1);
        if (maxsplit.type != Type::kInteger) fail("maxsplit argument must be a number");
        std::vector<std::string> parts;
        if (sep.type == Type::kNone) {
          const std::string text(js_trim_start(s));
          size_t pos = 0;
          while (pos < text.size()) {
            const size_t start = pos;
            while (pos < text.size()) {
              size_t length = 0;
              if (is_js_whitespace(decode_utf8(text, pos, &length))) break;
              pos += length;
            }
            if (maxsplit.number >= 0 && static_cast<double>(parts.size()) >= maxsplit.number) {
              parts.push_back(text.substr(start));
              break;
            }
            parts.push_back(text.substr(start, pos - start));
            pos += js_whitespace_run(text, pos);
          }
        } else {
          const std::string& separator = sep.str();
          if (separator.empty()) fail("empty separator");
          size_t pos = 0;
          while (true) {
            in.step();
            const size_t hit = s.find(separator, pos);
            if (hit == std::string::npos) break;
            parts.push_back(s.substr(pos, hit - pos));
            pos = hit + separator.size();
          }
          parts.push_back(s.substr(pos));
          if (maxsplit.number >= 0 && static_cast<double>(parts.size()) > maxsplit.number) {
            const auto keep = static_cast<size_t>(maxsplit.number);
            std::string rest;
            for (size_t i = keep; i < parts.size(); ++i)
              rest += (i > keep ? separator : "") + parts[i];
            parts.resize(keep);
            parts.push_back(rest);
          }
        }
        ValueList items;
        for (auto& p : parts) items.push_back(Value::of_string(std::move(p)));
        return in.make_list(std::move(items));
      });
    }
    if (name == "replace") {
      return Value::of_function([s](Interpreter& in, ValueList& args, const ValueDict* kwargs) {
        if (args.size() < 2) fail("replace() requires at least two arguments");
        if (args[0].type != Type::kString || args[1].type != Type::kString)
          fail("replace() arguments must be strings");
        Value count = args.size() > 2 ? args[2] : Value::none();
        if (const Value* k = keyword(kwargs, "count")) count = *k;
        if (count.type != Type::kInteger && count.type != Type::kNone)
          fail("replace() count must be a number or null");
        const double limit = count.type == Type::kNone ? NAN : count.number;
        if (args[0].str().empty()) in.check_size(s.size() * (args[1].str().size() + 4));
        return in.make_string(replace_all(s, args[0].str(), args[1].str(), limit));
      });
    }
    return Value::undefined();
  }

  Value dict_items(const Value& object) {
    ValueList items;
    for (const auto& entry : *object.dict)
      items.push_back(Value::of_list({Value::of_string(entry.first), entry.second}));
    return make_list(std::move(items));
  }

  Value dict_method(const Value& object, const std::string& name) {
    if (name == "get") {
      return Value::of_function([object](Interpreter&, ValueList& args, const ValueDict*) {
        if (args.empty() || args[0].type != Type::kString) fail("object key must be a string");
        if (const Value* v = object.find(args[0].str())) return *v;
        return args.size() > 1 ? args[1] : Value::none();
      });
    }
    if (name == "items") {
      return Value::of_function([object](Interpreter& in, ValueList&, const ValueDict*) {
        return in.dict_items(object);
      });
    }
    if (name == "keys" || name == "values") {
      const bool keys = name == "keys";
      return Value::of_function([object, keys](Interpreter& in, ValueList&, const ValueDict*) {
        ValueList items;
        for (const auto& entry : *object.dict)
          items.push_back(keys ? Value::of_string(entry.first) : entry.second);
        return in.make_list(std::move(items));
      });
    }
    if (name == "dictsort") {
      return Value::of_function(
          [object](Interpreter& in, ValueList& args, const ValueDict* kwargs) {
            auto arg = [&](size_t i, const char* key, Value fallback) {
              if (i < args.size()) return args[i];
              if (const Value* k = keyword(kwargs, key)) return *k;
              return fallback;
            };
            const Value case_sensitive = arg(0, "case_sensitive", Value::of_bool(false));
            const Value by = arg(1, "by", Value::of_string("key"));
            const Value reverse = arg(2, "reverse", Value::of_bool(false));
            if (case_sensitive.type != Type::kBool || reverse.type != Type::kBool)
              fail("dictsort flags must be booleans");
            if (by.type != Type::kString || (by.str() != "key" && by.str() != "value"))
              fail("by must be 'key' or 'value'");
            ValueDict entries = *object.dict;
            const bool by_key = by.str() == "key";
            std::stable_sort(entries.begin(), entries.end(), [&](const auto& a, const auto& b) {
              const int c = by_key ? compare(Value::of_string(a.first), Value::of_string(b.first),
                                             case_sensitive.boolean)
                                   : compare(a.second, b.second, case_sensitive.boolean);
              return reverse.boolean ? c > 0 : c < 0;
            });
            ValueList items;
            for (const auto& entry : entries)
              items.push_back(Value::of_list({Value::of_string(entry.first), entry.second}));
            return in.make_list(std::move(items));
          });
    }
    return Value::undefined();
  }

  static int compare(const Value& a, const Value& b, bool case_sensitive) {
    if (is_nullish(a) && is_nullish(b) && a.type == b.type) return 0;
    if (is_nullish(a) || is_nullish(b))
      fail("cannot compare " + type_name(a) + " with " + type_name(b));
    const bool a_num = a.is_number() || a.type == Type::kBool,
               b_num = b.is_number() || b.type == Type::kBool;
    if (a_num && b_num) {
      const double x = as_number(a), y = as_number(b);
      return x < y ? -1 : (x > y ? 1 : 0);
    }
    if (a.type != Type::kString || b.type != Type::kString)
      fail("cannot compare " + type_name(a) + " and " + type_name(b));
    const std::string x = case_sensitive ? a.str() : ascii_case(a.str(), false);
    const std::string y = case_sensitive ? b.str() : ascii_case(b.str(), false);
    return x < y ? -1 : (x > y ? 1 : 0);
  }

  bool run_test(const std::string& name, const Value& v, const Value* argument) {
    if (name == "boolean") return v.type == Type::kBool;
    if (name == "callable") return v.type == Type::kFunction;
    if (name == "odd" || name == "even") {
      if (v.type != Type::kInteger) fail("cannot " + name + " on " + type_name(v));
      const bool odd = std::fmod(v.number, 2) != 0;
      return name == "odd" ? odd : !odd;
    }
    if (name == "false") return v.type == Type::kBool && !v.boolean;
    if (name == "true") return v.type == Type::kBool && v.boolean;
    if (name == "none") return v.type == Type::kNone;
    if (name == "string") return v.type == Type::kString;
    if (name == "number") return v.is_number();
    if (name == "integer") return v.type == Type::kInteger;
    if (name == "iterable")
      return (v.type == Type::kList && !v.is_tuple) || v.type == Type::kString;
    if (name == "mapping") return v.type == Type::kDict;
    if (name == "sequence")
      return v.type == Type::kList || v.type == Type::kDict || v.type == Type::kString;
    if (name == "lower") return v.type == Type::kString && v.str() == ascii_case(v.str(), false);
    if (name == "upper") return v.type == Type::kString && v.str() == ascii_case(v.str(), true);
    if (name == "defined") return v.type != Type::kUndefined;
    if (name == "undefined") return v.type == Type::kUndefined;
    if (name == "equalto" || name == "eq")
      return strict_equal(v, argument ? *argument : Value::undefined());
    fail("unknown test: " + name);
  }

  static Value attribute_path(const Value& item, const std::string& path) {
    Value v = item;
    size_t start = 0;
    while (true) {
      const size_t dot = path.find('.', start);
      const std::string part =
          path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
      if (v.type == Type::kDict || v.type == Type::kNamespace) {
        const Value* found = v.find(part);
        v = found ? *found : Value::undefined();
      } else if (v.type == Type::kList) {
        const double index = js_parse_number(part, true);
        if (std::isnan(index) || index < 0 || index >= static_cast<double>(v.list->size()))
          return Value::undefined();
        v = (*v.list)[static_cast<size_t>(index)];
      } else {
        return Value::undefined();
      }
      if (dot == std::string::npos) return v;
      start = dot + 1;
    }
  }

  Value apply_filter(const Value& operand, const Node& filter, const ScopePtr& scope) {
    step();
    if (filter.kind == NodeKind::kIdentifier) return plain_filter(operand, filter.text);
    const std::string& name = filter.children[0]->text;
    ValueList args;
    ValueDict kwargs;
    auto arg = [&](size_t i, const char* key, Value fallback) {
      if (i < args.size()) return args[i];
      if (const Value* k = keyword(&kwargs, key)) return *k;
      return fallback;
    };
    if (name != "selectattr" && name != "rejectattr")
      evaluate_arguments(filter, scope, args, kwargs);
    if (name == "tojson") {
      JsonStyle style;
      const Value indent = arg(99, "indent", Value::none());
      if (indent.type != Type::kInteger && indent.type != Type::kNone)
        fail("if set, indent must be a number");
      style.indent = indent.type == Type::kInteger
                         ? static_cast<int>(std::clamp(indent.number, -1.0, 64.0))
                         : 0;
      const Value ascii = arg(99, "ensure_ascii", Value::of_bool(false));
      const Value sort = arg(99, "sort_keys", Value::of_bool(false));
      if (ascii.type != Type::kBool || sort.type != Type::kBool)
        fail("tojson flags must be booleans");
      style.ensure_ascii = ascii.boolean;
      style.sort_keys = sort.boolean;
      const Value separators = arg(99, "separators", Value::none());
      if (separators.type == Type::kList) {
        if (separators.list->size() != 2 || (*separators.list)[0].type != Type::kString ||
            (*separators.list)[1].type != Type::kString) {
          fail("separators must be a tuple of two strings");
        }
        style.has_separators = true;
        style.item_separator = (*separators.list)[0].str();
        style.key_separator = (*separators.list)[1].str();
      } else if (separators.type != Type::kNone) {
        fail("if set, separators must be a tuple of two strings");
      }
      std::string out;
      to_json(operand, style, 0, out);
      return make_string(std::move(out));
    }
    if (name == "join") {
      std::vector<std::string> parts;
      if (operand.type == Type::kString) {
        parts = code_points(operand.str());
      } else if (operand.type == Type::kList) {
        for (const Value& x : *operand.list)
          parts.push_back(is_nullish(x) ? "" : primitive_text(x));
      } else {
        fail("cannot apply filter \"join\" to type: " + type_name(operand));
      }
      const Value separator = arg(0, "separator", Value::of_string(""));
      if (separator.type != Type::kString) fail("separator must be a string");
      std::string out;
      for (size_t i = 0; i < parts.size(); ++i) {
        if (i > 0) out += separator.str();
        out += parts[i];
        check_size(out.size());
      }
      return make_string(std::move(out));
    }
    if (name == "int" || name == "float") {
      const bool integer = name == "int";
      const Value fallback = arg(0, "default", integer ? Value::of_integer(0) : Value::of_float(0));
      if (operand.type == Type::kString) {
        const double n = js_parse_number(operand.str(), integer);
        if (std::isnan(n)) return fallback;
        return integer ? Value::of_integer(n) : Value::of_float(n);
      }
      if (operand.is_number())
        return integer ? Value::of_integer(std::trunc(operand.number) + 0.0)
                       : Value::of_float(operand.number);
      if (operand.type == Type::kBool)
        return integer ? Value::of_integer(operand.boolean) : Value::of_float(operand.boolean);
      fail("cannot apply filter \"" + name + "\" to type: " + type_name(operand));
    }
    if (name == "default") {
      const Value fallback = args.empty() ? Value::of_string("") : args[0];
      const Value boolean = arg(1, "boolean", Value::of_bool(false));
      if (boolean.type != Type::kBool) fail("`default` filter flag must be a boolean");
      if (operand.type == Type::kUndefined || (boolean.boolean && !truthy(operand)))
        return fallback;
      return operand;
    }
    if (operand.type == Type::kList) {
      if (name == "selectattr" || name == "rejectattr") {
        const bool select = name == "selectattr";
        for (const Value& item : *operand.list) {
          if (item.type != Type::kDict && item.type != Type::kNamespace)
            fail("`" + name + "` can only be applied to array of objects");
        }
        for (size_t i = 1; i < filter.children.size(); ++i) {
          if (filter.children[i]->kind != NodeKind::kString)
            fail("arguments of `" + name + "` must be strings");
          args.push_back(Value::of_string(filter.children[i]->text));
        }
        if (args.empty()) fail("`" + name + "` needs an attribute");
        ValueList kept;
        for (const Value& item : *operand.list) {
          step();
          const Value* attribute = item.find(args[0].str());
          bool result = false;
          if (attribute)
            result = args.size() > 1
                         ? run_test(args[1].str(), *attribute, args.size() > 2 ? &args[2] : nullptr)
                         : truthy(*attribute);
          if (result == select) kept.push_back(item);
        }
        return make_list(std::move(kept));
      }
      if (name == "map") {
        const Value* attribute = keyword(&kwargs, "attribute");
        if (!attribute)
          fail("`map` expressions without `attribute` set are not currently supported.");
        if (attribute->type != Type::kString) fail("attribute must be a string");
        const Value* fallback = keyword(&kwargs, "default");
        ValueList mapped;
        for (const Value& item : *operand.list) {
          if (item.type != Type::kDict && item.type != Type::kNamespace)
            fail("items in map must be an object");
          const Value v = attribute_path(item, attribute->str());
          mapped.push_back(v.type == Type::kUndefined && fallback ? *fallback : v);
        }
        return make_list(std::move(mapped));
      }
      if (name == "sort") {
        const Value reverse = arg(0, "reverse", Value::of_bool(false));
        const Value case_sensitive = arg(1, "case_sensitive", Value::of_bool(false));
        const Value attribute = arg(2, "attribute", Value::none());
        if (reverse.type != Type::kBool || case_sensitive.type != Type::kBool)
          fail("sort flags must be booleans");
        ValueList items = *operand.list;
        auto key = [&](const Value& item) {
          if (attribute.type == Type::kNone) return item;
          return attribute_path(item, attribute.type == Type::kInteger ? js_number(attribute.number)
                                                                       : display(attribute));
        };
        std::stable_sort(items.begin(), items.end(), [&](const Value& a, const Value& b) {
          const int c = compare(key(a), key(b), case_sensitive.boolean);
          return reverse.boolean ? c > 0 : c < 0;
        });
        return make_list(std::move(items));
      }
      fail("unknown ArrayValue filter: " + name);
    }
    if (operand.type == Type::kString) {
      if (name == "indent") {
        const Value width = arg(0, "width", Value::of_integer(4));
        const bool first = truthy(arg(1, "first", Value::of_bool(false)));
        const bool blank = truthy(arg(2, "blank", Value::of_bool(false)));
        std::string pad;
        if (width.type == Type::kString) {
          pad = width.str();
        } else if (width.type == Type::kInteger) {
          pad.assign(static_cast<size_t>(std::clamp(width.number, 0.0, 1024.0)), ' ');
        } else {
          fail("width must be an integer or a string");
        }
        return make_string(indent_lines(operand.str(), pad, first, blank));
      }
      if (name == "replace") {
        const Value method = string_method(operand, "replace");
        args.insert(args.end(), Value::undefined());
        args.pop_back();
        return (*method.function)(*this, args, &kwargs);
      }
      fail("unknown StringValue filter: " + name);
    }
    if (operand.type == Type::kDict) {
      const Value method = dict_method(operand, name);
      if (method.type == Type::kFunction)
        return (*method.function)(*this, args, kwargs.empty() ? nullptr : &kwargs);
      fail("unknown ObjectValue filter: " + name);
    }
    fail("cannot apply filter \"" + name + "\" to type: " + type_name(operand));
  }

  std::string indent_lines(const std::string& s, const std::string& pad, bool first, bool blank) {
    std::string out;
    size_t start = 0;
    for (size_t line = 0;; ++line) {
      const size_t end = s.find('\n', start);
      const std::string part =
          s.substr(start, end == std::string::npos ? std::string::npos : end - start);
      if ((line == 0 && !first) || (part.empty() && !blank)) {
        out += part;
      } else {
        out += pad + part;
      }
      check_size(out.size());
      if (end == std::string::npos) return out;
      out += '\n';
      start = end + 1;
    }
  }

  Value plain_filter(const Value& operand, const std::string& name) {
    if (name == "safe") return operand;
    if (name == "tojson") return make_string(json_text(operand, true));
    if (operand.type == Type::kList) {
      const ValueList& items = *operand.list;
      if (name == "list") return operand;
      if (name == "first") return items.empty() ? Value::undefined() : items.front();
      if (name == "last") return items.empty() ? Value::undefined() : items.back();
      if (name == "length") return Value::of_integer(static_cast<double>(items.size()));
      if (name == "reverse") return make_list(ValueList(items.rbegin(), items.rend()));
      if (name == "sort") {
        ValueList sorted = items;
        std::stable_sort(sorted.begin(), sorted.end(),
                         [](const Value& a, const Value& b) { return compare(a, b, false) < 0; });
        return make_list(std::move(sorted));
      }
      if (name == "join") {
        std::string out;
        for (const Value& x : items) {
          out += is_nullish(x) ? "" : primitive_text(x);
          check_size(out.size());
        }
        return make_string(std::move(out));
      }
      if (name == "string") return make_string(json_text(operand, false));
      if (name == "unique") {
        ValueList unique;
        for (const Value& x : items) {
          step(static_cast<long long>(unique.size()));
          if (std::none_of(unique.begin(), unique.end(),
                           [&](const Value& u) { return strict_equal(u, x); }))
            unique.push_back(x);
        }
        return make_list(std::move(unique));
      }
      fail("unknown ArrayValue filter: " + name);
    }
    if (operand.type == Type::kString) {
      const std::string& s = operand.str();
      if (name == "length") return Value::of_integer(static_cast<double>(utf16_length(s)));
      if (name == "upper") return make_string(ascii_case(s, true));
      if (name == "lower") return make_string(ascii_case(s, false));
      if (name == "title") return make_string(title_case(s));
      if (name == "capitalize")
        return make_string(s.empty() ? s : ascii_case(s.substr(0, 1), true) + s.substr(1));
      if (name == "trim") return make_string(std::string(js_trim(s)));
      if (name == "indent") return make_string(indent_lines(s, "    ", false, false));
      if (name == "join" || name == "string") return operand;
      if (name == "int") {
        const double n = js_parse_number(s, true);
        return Value::of_integer(std::isnan(n) ? 0 : n);
      }
      if (name == "float") {
        const double n = js_parse_number(s, false);
        return Value::of_float(std::isnan(n) ? 0 : n);
      }
      fail("unknown StringValue filter: " + name);
    }
    if (operand.is_number()) {
      if (name == "abs")
        return operand.type == Type::kInteger ? Value::of_integer(std::fabs(operand.number))
                                              : Value::of_float(std::fabs(operand.number));
      if (name == "int") return Value::of_integer(std::trunc(operand.number) + 0.0);
      if (name == "float") return Value::of_float(operand.number);
      if (name == "string") return make_string(display(operand));
      fail("unknown NumericValue filter: " + name);
    }
    if (operand.type == Type::kDict) {
      if (name == "items") return dict_items(operand);
      if (name == "length") return Value::of_integer(static_cast<double>(operand.dict->size()));
      const Value method = dict_method(operand, name);
      if (method.type == Type::kFunction) {
        ValueList none;
        return (*method.function)(*this, none, nullptr);
      }
      fail("unknown ObjectValue filter: " + name);
    }
    if (operand.type == Type::kBool) {
      if (name == "bool") return operand;
      if (name == "int") return Value::of_integer(operand.boolean ? 1 : 0);
      if (name == "float") return Value::of_float(operand.boolean ? 1 : 0);
      if (name == "string") return make_string(operand.boolean ? "true" : "false");
      fail("unknown BooleanValue filter: " + name);
    }
    fail("cannot apply filter \"" + name + "\" to type: " + type_name(operand));
  }

  // strftime_now with the date the caller passed (context "kvmock_now"): %Y %m %d %b %B %H %M %%.
  std::string strftime(const std::string& format) const {
    static const char* const kMonths[] = {"January",   "February", "March",    "April",
                                          "May",       "June",     "July",     "August",
                                          "September", "October",  "November", "December"};
    auto pad2 = [](int n) { return (n < 10 ? "0" : "") + std::to_string(n); };
    std::string out;
    for (size_t i = 0; i < format.size(); ++i) {
      if (format[i] == '%' && i + 1 < format.size()) {
        const char c = format[i + 1];
        const std::string month = kMonths[std::clamp(now_month, 1, 12) - 1];
        std::string piece;
        switch (c) {
          case 'Y':
            piece = std::to_string(now_year);
            break;
          case 'm':
            piece = pad2(now_month);
            break;
          case 'd':
            piece = pad2(now_day);
            break;
          case 'b':
            piece = month.substr(0, 3);
            break;
          case 'B':
            piece = month;
            break;
          case 'H':
            piece = pad2(now_hour);
            break;
          case 'M':
            piece = pad2(now_minute);
            break;
          case '%':
            piece = "%";
            break;
          default:
            break;
        }
        if (!piece.empty()) {
          out += piece;
          ++i;
          continue;
        }
      }
      out += format[i];
    }
    return out;
  }
};

namespace {

void set_now(Interpreter& in, const nlohmann::ordered_json& context) {
  auto it = context.find("kvmock_now");
  if (it == context.end() || !it->is_string()) return;
  int year = 0, month = 0, day = 0, hour = 0, minute = 0;
  const std::string text = it->get<std::string>();
  const int fields =
      std::sscanf(text.c_str(), "%4d-%2d-%2dT%2d:%2d", &year, &month, &day, &hour, &minute);
  if (fields >= 3) {
    in.now_year = year;
    in.now_month = std::clamp(month, 1, 12);
    in.now_day = day;
    if (fields >= 5) {
      in.now_hour = hour;
      in.now_minute = minute;
    }
  }
}

ScopePtr make_globals(Interpreter& in, const nlohmann::ordered_json& context) {
  auto globals = std::make_shared<Scope>(nullptr);
  auto& vars = globals->variables;
  vars["namespace"] =
      Value::of_function([](Interpreter&, ValueList& args, const ValueDict* kwargs) {
        if (args.size() > 1) fail("namespace expected at most 1 argument");
        ValueDict entries;
        auto put = [&](const std::string& key, const Value& v) {
          for (auto& e : entries) {
            if (e.first == key) {
              e.second = v;
              return;
            }
          }
          entries.emplace_back(key, v);
        };
        if (!args.empty()) {
          if (args[0].type == Type::kDict) {
            for (const auto& e : *args[0].dict) put(e.first, e.second);
          } else if (args[0].type == Type::kList) {
            for (const Value& pair : *args[0].list) {
              if (pair.type != Type::kList || pair.list->size() != 2 ||
                  (*pair.list)[0].type != Type::kString) {
                fail("namespace expected an object or an iterable of [key, value] pairs");
              }
              put((*pair.list)[0].str(), (*pair.list)[1]);
            }
          } else {
            fail("namespace argument is not iterable");
          }
        }
        if (kwargs) {
          for (const auto& e : *kwargs) put(e.first, e.second);
        }
        return Value::of_dict(std::move(entries), Type::kNamespace);
      });
  vars["true"] = vars["True"] = Value::of_bool(true);
  vars["false"] = vars["False"] = Value::of_bool(false);
  vars["none"] = vars["None"] = Value::none();
  vars["raise_exception"] =
      Value::of_function([](Interpreter&, ValueList& args, const ValueDict*) -> Value {
        std::string message;
        for (size_t i = 0; i < args.size(); ++i) message += (i ? "," : "") + display(args[i]);
        throw RenderFailure{message};
      });
  vars["range"] = Value::of_function([](Interpreter& in, ValueList& args, const ValueDict*) {
    if (args.empty()) fail("range expected at least 1 argument");
    for (const Value& a : args) {
      if (!a.is_number()) fail("range arguments must be numbers");
    }
    double start = 0, stop = args[0].number, step_by = 1;
    if (args.size() > 1) {
      start = args[0].number;
      stop = args[1].number;
    }
    if (args.size() > 2) step_by = args[2].number;
    if (step_by == 0) fail("range() step must not be zero");
    ValueList items;
    for (double i = start; step_by > 0 ? i < stop : i > stop; i += step_by) {
      in.step();
      items.push_back(Value::of_integer(i));
    }
    return in.make_list(std::move(items));
  });
  vars["strftime_now"] = Value::of_function([](Interpreter& in, ValueList& args, const ValueDict*) {
    if (args.empty() || args[0].type != Type::kString) fail("strftime_now expects a format string");
    return in.make_string(in.strftime(args[0].str()));
  });
  set_now(in, context);
  if (context.is_object()) {
    for (const auto& [key, item] : context.items()) {
      if (vars.count(key) != 0) fail("Variable already declared: " + key);
      vars[key] = from_json(item, 0);
    }
  }
  return globals;
}

}  // namespace

Result<std::string> render_template(const NodeList& program, const nlohmann::ordered_json& context,
                                    const RenderLimits& limits) {
  try {
    Interpreter in;
    in.limits = limits;
    ScopePtr globals = make_globals(in, context);
    std::string out;
    if (in.render_block(program, globals, out) != Flow::kNormal)
      fail("break or continue outside a loop");
    return out;
  } catch (const RenderFailure& failure) {
    return make_error("template_error", failure.message);
  } catch (const std::exception& e) {
    return make_error("template_error", e.what());
  }
}

}  // namespace kvmock::chat
