#include "config/config_loader.h"

#include <yaml-cpp/depthguard.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <exception>
#include <optional>
#include <sstream>
#include <utility>

extern char** environ;  // POSIX; declared here because <unistd.h> need not declare it

#include "config/config_rules.h"
#include "config/diagnostics.h"
#include "config/endpoint.h"
#include "config/scalar_text.h"
#include "config/schema.h"

namespace kvmock {
namespace {

// A config file is small; this bound keeps a wrong --config (a disk image) cheap to reject.
constexpr size_t kMaxFileBytes = 16 << 20;

std::string describe(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Map:
      return "a map";
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Null:
      return "null";
    default:
      return "a scalar";
  }
}

int line_of(const YAML::Node& node) { return node.Mark().line + 1; }

// Records where the root node of the second document starts, if there is one.
class SecondDocumentFinder : public YAML::EventHandler {
 public:
  void OnDocumentStart(const YAML::Mark&) override { ++documents_; }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark& mark, YAML::anchor_t) override { node(mark); }
  void OnAlias(const YAML::Mark& mark, YAML::anchor_t) override { node(mark); }
  void OnScalar(const YAML::Mark& mark, const std::string&, YAML::anchor_t,
                const std::string&) override {
    node(mark);
  }
  void OnSequenceStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {
    node(mark);
  }
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t,
                  YAML::EmitterStyle::value) override {
    node(mark);
  }
  void OnMapEnd() override {}

  std::optional<int> second_document_line() const { return second_line_; }

 private:
  void node(const YAML::Mark& mark) {
    if (documents_ == 2 && !second_line_) second_line_ = mark.line + 1;
  }
  int documents_ = 0;
  std::optional<int> second_line_;
};

// The line of the second document in `text`, or nullopt when there is at most one. Reads
// at most two documents: yaml-cpp 0.7 yields an endless run of empty documents for some
// malformed input (a leading ", " for one), so YAML::LoadAll would never return.
std::optional<int> second_document(const std::string& text) {
  std::istringstream in(text);
  YAML::Parser parser(in);
  SecondDocumentFinder finder;
  if (!parser.HandleNextDocument(finder) || !parser.HandleNextDocument(finder)) {
    return std::nullopt;
  }
  return finder.second_document_line().value_or(0);
}

std::string relay_path(size_t index) { return "relays[" + std::to_string(index) + "]"; }

// Builds one Config from its layers, collecting every problem rather than stopping at the
// first, so a user fixes a file in one round.
class Loader {
 public:
  explicit Loader(std::string_view file_name) : diag_(std::string(file_name)) {}

  void load_yaml(std::string_view text);
  void apply_env(const std::map<std::string, std::string>& env);
  void apply_sets(const std::vector<std::string>& sets);
  Result<Config> finish();

 private:
  // Calls visit(name, value, line) for each key of `map` that is a plain name; any other
  // key is reported as bad_key.
  template <typename Visit>
  void for_each_plain_key(const YAML::Node& map, Visit visit);
  void walk_section(const YAML::Node& map, const std::string& prefix);
  void walk_relays(const YAML::Node& node);
  void walk_relay(const YAML::Node& map, size_t index);
  // False (with an error) if `path` was already given earlier in the file.
  bool first_in_file(const std::string& path, int line);

  template <typename Root>
  void assign_node(const KeySpec<Root>& key, Root& root, const std::string& path,
                   const YAML::Node& value, int line);
  template <typename Root>
  void assign_text(const KeySpec<Root>& key, Root& root, const std::string& path,
                   std::string_view text, const Origin& origin);
  void set_one(std::string_view key, std::string_view value, const Origin& origin);
  std::string unknown_key_message(std::string_view path) const;
  void check_required_relay_keys();

  Config config_;
  Diagnostics diag_;
};

void Loader::load_yaml(std::string_view text) {
  YAML::Node root;
  try {
    const std::string yaml(text);
    if (const std::optional<int> line = second_document(yaml)) {
      diag_.add_in_file(*line, "yaml_syntax", "only one YAML document is allowed");
      return;
    }
    root = YAML::Load(yaml);
  } catch (const YAML::DeepRecursion&) {
    // yaml-cpp 0.7 gives this one the message "bad file" and an unreliable mark.
    diag_.add_in_file(0, "yaml_syntax", "invalid YAML: nested too deeply");
    return;
  } catch (const YAML::Exception& e) {
    diag_.add_in_file(e.mark.line + 1, "yaml_syntax", "invalid YAML: " + e.msg);
    return;
  }
  if (root.IsNull()) return;
  if (!root.IsMap()) {
    diag_.add_in_file(line_of(root), "bad_root",
                      "the top level must be a map of sections, got " + describe(root));
    return;
  }
  walk_section(root, "");
}

