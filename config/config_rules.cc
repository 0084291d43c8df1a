#include "config/config_rules.h"

#include <algorithm>
#include <limits>
#include <string>
#include <vector>

#include "config/endpoint.h"
#include "config/lora_modules.h"
#include "config/scalar_text.h"
#include "config/zmq_topic.h"
#include "core/common/ports.h"

namespace kvmock {
namespace {

constexpr uint64_t kMaxPort = 65535;

void check_timing_profile_has_path(const Config& c, Diagnostics& diag) {
  const TimingArgs& timing = c.workers.engine.timing;
  if (timing.model == TimingModelKind::kProfile && timing.profile_path.empty()) {
    diag.add_for_key("workers.engine.timing.model", "inconsistent",
                     "is profile but workers.engine.timing.profile_path is empty");
  }
}

// Tuning a tier that does not exist is almost always a forgotten num_blocks.
void check_g2_tuning_needs_g2(const Config& c, Diagnostics& diag) {
  const G2Args& g2 = c.workers.engine.g2;
  if (g2.num_blocks > 0) return;
  const G2Args defaults;
  auto report = [&](const char* key, const std::string& value) {
    diag.add_for_key(key, "inconsistent",
                     "is set to " + value + " but G2 is off (workers.engine.g2.num_blocks is 0)");
  };
  if (g2.bandwidth_g1_to_g2_gbps != defaults.bandwidth_g1_to_g2_gbps) {
    report("workers.engine.g2.bandwidth_g1_to_g2_gbps", format_double(g2.bandwidth_g1_to_g2_gbps));
  }
  if (g2.bandwidth_g2_to_g1_gbps != defaults.bandwidth_g2_to_g1_gbps) {
    report("workers.engine.g2.bandwidth_g2_to_g1_gbps", format_double(g2.bandwidth_g2_to_g1_gbps));
  }
  if (g2.offload_batch_size != defaults.offload_batch_size) {
    report("workers.engine.g2.offload_batch_size", std::to_string(g2.offload_batch_size));
  }
}

void check_g2_has_kv_bytes(const Config& c, Diagnostics& diag) {
  const G2Args& g2 = c.workers.engine.g2;
  if (g2.num_blocks > 0 && g2.kv_bytes_per_token == 0) {
    diag.add_for_key("workers.engine.g2.num_blocks", "inconsistent",
                     "G2 needs workers.engine.g2.kv_bytes_per_token > 0 to time its transfers");
  }
}

// Without chunked prefill a prompt is admitted whole, so the pass budget bounds it.
void check_unchunked_budget_holds_a_block(const Config& c, Diagnostics& diag) {
  const EngineArgs& e = c.workers.engine;
  if (!e.enable_chunked_prefill && e.max_num_batched_tokens < e.block_size) {
    diag.add_for_key("workers.engine.max_num_batched_tokens", "inconsistent",
                     std::to_string(e.max_num_batched_tokens) +
                         " is less than workers.engine.block_size " + std::to_string(e.block_size) +
                         " with chunked prefill off: not even one block could be prefilled");
  }
}

void check_unchunked_budget_holds_max_model_len(const Config& c, Diagnostics& diag) {
  const EngineArgs& e = c.workers.engine;
  if (!e.enable_chunked_prefill && e.max_model_len > 0 &&
      e.max_num_batched_tokens < e.max_model_len && e.max_num_batched_tokens >= e.block_size) {
    diag.add_for_key("workers.engine.max_num_batched_tokens", "inconsistent",
                     std::to_string(e.max_num_batched_tokens) +
                         " is less than workers.engine.max_model_len " +
                         std::to_string(e.max_model_len) +
                         " with chunked prefill off: long prompts could never be scheduled");
  }
}

void check_worker_ids_fit(const Config& c, Diagnostics& diag) {
  const WorkersConfig& w = c.workers;
  if (w.count > 0 && w.worker_id_base > std::numeric_limits<uint64_t>::max() - (w.count - 1)) {
    diag.add_for_key("workers.worker_id_base", "inconsistent",
                     std::to_string(w.worker_id_base) + " + workers.count " +
                         std::to_string(w.count) + " overflows a 64-bit worker id");
  }
}

void check_relay_ids_unique(const Config& c, Diagnostics& diag) {
  for (size_t j = 1; j < c.relays.size(); ++j) {
    for (size_t i = 0; i < j; ++i) {
      if (c.relays[i].worker_id == c.relays[j].worker_id) {
        diag.add_for_key("relays[" + std::to_string(j) + "].worker_id", "inconsistent",
                         std::to_string(c.relays[j].worker_id) +
                             " is also the worker_id of relays[" + std::to_string(i) + "]");
        break;
      }
    }
  }
}

void check_relay_ids_outside_worker_range(const Config& c, Diagnostics& diag) {
  const WorkersConfig& w = c.workers;
  if (w.count == 0) return;
  const uint64_t first = w.worker_id_base;
  const uint64_t last = first + (w.count - 1);  // check_worker_ids_fit reports overflow
  if (last < first) return;
  for (size_t i = 0; i < c.relays.size(); ++i) {
    const uint64_t id = c.relays[i].worker_id;
    if (id >= first && id <= last) {
      diag.add_for_key("relays[" + std::to_string(i) + "].worker_id", "inconsistent",
                       std::to_string(id) + " is a mock worker's id (workers.worker_id_base " +
                           std::to_string(first) + " and workers.count " + std::to_string(w.count) +
                           " use " + std::to_string(first) + ".." + std::to_string(last) + ")");
    }
  }
}

struct PortRange {
  std::string key;
  uint64_t first = 0;
  uint64_t size = 0;
  std::string what;  // why the range has this size, for "runs past" messages

