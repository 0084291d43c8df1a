// The key table: every config key declared once, with its type, accepted values, doc line
// and the struct member it is stored in. The YAML loader, --set, the environment overlay,
// range checks, to_yaml(), operator== and config_reference_markdown() are all driven by
// this table, so adding a key is one entry in schema.cc (plus its struct member).
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config/config.h"
#include "core/common/result.h"

namespace kvmock {

enum class ValueKind : uint8_t { kBool, kUnsigned, kDouble, kString, kEnum };

// One scalar key stored in a `Root` (Config, or RelayConfig for the items of `relays`).
template <typename Root>
struct KeySpec {
  std::string path;  // dotted path relative to Root: "workers.engine.block_size"
  ValueKind kind = ValueKind::kString;
  std::string type_name;    // for the reference: "uint32", "number", "enum", ...
  std::string allowed;      // for the reference: "1..1024", "`lifo`, `fifo`", ...
  std::string expectation;  // for type errors: "must be {expectation}, got ..."
  std::string doc;          // one line, for the reference
  bool required = false;    // must be given explicitly (relay endpoint, worker_id)
  bool secret = false;      // redacted by check-config's printout

  // Parses `text` as this key's type, checks its range, and stores it. On failure returns
  // an Error whose message is the tail of "KEY: message" (e.g. "must be at least 1, got 0").
  std::function<std::optional<Error>(Root&, std::string_view text)> assign;
  // The value as scalar text that `assign` accepts back (unquoted).
  std::function<std::string(const Root&)> render;
  std::function<bool(const Root&, const Root&)> equal;
};

// Keys of Config, grouped by section in printing order (relays are not in here).
const std::vector<KeySpec<Config>>& config_keys();
// Keys of one item of the `relays` list.
const std::vector<KeySpec<RelayConfig>>& relay_keys();

// The name of the list key whose items follow relay_keys().
inline constexpr std::string_view kRelaysKey = "relays";

template <typename Root>
const KeySpec<Root>* find_key(const std::vector<KeySpec<Root>>& keys, std::string_view path) {
  for (const auto& key : keys) {
    if (key.path == path) return &key;
  }
  return nullptr;
}

// True if `path` names a map of keys ("workers", "workers.engine") rather than a key.
template <typename Root>
bool is_section(const std::vector<KeySpec<Root>>& keys, std::string_view path) {
  for (const auto& key : keys) {
    if (key.path.size() > path.size() && key.path.starts_with(path) &&
        key.path[path.size()] == '.') {
      return true;
    }
  }
  return false;
}

// Names directly under `prefix` ("" for the top level), for "did you mean" hints.
template <typename Root>
std::vector<std::string> child_names(const std::vector<KeySpec<Root>>& keys,
                                     std::string_view prefix) {
  std::vector<std::string> names;
  for (const auto& key : keys) {
    std::string_view rest = key.path;
    if (!prefix.empty()) {
      if (!(rest.size() > prefix.size() && rest.starts_with(prefix) && rest[prefix.size()] == '.'))
        continue;
      rest.remove_prefix(prefix.size() + 1);
    }
    std::string name(rest.substr(0, rest.find('.')));
    bool seen = false;
    for (const auto& n : names) seen = seen || n == name;
    if (!seen) names.push_back(std::move(name));
  }
  return names;
}

// The environment variable that overrides a Config key: "KVMOCK_" + path upper-cased
// with '.' as '_' (workers.count -> KVMOCK_WORKERS_COUNT).
std::string env_var_for_key(std::string_view path);

// Environment variables other tools define that set a Config key too (NATS_SERVER ->
// nats.url, ETCD_ENDPOINTS -> dynamo.etcd_endpoints, DYN_* as Dynamo's own processes read
// them), so kvmockd reads the environment a Dynamo deployment already sets. DYN_TCP_RPC_PORT,
// only the port of dynamo.tcp_listen, is applied by the loader itself.
const std::vector<std::pair<std::string, std::string>>& conventional_env_vars();

// The closest of `candidates` to `name` by edit distance, or "" if none is plausibly a typo.
std::string closest_name(std::string_view name, const std::vector<std::string>& candidates);

}  // namespace kvmock
