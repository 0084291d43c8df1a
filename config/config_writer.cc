#include "config/config_writer.h"

#include <string_view>
#include <vector>

#include "config/endpoint.h"
#include "config/scalar_text.h"
#include "config/schema.h"

namespace kvmock {
namespace {

std::vector<std::string_view> split_path(std::string_view path) {
  std::vector<std::string_view> parts;
  while (true) {
    const size_t dot = path.find('.');
    parts.push_back(path.substr(0, dot));
    if (dot == std::string_view::npos) return parts;
    path.remove_prefix(dot + 1);
  }
}

template <typename Root>
std::string yaml_value(const KeySpec<Root>& key, const Root& root, Secrets secrets) {
  std::string text = key.render(root);
  if (key.kind != ValueKind::kString) return text;
  if (secrets == Secrets::kRedact) {
    if (key.secret && !text.empty()) return "\"<redacted>\"";
    // A URL may carry its own password or token (nats://user:pass@host).
    return yaml_quote(redact_url_userinfo(text));
  }
  return yaml_quote(text);
}

std::string markdown_cell(std::string_view text) {
  std::string out;
  for (const char c : text) {
    if (c == '|') out += '\\';
    out += c;
  }
  return out;
}

template <typename Root>
void append_reference_rows(const std::vector<KeySpec<Root>>& keys, std::string_view prefix,
                           std::string& out) {
  const Root defaults{};
  for (const auto& key : keys) {
    std::string shown_default;
    if (key.required) {
      shown_default = "required";
    } else if (key.kind == ValueKind::kString) {
      shown_default = "`" + yaml_quote(key.render(defaults)) + "`";
    } else {
      shown_default = "`" + key.render(defaults) + "`";
    }
    out += "| `" + std::string(prefix) + key.path + "` | " + key.type_name + " | " +
           markdown_cell(shown_default) + " | " + markdown_cell(key.allowed) + " | " +
           markdown_cell(key.doc) + " |\n";
  }
}

}  // namespace

std::string to_yaml(const Config& config, Secrets secrets) {
  std::string out;
  std::vector<std::string_view> open;  // sections currently open, outermost first
  for (const auto& key : config_keys()) {
    const std::vector<std::string_view> parts = split_path(key.path);
    size_t common = 0;
    while (common < open.size() && common + 1 < parts.size() && open[common] == parts[common]) {
      ++common;
    }
    open.resize(common);
    for (size_t depth = common; depth + 1 < parts.size(); ++depth) {
      out.append(2 * depth, ' ');
      out += parts[depth];
      out += ":\n";
      open.push_back(parts[depth]);
    }
    out.append(2 * open.size(), ' ');
    out += parts.back();
    out += ": ";
    out += yaml_value(key, config, secrets);
    out += '\n';
  }
  if (config.relays.empty()) {
    out += std::string(kRelaysKey) + ": []\n";
    return out;
  }
  out += std::string(kRelaysKey) + ":\n";
  for (const RelayConfig& relay : config.relays) {
    bool first = true;
    for (const auto& key : relay_keys()) {
      out += first ? "  - " : "    ";
      first = false;
      out += key.path + ": " + yaml_value(key, relay, secrets) + "\n";
    }
  }
  return out;
}

std::string config_reference_markdown() {
  std::string out =
      "| key | type | default | allowed | meaning |\n"
      "|---|---|---|---|---|\n";
  append_reference_rows(config_keys(), "", out);
  append_reference_rows(relay_keys(), std::string(kRelaysKey) + "[].", out);
  return out;
}

}  // namespace kvmock