  uint64_t last() const { return first + size - 1; }
  std::string describe() const {
    return size == 1 ? "port " + std::to_string(first)
                     : "ports " + std::to_string(first) + ".." + std::to_string(last());
  }
};

std::vector<PortRange> listening_ports(const Config& c) {
  std::vector<PortRange> ranges;
  if (auto admin = parse_host_port(c.admin.listen); admin.ok() && admin->port != 0) {
    ranges.push_back({"admin.listen", admin->port, 1, "the admin server"});
  }
  if (c.dynamo.discovery != DynamoDiscoveryKind::kNone &&
      c.dynamo.request_plane == DynamoRequestPlaneKind::kTcp) {
    if (auto tcp = parse_host_port(c.dynamo.tcp_listen); tcp.ok() && tcp->port != 0) {
      ranges.push_back({"dynamo.tcp_listen", tcp->port, 1, "the Dynamo request plane"});
    }
  }
  const WorkersConfig& w = c.workers;
  if (w.count == 0) return ranges;
  if (w.http_base_port != 0) {
    ranges.push_back({"workers.http_base_port", w.http_base_port, w.count,
                      std::to_string(w.count) + " workers"});
  }
  if (w.zmq_events.enabled) {
    const uint64_t sockets = dp_slot(w.count, w.engine.dp_size, 0);
    const std::string what =
        std::to_string(w.count) + " workers x " + std::to_string(w.engine.dp_size) + " dp ranks";
    // With `connect` the PUB sockets dial out: base_port is not listened on.
    if (w.zmq_events.connect.empty()) {
      ranges.push_back({"workers.zmq_events.base_port", w.zmq_events.base_port, sockets, what});
    }
    if (w.zmq_events.replay_base_port != 0) {
      ranges.push_back(
          {"workers.zmq_events.replay_base_port", w.zmq_events.replay_base_port, sockets, what});
    }
  }
  return ranges;
}

void check_ports_disjoint(const Config& c, Diagnostics& diag) {
  std::vector<PortRange> ranges = listening_ports(c);
  std::vector<PortRange> fitting;
  for (const auto& r : ranges) {
    if (r.last() > kMaxPort) {
      diag.add_for_key(r.key, "inconsistent", r.describe() + " run past 65535 (" + r.what + ")");
    } else {
      fitting.push_back(r);
    }
  }
  for (size_t j = 1; j < fitting.size(); ++j) {
    for (size_t i = 0; i < j; ++i) {
      const PortRange& a = fitting[i];
      const PortRange& b = fitting[j];
      if (a.first > b.last() || b.first > a.last()) continue;
      // Blame the key the user wrote; if both or neither, the later one.
      const bool blame_a = diag.origin(b.key) == nullptr && diag.origin(a.key) != nullptr;
      const PortRange& blamed = blame_a ? a : b;
      const PortRange& other = blame_a ? b : a;
      diag.add_for_key(blamed.key, "inconsistent",
                       blamed.describe() + (blamed.size == 1 ? " overlaps " : " overlap ") +
                           other.key + " " + other.describe());
    }
  }
}

void check_something_to_do(const Config& c, Diagnostics& diag) {
  if (c.workers.count == 0 && c.relays.empty()) {
    diag.add_for_key("workers.count", "inconsistent",
                     "is 0 and there are no relays: nothing to do");
  }
}

void check_load_driver_has_workers(const Config& c, Diagnostics& diag) {
  if (c.workers.load.enabled && c.workers.count == 0) {
    diag.add_for_key("workers.load.enabled", "inconsistent",
                     "is true but workers.count is 0: no mock workers to drive");
  }
}

void check_one_nats_auth_method(const Config& c, Diagnostics& diag) {
  const NatsConfig& n = c.nats;
  const std::pair<const char*, bool> methods[] = {
      {"nats.user", !n.user.empty() || !n.password.empty()},
      {"nats.token", !n.token.empty()},
      {"nats.nkey_seed_file", !n.nkey_seed_file.empty()},
      {"nats.credentials_file", !n.credentials_file.empty()},
  };
  const char* first = nullptr;
  for (const auto& [key, used] : methods) {
    if (!used) continue;
    if (first == nullptr) {
      first = key;
      continue;
    }
    diag.add_for_key(key, "inconsistent",
                     std::string("cannot be combined with ") + first +
                         ": choose one NATS authentication method");
  }
}

void check_nats_password_has_user(const Config& c, Diagnostics& diag) {
  if (!c.nats.password.empty() && c.nats.user.empty()) {
    diag.add_for_key("nats.password", "inconsistent", "is set but nats.user is empty");
  }
}

void check_tls_cert_and_key_pair(const Config& c, Diagnostics& diag) {
  const NatsTlsConfig& tls = c.nats.tls;
  if (!tls.cert_file.empty() && tls.key_file.empty()) {
    diag.add_for_key("nats.tls.cert_file", "inconsistent", "is set but nats.tls.key_file is empty");
  }
  if (tls.cert_file.empty() && !tls.key_file.empty()) {
    diag.add_for_key("nats.tls.key_file", "inconsistent", "is set but nats.tls.cert_file is empty");
  }
}

void check_one_admin_token_source(const Config& c, Diagnostics& diag) {
  if (!c.admin.auth_token.empty() && !c.admin.auth_token_file.empty()) {
    diag.add_for_key("admin.auth_token_file", "inconsistent",
                     "cannot be combined with admin.auth_token: set one of them");
  }
}

// A Dynamo instance is a mock worker serving a model the frontend can load: without a
// model directory there is no model card (docs/dynamo-discovery.md).
void check_dynamo_discovery_has_workers_and_model(const Config& c, Diagnostics& diag) {
  if (c.dynamo.discovery == DynamoDiscoveryKind::kNone) return;
  if (c.workers.count == 0) {
    diag.add_for_key("dynamo.discovery", "inconsistent",
                     "is on but workers.count is 0: only mock workers register as instances");
  }
  if (c.workers.model.path.empty()) {
    diag.add_for_key("dynamo.discovery", "inconsistent",
                     "is on but workers.model.path is empty: the model card needs a model "
                     "directory (config.json, tokenizer.json, tokenizer_config.json)");
  }
}

// {port} is the worker's HTTP port (llm-d names a pod by the address it serves on); with
// HTTP off there is none, and a topic of ":0" would silently collide across workers.
void check_zmq_topic_port_needs_http(const Config& c, Diagnostics& diag) {
  const ZmqEventsConfig& z = c.workers.zmq_events;
  if (!z.enabled || c.workers.http_base_port != 0) return;
  auto names = zmq_topic_placeholders(z.topic);
  if (!names) return;  // the key's own check already reported it
  if (std::find(names->begin(), names->end(), "port") != names->end()) {
    diag.add_for_key("workers.zmq_events.topic", "inconsistent",
                     "uses {port} but workers.http_base_port is 0: the workers serve no HTTP port");
  }
}

// An adapter's base must be a model the worker serves, and its own name must not be one
// (a request naming it would be ambiguous).
void check_lora_modules_against_served_names(const Config& c, Diagnostics& diag) {
  auto modules = parse_lora_modules(c.workers.lora.modules);
  if (!modules) return;  // the key's own check already reported it
  std::vector<std::string> served = split_comma_list(c.workers.model.aliases);
  served.insert(served.begin(), c.workers.model.name);
  const auto is_served = [&](const std::string& name) {
    return std::find(served.begin(), served.end(), name) != served.end();
  };
  for (const LoraModule& module : *modules) {
    if (is_served(module.name)) {
      diag.add_for_key("workers.lora.modules", "inconsistent",
                       "adapter \"" + module.name + "\" has the name of a served model");
    }
    if (!module.base.empty() && !is_served(module.base)) {
      diag.add_for_key("workers.lora.modules", "inconsistent",
                       "adapter \"" + module.name + "\" names base \"" + module.base +
                           "\", which is not workers.model.name or one of workers.model.aliases");
    }
  }
}

using Rule = void (*)(const Config&, Diagnostics&);

constexpr Rule kRules[] = {
    check_timing_profile_has_path,
    check_g2_tuning_needs_g2,
    check_g2_has_kv_bytes,
    check_unchunked_budget_holds_a_block,
    check_unchunked_budget_holds_max_model_len,
    check_worker_ids_fit,
    check_relay_ids_unique,
    check_relay_ids_outside_worker_range,
    check_ports_disjoint,
    check_something_to_do,
    check_load_driver_has_workers,
    check_one_nats_auth_method,
    check_nats_password_has_user,
    check_tls_cert_and_key_pair,
    check_one_admin_token_source,
    check_dynamo_discovery_has_workers_and_model,
    check_zmq_topic_port_needs_http,
    check_lora_modules_against_served_names,
};

}  // namespace

void check_config_rules(const Config& config, Diagnostics& diag) {
  for (const Rule rule : kRules) rule(config, diag);
}

}  // namespace kvmock
