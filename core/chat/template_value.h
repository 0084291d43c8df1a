// The values a template computes with, modelled on @huggingface/jinja's runtime values so
// printing, truthiness and equality match it: numbers are doubles with an "integer" flag
// (JavaScript numbers), lists and dicts are shared and compared by identity, dicts keep
// insertion order (tojson prints keys in the order the request sent them), a namespace is
// a mutable dict. Nesting depth is recorded so printing deep values stays bounded.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace kvmock::chat {

struct Node;
struct Value;

using ValueList = std::vector<Value>;
using ValueDict = std::vector<std::pair<std::string, Value>>;  // insertion-ordered
struct Interpreter;
using NativeFunction = std::function<Value(Interpreter&, ValueList&, const ValueDict* kwargs)>;

struct Value {
  enum class Type {
    kUndefined,
    kNone,
    kBool,
    kInteger,
    kFloat,
    kString,
    kList,
    kDict,
    kNamespace,
    kFunction
  };
  Type type = Type::kUndefined;
  bool boolean = false;
  bool is_tuple = false;  // a (a, b) literal: a list the reference treats differently in places
  double number = 0;
  std::shared_ptr<const std::string> text;
  std::shared_ptr<ValueList> list;
  std::shared_ptr<ValueDict> dict;  // kDict and kNamespace
  std::shared_ptr<NativeFunction> function;
  int depth = 0;

  static Value undefined() { return {}; }
  static Value none() {
    Value v;
    v.type = Type::kNone;
    return v;
  }
  static Value of_bool(bool b) {
    Value v;
    v.type = Type::kBool;
    v.boolean = b;
    return v;
  }
  static Value of_integer(double n) {
    Value v;
    v.type = Type::kInteger;
    v.number = n;
    return v;
  }
  static Value of_float(double n) {
    Value v;
    v.type = Type::kFloat;
    v.number = n;
    return v;
  }
  static Value of_string(std::string s) {
    Value v;
    v.type = Type::kString;
    v.text = std::make_shared<const std::string>(std::move(s));
    return v;
  }
  static Value of_list(ValueList items, bool tuple = false) {
    Value v;
    v.type = Type::kList;
    v.is_tuple = tuple;
    for (const Value& item : items) v.depth = std::max(v.depth, item.depth + 1);
    v.list = std::make_shared<ValueList>(std::move(items));
    return v;
  }
  static Value of_dict(ValueDict entries, Type type = Type::kDict) {
    Value v;
    v.type = type;
    for (const auto& entry : entries) v.depth = std::max(v.depth, entry.second.depth + 1);
    v.dict = std::make_shared<ValueDict>(std::move(entries));
    return v;
  }
  static Value of_function(NativeFunction f) {
    Value v;
    v.type = Type::kFunction;
    v.function = std::make_shared<NativeFunction>(std::move(f));
    return v;
  }

  bool is_number() const { return type == Type::kInteger || type == Type::kFloat; }
  const std::string& str() const { return *text; }
  const Value* find(const std::string& key) const {
    if (!dict) return nullptr;
    for (const auto& entry : *dict) {
      if (entry.first == key) return &entry.second;
    }
    return nullptr;
  }
};

}  // namespace kvmock::chat
