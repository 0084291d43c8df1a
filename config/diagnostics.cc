#include "config/diagnostics.h"

#include <utility>

namespace kvmock {

Diagnostics::Diagnostics(std::string file_name)
    : file_name_(file_name.empty() ? "config" : std::move(file_name)) {}

void Diagnostics::set_origin(const std::string& path, Origin origin) {
  origins_[path] = std::move(origin);
}

const Origin* Diagnostics::origin(std::string_view path) const {
  const auto it = origins_.find(path);
  return it == origins_.end() ? nullptr : &it->second;
}

std::string Diagnostics::location(const Origin* origin) const {
  if (origin == nullptr) return file_name_;
  switch (origin->kind) {
    case Origin::Kind::kFile:
      return file_name_ + ":" + std::to_string(origin->line);
    case Origin::Kind::kEnv:
      return "env " + origin->env_name;
    case Origin::Kind::kSet:
      return "--set";
  }
  return file_name_;
}

void Diagnostics::add(const Origin* origin, std::string_view key, std::string_view reason,
                      std::string_view message) {
  if (messages_.empty()) first_reason_ = reason;
  std::string text = location(origin);
  text += ": ";
  if (!key.empty()) {
    text += key;
    text += ": ";
  }
  text += message;
  messages_.push_back(std::move(text));
}

void Diagnostics::add_for_key(std::string_view key, std::string_view reason,
                              std::string_view message) {
  add(origin(key), key, reason, message);
}

void Diagnostics::add_in_file(int line, std::string_view reason, std::string_view message) {
  const Origin at{Origin::Kind::kFile, line, {}};
  add(line > 0 ? &at : nullptr, {}, reason, message);
}

Error Diagnostics::to_error() const {
  std::string joined;
  for (const auto& message : messages_) {
    if (!joined.empty()) joined += '\n';
    joined += message;
  }
  return make_error(first_reason_, std::move(joined));
}

}  // namespace kvmock