bool Loader::first_in_file(const std::string& path, int line) {
  const Origin here{Origin::Kind::kFile, line, {}};
  if (const Origin* seen = diag_.origin(path); seen != nullptr) {
    diag_.add(&here, path, "duplicate_key",
              "duplicate key (first at line " + std::to_string(seen->line) + ")");
    return false;
  }
  diag_.set_origin(path, here);
  return true;
}

template <typename Visit>
void Loader::for_each_plain_key(const YAML::Node& map, Visit visit) {
  for (auto it = map.begin(); it != map.end(); ++it) {
    // Copies: `it->` yields a proxy that dies at the end of the expression.
    const YAML::Node key_node = it->first;
    const YAML::Node value = it->second;
    const int line = line_of(key_node);
    if (!key_node.IsScalar()) {
      diag_.add_in_file(line, "bad_key", "keys must be plain names, got " + describe(key_node));
      continue;
    }
    visit(key_node.Scalar(), value, line);
  }
}

void Loader::walk_section(const YAML::Node& map, const std::string& prefix) {
  for_each_plain_key(map, [&](const std::string& name, const YAML::Node& value, int line) {
    const std::string path = prefix.empty() ? name : prefix + "." + name;
    const Origin here{Origin::Kind::kFile, line, {}};
    if (path == kRelaysKey) {
      if (first_in_file(path, line)) walk_relays(value);
    } else if (const auto* key = find_key(config_keys(), path); key != nullptr) {
      if (first_in_file(path, line)) assign_node(*key, config_, path, value, line);
    } else if (is_section(config_keys(), path)) {
      if (!first_in_file(path, line) || value.IsNull()) return;
      if (!value.IsMap()) {
        diag_.add(&here, path, "bad_type", "must be a map, got " + describe(value));
        return;
      }
      walk_section(value, path);
    } else {
      diag_.add(&here, path, "unknown_key", unknown_key_message(path));
    }
  });
}

void Loader::walk_relays(const YAML::Node& node) {
  if (node.IsNull()) return;
  if (!node.IsSequence()) {
    diag_.add_for_key(kRelaysKey, "bad_type", "must be a list of maps, got " + describe(node));
    return;
  }
  for (size_t i = 0; i < node.size(); ++i) {
    const YAML::Node item = node[i];
    const std::string path = relay_path(i);
    const Origin here{Origin::Kind::kFile, line_of(item), {}};
    config_.relays.emplace_back();
    diag_.set_origin(path, here);
    if (!item.IsMap()) {
      diag_.add(&here, path, "bad_type", "must be a map, got " + describe(item));
      continue;
    }
    walk_relay(item, i);
  }
}

void Loader::walk_relay(const YAML::Node& map, size_t index) {
  const std::string prefix = relay_path(index);
  for_each_plain_key(map, [&](const std::string& name, const YAML::Node& value, int line) {
    const std::string path = prefix + "." + name;
    const auto* key = find_key(relay_keys(), name);
    if (key == nullptr) {
      const Origin here{Origin::Kind::kFile, line, {}};
      diag_.add(&here, path, "unknown_key", unknown_key_message(path));
    } else if (first_in_file(path, line)) {
      assign_node(*key, config_.relays[index], path, value, line);
    }
  });
}

template <typename Root>
void Loader::assign_node(const KeySpec<Root>& key, Root& root, const std::string& path,
                         const YAML::Node& value, int line) {
  const Origin here{Origin::Kind::kFile, line, {}};
  if (value.IsNull() && key.kind == ValueKind::kString) {
    assign_text(key, root, path, "", here);  // `topic:` means the empty string
    return;
  }
  if (!value.IsScalar()) {
    diag_.add(&here, path, "bad_type", "must be " + key.expectation + ", got " + describe(value));
    return;
  }
  // yaml-cpp tags quoted and block scalars "!": they are strings, not numbers or booleans.
  const bool quoted = value.Tag() == "!";
  if (quoted && key.kind != ValueKind::kString && key.kind != ValueKind::kEnum) {
    diag_.add(&here, path, "bad_type",
              "must be " + key.expectation + ", got the string " + yaml_quote(value.Scalar()));
    return;
  }
  assign_text(key, root, path, value.Scalar(), here);
}

