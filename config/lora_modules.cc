#include "config/lora_modules.h"

#include <algorithm>

#include "config/endpoint.h"

namespace kvmock {
namespace {

bool has_space(std::string_view text) {
  return std::any_of(text.begin(), text.end(), [](char c) { return c == ' ' || c == '\t'; });
}

}  // namespace

Result<std::vector<LoraModule>> parse_lora_modules(std::string_view text) {
  std::vector<LoraModule> modules;
  for (const std::string& entry : split_comma_list(text)) {
    LoraModule module;
    const size_t equals = entry.find('=');
    module.name = entry.substr(0, equals);
    if (equals != std::string::npos) module.base = entry.substr(equals + 1);
    if (module.name.empty())
      return make_error("bad_value", "\"" + entry + "\" has no adapter name");
    if (equals != std::string::npos && module.base.empty()) {
      return make_error("bad_value", "\"" + entry + "\" names no base model after '='");
    }
    if (has_space(module.name) || has_space(module.base)) {
      return make_error("bad_value", "\"" + entry + "\" has whitespace inside a name");
    }
    const bool repeated = std::any_of(modules.begin(), modules.end(),
                                      [&](const LoraModule& m) { return m.name == module.name; });
    if (repeated) return make_error("bad_value", "adapter \"" + module.name + "\" is listed twice");
    modules.push_back(std::move(module));
  }
  return modules;
}

std::string check_lora_modules(std::string_view text) {
  auto modules = parse_lora_modules(text);
  return modules ? std::string() : modules.error().message;
}

}  // namespace kvmock