template <typename Root>
void Loader::assign_text(const KeySpec<Root>& key, Root& root, const std::string& path,
                         std::string_view text, const Origin& origin) {
  if (auto error = key.assign(root, text); error.has_value()) {
    diag_.add(&origin, path, error->reason, error->message);
    return;
  }
  diag_.set_origin(path, origin);
}

std::string Loader::unknown_key_message(std::string_view path) const {
  // Find the first component that is not a known key or section; suggest its siblings.
  std::string prefix;
  std::string_view rest = path;
  std::vector<std::string> candidates;
  std::string name;
  if (path.starts_with("relays[")) {
    const size_t dot = path.find('.');
    name = std::string(path.substr(dot + 1));
    for (const auto& key : relay_keys()) candidates.push_back(key.path);
  } else {
    while (true) {
      const size_t dot = rest.find('.');
      name = std::string(rest.substr(0, dot));
      const std::string next = prefix.empty() ? name : prefix + "." + name;
      if (dot == std::string_view::npos || !is_section(config_keys(), next)) break;
      prefix = next;
      rest.remove_prefix(dot + 1);
    }
    candidates = child_names(config_keys(), prefix);
    if (prefix.empty()) candidates.emplace_back(kRelaysKey);
  }
  if (name == "<<") return "unknown key (YAML merge keys are not supported)";
  const std::string hint = closest_name(name, candidates);
  return hint.empty() ? "unknown key" : "unknown key (did you mean " + hint + "?)";
}

void Loader::apply_env(const std::map<std::string, std::string>& env) {
  // The conventions of the NATS tools and of Dynamo's own processes; the KVMOCK_ variable of
  // the same key, being specific, beats them.
  for (const auto& [convention, key_path] : conventional_env_vars()) {
    if (const auto it = env.find(convention); it != env.end()) {
      const Origin here{Origin::Kind::kEnv, 0, convention};
      assign_text(*find_key(config_keys(), key_path), config_, key_path, it->second, here);
    }
  }
  // Dynamo sets the request plane's port alone; the listen host stays the configured one.
  if (const auto it = env.find("DYN_TCP_RPC_PORT"); it != env.end()) {
    const Origin here{Origin::Kind::kEnv, 0, "DYN_TCP_RPC_PORT"};
    auto listen = parse_host_port(config_.dynamo.tcp_listen);
    const std::string host = !listen ? std::string("0.0.0.0")
                             : listen->host.find(':') != std::string::npos
                                 ? "[" + listen->host + "]"
                                 : listen->host;
    assign_text(*find_key(config_keys(), "dynamo.tcp_listen"), config_, "dynamo.tcp_listen",
                host + ":" + it->second, here);
  }
  std::vector<std::string> names;
  for (const auto& key : config_keys()) names.push_back(env_var_for_key(key.path));
  for (const auto& [name, value] : env) {
    if (!name.starts_with("KVMOCK_")) continue;
    const Origin here{Origin::Kind::kEnv, 0, name};
    bool known = false;
    for (const auto& key : config_keys()) {
      if (env_var_for_key(key.path) == name) {
        assign_text(key, config_, key.path, value, here);
        known = true;
        break;
      }
    }
    if (!known) {
      const std::string hint = closest_name(name, names);
      diag_.add(&here, {}, "unknown_key",
                hint.empty() ? "unknown KVMOCK_ variable"
                             : "unknown KVMOCK_ variable (did you mean " + hint + "?)");
    }
  }
}

void Loader::apply_sets(const std::vector<std::string>& sets) {
  const Origin here{Origin::Kind::kSet, 0, {}};
  for (const auto& set : sets) {
    const size_t eq = set.find('=');
    if (eq == std::string::npos || eq == 0) {
      diag_.add(&here, set, "bad_set", "expected KEY=VALUE");
      continue;
    }
    set_one(std::string_view(set).substr(0, eq), std::string_view(set).substr(eq + 1), here);
  }
}

void Loader::set_one(std::string_view key_text, std::string_view value, const Origin& origin) {
  const std::string path(key_text);
  if (path.starts_with("relays[")) {
    const size_t close = path.find(']');
    const ParsedUnsigned index = parse_unsigned(
        std::string_view(path).substr(7, close == std::string::npos ? 0 : close - 7));
    if (close == std::string::npos || index.status != UnsignedParse::kOk ||
        path.size() < close + 2 || path[close + 1] != '.' || path[7] == '+' || path[7] == '-') {
      diag_.add(&origin, path, "unknown_key", "expected relays[N].KEY");
      return;
    }
    if (index.value > config_.relays.size()) {
      diag_.add(&origin, path, "unknown_key",
                "index out of range: there are " + std::to_string(config_.relays.size()) +
                    " relays (relays[" + std::to_string(config_.relays.size()) + "] adds one)");
      return;
    }
    const std::string item = relay_path(index.value);
    const std::string name = path.substr(close + 2);
    const auto* key = find_key(relay_keys(), name);
    if (key == nullptr) {
      diag_.add(&origin, item + "." + name, "unknown_key", unknown_key_message(item + "." + name));
      return;
    }
    if (index.value == config_.relays.size()) {
      config_.relays.emplace_back();
      diag_.set_origin(item, origin);
    }
    assign_text(*key, config_.relays[index.value], item + "." + name, value, origin);
    return;
  }
  if (const auto* key = find_key(config_keys(), path); key != nullptr) {
    assign_text(*key, config_, path, value, origin);
  } else if (path == kRelaysKey) {
    diag_.add(&origin, path, "unknown_key", "is a list; set relays[N].KEY");
  } else if (is_section(config_keys(), path)) {
    diag_.add(&origin, path, "unknown_key", "is a section; set one of its keys");
  } else {
    diag_.add(&origin, path, "unknown_key", unknown_key_message(path));
  }
}

void Loader::check_required_relay_keys() {
  for (size_t i = 0; i < config_.relays.size(); ++i) {
    const std::string item = relay_path(i);
    for (const auto& key : relay_keys()) {
      const std::string path = item + "." + key.path;
      if (key.required && diag_.origin(path) == nullptr) {
        diag_.add(diag_.origin(item), path, "missing_key", "required key is missing");
      }
    }
  }
}

Result<Config> Loader::finish() {
  // Cross-key rules on a half-parsed config would only add noise to the real errors.
  if (!diag_.has_errors()) check_required_relay_keys();
  if (!diag_.has_errors()) check_config_rules(config_, diag_);
  if (diag_.has_errors()) return diag_.to_error();
  return std::move(config_);
}

}  // namespace

Result<Config> parse_config(std::string_view yaml_text, std::string_view file_name,
                            const std::vector<std::string>& sets,
                            const std::map<std::string, std::string>& env) {
  try {
    Loader loader(file_name);
    loader.load_yaml(yaml_text);
    loader.apply_env(env);
    loader.apply_sets(sets);
    return loader.finish();
  } catch (const std::exception& e) {
    // yaml-cpp may throw from accessors on malformed trees; nothing escapes the loader.
    return make_error("internal", std::string(file_name) + ": cannot load config: " + e.what());
  } catch (...) {
    return make_error("internal", std::string(file_name) + ": cannot load config");
  }
}

Result<Config> load_config(const ConfigSource& source) {
  std::string text;
  if (!source.path.empty()) {
    std::FILE* file = std::fopen(source.path.c_str(), "rb");
    if (file == nullptr) {
      return make_error("io", source.path + ": cannot read: " + std::strerror(errno));
    }
    char buf[65536];
    size_t n = 0;
    while ((n = std::fread(buf, 1, sizeof(buf), file)) > 0 && text.size() <= kMaxFileBytes) {
      text.append(buf, n);
    }
    const int read_errno = std::ferror(file) ? errno : 0;
    std::fclose(file);
    if (read_errno != 0) {
      return make_error("io", source.path + ": cannot read: " + std::strerror(read_errno));
    }
    if (text.size() > kMaxFileBytes) {
      return make_error("io", source.path + ": cannot read: larger than 16 MiB");
    }
  }
  return parse_config(text, source.path, source.sets, source.env);
}

std::map<std::string, std::string> config_environment() {
  std::map<std::string, std::string> env;
  for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
    const std::string_view text(*entry);
    const size_t eq = text.find('=');
    if (eq == std::string_view::npos) continue;
    const std::string_view name = text.substr(0, eq);
    const bool conventional =
        std::any_of(conventional_env_vars().begin(), conventional_env_vars().end(),
                    [&](const auto& entry) { return entry.first == name; });
    if (conventional || name == "DYN_TCP_RPC_PORT" || name.starts_with("KVMOCK_")) {
      env.emplace(std::string(name), std::string(text.substr(eq + 1)));
    }
  }
  return env;
}

}  // namespace kvmock
