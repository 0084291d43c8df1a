#include "config/schema.h"

#include <algorithm>
#include <cctype>
#include <limits>
#include <type_traits>
#include <utility>

#include "config/endpoint.h"
#include "config/lora_modules.h"
#include "config/scalar_text.h"
#include "config/zmq_topic.h"

namespace kvmock {
namespace {

constexpr uint64_t kNoMax = std::numeric_limits<uint64_t>::max();
constexpr double kNoMaxDouble = std::numeric_limits<double>::max();

using Validator = std::string (*)(std::string_view);

// Builders for KeySpec<Root>. `ref` is a captureless lambda returning a reference to the
// member that stores the key; it is called on a const Root only to read.
template <typename Root>
struct Keys {
  template <typename Ref>
  using Member = std::remove_reference_t<std::invoke_result_t<Ref, Root&>>;

  template <typename Ref>
  static auto& at(Ref ref, const Root& root) {
    // Reading through the non-const accessor keeps each key to one accessor lambda.
    return ref(const_cast<Root&>(root));
  }

  static KeySpec<Root> spec(std::string path, ValueKind kind, std::string type_name,
                            std::string allowed, std::string expectation, std::string doc) {
    KeySpec<Root> key;
    key.path = std::move(path);
    key.kind = kind;
    key.type_name = std::move(type_name);
    key.allowed = std::move(allowed);
    key.expectation = std::move(expectation);
    key.doc = std::move(doc);
    return key;
  }

  template <typename Ref>
  static void add_common(KeySpec<Root>& key, Ref ref) {
    key.equal = [ref](const Root& a, const Root& b) { return at(ref, a) == at(ref, b); };
  }

  template <typename Ref>
  static KeySpec<Root> boolean(std::string path, Ref ref, std::string doc) {
    KeySpec<Root> key = spec(std::move(path), ValueKind::kBool, "bool", "`true`, `false`",
                             "true or false", std::move(doc));
    key.assign = [ref](Root& root, std::string_view text) -> std::optional<Error> {
      const auto value = parse_bool(text);
      if (!value) return make_error("bad_type", "must be true or false, got " + std::string(text));
      ref(root) = *value;
      return std::nullopt;
    };
    key.render = [ref](const Root& root) { return std::string(at(ref, root) ? "true" : "false"); };
    add_common(key, ref);
    return key;
  }

  // An unsigned integer in [min, max] (max is also capped by the member's width).
  template <typename Ref>
  static KeySpec<Root> uint(std::string path, Ref ref, uint64_t min, uint64_t max,
                            std::string doc) {
    using T = Member<Ref>;
    static_assert(std::is_unsigned_v<T>);
    max = std::min<uint64_t>(max, std::numeric_limits<T>::max());
    // Narrow members (ports) show their limit; wide ones are "unbounded" at their limit.
    const bool bounded = max != std::numeric_limits<T>::max() || sizeof(T) < 4;
    std::string allowed = bounded   ? std::to_string(min) + ".." + std::to_string(max)
                          : min > 0 ? ">= " + std::to_string(min)
                                    : "any";
    KeySpec<Root> key =
        spec(std::move(path), ValueKind::kUnsigned, "uint" + std::to_string(8 * sizeof(T)),
             std::move(allowed), "an integer", std::move(doc));
    key.assign = [ref, min, max, bounded](Root& root,
                                          std::string_view text) -> std::optional<Error> {
      const ParsedUnsigned parsed = parse_unsigned(text);
      if (parsed.status == UnsignedParse::kNotAnInteger) {
        return make_error("bad_type", "must be an integer, got " + std::string(text));
      }
      const bool below = parsed.status == UnsignedParse::kNegative || parsed.value < min;
      const bool above = parsed.status == UnsignedParse::kTooBig || parsed.value > max;
      if (below || above) {
        std::string expected =
            bounded ? "must be between " + std::to_string(min) + " and " + std::to_string(max)
            : below ? "must be at least " + std::to_string(min)
                    : "must be at most " + std::to_string(max);
        return make_error("out_of_range", expected + ", got " + std::string(text));
      }
      ref(root) = static_cast<T>(parsed.value);
      return std::nullopt;
    };
    key.render = [ref](const Root& root) { return std::to_string(at(ref, root)); };
    add_common(key, ref);
    return key;
  }

  // A finite number in [min, max], or in (min, max] when `exclusive_min`.
  template <typename Ref>
  static KeySpec<Root> number(std::string path, Ref ref, double min, double max, bool exclusive_min,
                              std::string doc) {
    const bool bounded = max != kNoMaxDouble;
    std::string allowed = bounded         ? format_double(min) + ".." + format_double(max)
                          : exclusive_min ? "> " + format_double(min)
                                          : ">= " + format_double(min);
    KeySpec<Root> key = spec(std::move(path), ValueKind::kDouble, "number", std::move(allowed),
                             "a number", std::move(doc));
    key.assign = [ref, min, max, exclusive_min, bounded](
                     Root& root, std::string_view text) -> std::optional<Error> {
      const auto value = parse_double(text);
      if (!value) return make_error("bad_type", "must be a number, got " + std::string(text));
      const bool below = exclusive_min ? *value <= min : *value < min;
      if (below || *value > max) {
        const std::string shown_min = std::string(format_double(min));
        std::string expected = bounded
                                   ? "must be between " + shown_min + " and " + format_double(max)
                               : exclusive_min ? "must be greater than " + shown_min
                                               : "must be at least " + shown_min;
        return make_error("out_of_range", expected + ", got " + std::string(text));
      }
      ref(root) = *value;
      return std::nullopt;
    };
    key.render = [ref](const Root& root) { return format_double(at(ref, root)); };
    add_common(key, ref);
    return key;
  }

  // A string; `check` (optional) returns a message tail for unacceptable text.
  template <typename Ref>
  static KeySpec<Root> string(std::string path, Ref ref, std::string allowed, Validator check,
                              std::string doc) {
    KeySpec<Root> key = spec(std::move(path), ValueKind::kString, "string", std::move(allowed),
                             "a string", std::move(doc));
    key.assign = [ref, check](Root& root, std::string_view text) -> std::optional<Error> {
      if (check != nullptr) {
        std::string problem = check(text);
        if (!problem.empty()) return make_error("bad_value", std::move(problem));
      }
      ref(root) = std::string(text);
      return std::nullopt;
    };
    key.render = [ref](const Root& root) { return at(ref, root); };
    add_common(key, ref);
    return key;
  }

  template <typename Ref>
  static KeySpec<Root> secret(std::string path, Ref ref, std::string doc) {
    KeySpec<Root> key = string(std::move(path), ref, "", nullptr, std::move(doc));
    key.secret = true;
    return key;
  }

  template <typename Ref>
  static KeySpec<Root> choice(std::string path, Ref ref,
                              std::vector<std::pair<std::string, Member<Ref>>> names,
                              std::string doc) {
    std::string allowed;
    std::string spelled;
    for (const auto& [name, value] : names) {
      allowed += (allowed.empty() ? "`" : ", `") + name + "`";
      spelled += (spelled.empty() ? "" : " | ") + name;
    }
    KeySpec<Root> key = spec(std::move(path), ValueKind::kEnum, "enum", std::move(allowed),
                             "one of " + spelled, std::move(doc));
    key.assign = [ref, names, spelled](Root& root, std::string_view text) -> std::optional<Error> {
      for (const auto& [name, value] : names) {
        if (name == text) {
          ref(root) = value;
          return std::nullopt;
        }
      }
      return make_error("bad_value", "must be one of " + spelled + ", got " + std::string(text));
    };
    key.render = [ref, names](const Root& root) {
      for (const auto& [name, value] : names) {
        if (value == at(ref, root)) return name;
      }
      return std::string("?");  // unreachable: every enumerator is named
    };
    add_common(key, ref);
    return key;
  }
};

std::vector<KeySpec<Config>> build_config_keys() {
  using K = Keys<Config>;
  // clang-format off
  std::vector<KeySpec<Config>> keys = {
    K::string("nats.url", [](Config& c) -> auto& { return c.nats.url; },
              "nats:// or tls:// URLs, comma-separated", check_nats_urls,
              "NATS server(s); the NATS_SERVER environment variable overrides"),
    K::choice("nats.event_plane", [](Config& c) -> auto& { return c.nats.event_plane; },
              {{"nats", EventPlane::kNats}, {"jetstream", EventPlane::kJetStream}},
              "router events via core NATS (event-plane envelope) or a durable JetStream stream"),
    K::string("nats.namespace", [](Config& c) -> auto& { return c.nats.namespace_; },
              "non-empty", check_not_empty, "Dynamo namespace in every subject; DYN_NAMESPACE overrides"),
    K::string("nats.component", [](Config& c) -> auto& { return c.nats.component; },
              "non-empty", check_not_empty, "Dynamo component in every subject"),
    K::string("nats.kv_subject", [](Config& c) -> auto& { return c.nats.kv_subject; },
              "non-empty", check_not_empty,
              "KV event subject token (`kv_events` for routers of the 0.8 era)"),
    K::uint("nats.outbox_capacity", [](Config& c) -> auto& { return c.nats.outbox_capacity; },
            1, kNoMax, "events held in order while NATS is unreachable; full = backpressure"),
    K::uint("nats.outbox_full_wait_ms",
            [](Config& c) -> auto& { return c.nats.outbox_full_wait_ms; }, 0, 60000,
            "a mock worker's wait for outbox room; then its events are held and it answers 503"),
    K::string("nats.user", [](Config& c) -> auto& { return c.nats.user; }, "", nullptr,
              "user name (with nats.password)"),
    K::secret("nats.password", [](Config& c) -> auto& { return c.nats.password; },
              "password for nats.user"),
    K::secret("nats.token", [](Config& c) -> auto& { return c.nats.token; },
              "authentication token"),
    K::string("nats.nkey_seed_file", [](Config& c) -> auto& { return c.nats.nkey_seed_file; },
              "path", nullptr, "file holding an NKey seed"),
    K::string("nats.credentials_file",
              [](Config& c) -> auto& { return c.nats.credentials_file; }, "path", nullptr,
              "JWT credentials (.creds) file"),
    K::string("nats.tls.ca_file", [](Config& c) -> auto& { return c.nats.tls.ca_file; }, "path",
              nullptr, "CA bundle to verify the server"),
    K::string("nats.tls.cert_file", [](Config& c) -> auto& { return c.nats.tls.cert_file; },
              "path", nullptr, "client certificate (with nats.tls.key_file)"),
    K::string("nats.tls.key_file", [](Config& c) -> auto& { return c.nats.tls.key_file; },
              "path", nullptr, "client private key (with nats.tls.cert_file)"),
    K::uint("nats.stream_max_age_s", [](Config& c) -> auto& { return c.nats.stream_max_age_s; },
            0, kNoMax, "JetStream stream max_age when kvmock creates it; 0 = unlimited"),
    K::uint("nats.stream_replicas", [](Config& c) -> auto& { return c.nats.stream_replicas; },
            1, 5, "JetStream stream replicas when kvmock creates it"),
    K::boolean("nats.field_set.residency_domain",
               [](Config& c) -> auto& { return c.nats.field_set.residency_domain; },
               "add the newer routers' residency_domain field to router events"),
    K::boolean("nats.field_set.start_position",
               [](Config& c) -> auto& { return c.nats.field_set.start_position; },
               "add the newer routers' start_position field to router events"),

    K::choice("dynamo.discovery", [](Config& c) -> auto& { return c.dynamo.discovery; },
              {{"none", DynamoDiscoveryKind::kNone}, {"etcd", DynamoDiscoveryKind::kEtcd},
               {"file", DynamoDiscoveryKind::kFile}},
              "register each mock worker as a Dynamo instance (needs workers.model.path); "
              "none = no discovery, ids from workers.worker_id_base; DYN_DISCOVERY_BACKEND overrides"),
    K::string("dynamo.etcd_endpoints", [](Config& c) -> auto& { return c.dynamo.etcd_endpoints; },
              "http:// URLs, comma-separated", check_etcd_endpoints,
              "etcd's JSON gateway; the ETCD_ENDPOINTS environment variable overrides"),
    K::string("dynamo.file_root", [](Config& c) -> auto& { return c.dynamo.file_root; }, "path",
              nullptr, "discovery file: the shared directory; empty = $TMPDIR/dynamo_store_kv "
              "(DYN_FILE_KV overrides)"),
    K::uint("dynamo.lease_ttl_s", [](Config& c) -> auto& { return c.dynamo.lease_ttl_s; }, 1,
            3600, "how long a crashed worker's records outlive it (etcd lease TTL, file "
            "refresh horizon); Dynamo's workers use 10"),
    K::choice("dynamo.request_plane", [](Config& c) -> auto& { return c.dynamo.request_plane; },
              {{"tcp", DynamoRequestPlaneKind::kTcp}, {"nats", DynamoRequestPlaneKind::kNats}},
              "how the frontend sends requests: Dynamo's TCP request plane or NATS; "
              "DYN_REQUEST_PLANE overrides"),
    K::string("dynamo.tcp_listen", [](Config& c) -> auto& { return c.dynamo.tcp_listen; },
              "host:port", check_listen_address,
              "the TCP request plane's one listener for every worker; port 0 = any free port; "
              "DYN_TCP_RPC_PORT sets the port"),
    K::string("dynamo.tcp_host", [](Config& c) -> auto& { return c.dynamo.tcp_host; },
              "host or empty", nullptr,
              "host the discovery records advertise; empty = the first non-loopback address; "
              "DYN_TCP_RPC_HOST overrides"),
    K::uint("dynamo.tcp_max_message_bytes",
            [](Config& c) -> auto& { return c.dynamo.tcp_max_message_bytes; }, 1024,
            uint64_t{1} << 32, "larger request frames are refused (Dynamo's default: 32 MiB)"),
    K::choice("dynamo.release", [](Config& c) -> auto& { return c.dynamo.release; },
              {{"1.0", DynamoReleaseKind::k1_0}, {"1.1", DynamoReleaseKind::k1_1}},
              "Dynamo release whose discovery layout and query form the workers follow"),

    K::string("admin.listen", [](Config& c) -> auto& { return c.admin.listen; },
              "host:port or empty", check_listen_address,
              "/metrics /health /ready server; empty = off, port 0 = any free port"),
    K::secret("admin.auth_token", [](Config& c) -> auto& { return c.admin.auth_token; },
              "bearer token required by every admin endpoint except /health and /ready; "
              "empty = no authentication"),
    K::string("admin.auth_token_file", [](Config& c) -> auto& { return c.admin.auth_token_file; },
              "path", nullptr, "file holding admin.auth_token (surrounding whitespace trimmed)"),
    K::uint("admin.max_connections", [](Config& c) -> auto& { return c.admin.max_connections; },
            1, 1000000, "open connections on the admin port at most; more are answered 503"),

    K::uint("http.max_connections", [](Config& c) -> auto& { return c.http.max_connections; },
            1, 1000000, "open connections per worker HTTP port at most; more are answered 503"),
    K::uint("http.max_request_body_bytes",
            [](Config& c) -> auto& { return c.http.max_request_body_bytes; }, 1024,
            uint64_t{1} << 32, "request body size limit per worker request; larger gets 413"),

    K::uint("indexer.buffer_size", [](Config& c) -> auto& { return c.indexer.buffer_size; },
            1, 10000000, "recent events kept per (worker, dp rank) for router recovery queries"),

    K::uint("load_metrics.debounce_ms",
            [](Config& c) -> auto& { return c.load_metrics.debounce_ms; }, 0, 60000,
            "ActiveLoad publication debounce; 0 = publish every change"),
    K::uint("load_metrics.heartbeat_s",
            [](Config& c) -> auto& { return c.load_metrics.heartbeat_s; }, 0, 86400,
            "ActiveLoad re-sent this often without changes; 0 = no heartbeat"),

    K::uint("pipeline.batching_timeout_ms",
            [](Config& c) -> auto& { return c.pipeline.batching_timeout_ms; }, 0, 15000,
            "coalesce a worker's events for up to this long; 0 = batching off"),

    K::choice("log.level", [](Config& c) -> auto& { return c.log.level; },
              {{"debug", LogLevel::kDebug}, {"info", LogLevel::kInfo},
               {"warn", LogLevel::kWarn}, {"error", LogLevel::kError}},
              "lowest level logged"),
    K::choice("log.format", [](Config& c) -> auto& { return c.log.format; },
              {{"text", LogFormat::kText}, {"json", LogFormat::kJson}},
              "log line format on stderr"),

    K::uint("shutdown.grace_s", [](Config& c) -> auto& { return c.shutdown.grace_s; }, 0, 3600,
            "on SIGTERM, time for in-flight requests before they are cancelled"),
    K::uint("shutdown.flush_deadline_s",
            [](Config& c) -> auto& { return c.shutdown.flush_deadline_s; }, 0, 3600,
            "on SIGTERM, time to flush the NATS outbox"),

    K::uint("faults.seed", [](Config& c) -> auto& { return c.faults.seed; }, 0, kNoMax,
            "seed of every fault choice (which requests an injected failure rate fails, and "
            "how): the same seed replays the same faults"),
    K::string("faults.scenario", [](Config& c) -> auto& { return c.faults.scenario; }, "path",
              nullptr,
              "a scenario file: a timeline of steps that set fault settings on chosen workers "
              "or crash and restart them (docs/faults.md#scenario-files); empty = none"),

    K::uint("workers.count", [](Config& c) -> auto& { return c.workers.count; }, 0, 100000,
            "simulated engines; 0 = relay only"),
    K::uint("workers.worker_id_base", [](Config& c) -> auto& { return c.workers.worker_id_base; },
            0, kNoMax, "worker i has id worker_id_base + i"),
    K::uint("workers.http_base_port", [](Config& c) -> auto& { return c.workers.http_base_port; },
            0, 65535, "worker i serves the OpenAI API on base + i; 0 = no HTTP"),
    K::string("workers.http_host", [](Config& c) -> auto& { return c.workers.http_host; },
              "non-empty", check_not_empty,
              "address the workers' HTTP ports bind to (0.0.0.0 in a container)"),
    K::uint("workers.threads", [](Config& c) -> auto& { return c.workers.threads; }, 0, 1024,
            "threads that run the simulated engines; 0 = one per CPU the process may use"),

    K::string("workers.model.name", [](Config& c) -> auto& { return c.workers.model.name; },
              "non-empty", check_not_empty, "the served model name"),
    K::string("workers.model.aliases", [](Config& c) -> auto& { return c.workers.model.aliases; },
              "names, comma-separated", nullptr,
              "more names the workers answer to and list in /v1/models (vLLM's "
              "--served-model-name list)"),
    K::string("workers.model.path", [](Config& c) -> auto& { return c.workers.model.path; },
              "path", nullptr,
              "a Hugging Face model directory (config.json, tokenizer.json, "
              "tokenizer_config.json): the workers tokenize with the model's tokenizer and chat "
              "template; needed by dynamo.discovery"),

    K::string("workers.lora.modules", [](Config& c) -> auto& { return c.workers.lora.modules; },
              "`name` or `name=base`, comma-separated", check_lora_modules,
              "LoRA adapters every worker serves from the start (vLLM's --lora-modules); base "
              "is a served name, the model by default; more come and go through POST "
              "/v1/load_lora_adapter and /v1/unload_lora_adapter"),
    K::uint("workers.lora.max_loras", [](Config& c) -> auto& { return c.workers.engine.max_loras; },
            0, 1024,
            "distinct LoRA adapters one batch runs (vLLM's --max-loras); a request for one more "
            "waits; 0 = no limit"),

    K::uint("workers.engine.block_size",
            [](Config& c) -> auto& { return c.workers.engine.block_size; }, 1, 1024,
            "tokens per KV block"),
    K::uint("workers.engine.num_gpu_blocks",
            [](Config& c) -> auto& { return c.workers.engine.num_gpu_blocks; }, 1, 1u << 30,
            "G1 (GPU) KV blocks per dp rank"),
    K::uint("workers.engine.max_num_seqs",
            [](Config& c) -> auto& { return c.workers.engine.max_num_seqs; }, 1, kNoMax,
            "most requests running at once"),
    K::uint("workers.engine.max_num_batched_tokens",
            [](Config& c) -> auto& { return c.workers.engine.max_num_batched_tokens; }, 1,
            kNoMax, "token budget of one forward pass"),
    K::uint("workers.engine.max_model_len",
            [](Config& c) -> auto& { return c.workers.engine.max_model_len; }, 0, kNoMax,
            "longest prompt + output accepted; 0 = unlimited"),
    K::boolean("workers.engine.enable_prefix_caching",
               [](Config& c) -> auto& { return c.workers.engine.enable_prefix_caching; },
               "reuse cached blocks of shared prefixes"),
    K::boolean("workers.engine.enable_chunked_prefill",
               [](Config& c) -> auto& { return c.workers.engine.enable_chunked_prefill; },
               "split long prefills across passes"),
    K::choice("workers.engine.preemption_mode",
              [](Config& c) -> auto& { return c.workers.engine.preemption_mode; },
              {{"lifo", PreemptionMode::kLifo}, {"fifo", PreemptionMode::kFifo}},
              "which running request is preempted when blocks run out"),
    K::number("workers.engine.speedup_ratio",
              [](Config& c) -> auto& { return c.workers.engine.speedup_ratio; }, 0, kNoMaxDouble,
              false, "pass durations are divided by this; 0 = passes take no time"),
    K::uint("workers.engine.dp_size", [](Config& c) -> auto& { return c.workers.engine.dp_size; },
            1, 64, "data-parallel ranks per worker, each with its own KV cache"),
    K::uint("workers.engine.seed", [](Config& c) -> auto& { return c.workers.engine.seed; }, 0,
            kNoMax, "seed of output tokens and randomized block identities"),
    K::choice("workers.engine.timing.model",
              [](Config& c) -> auto& { return c.workers.engine.timing.model; },
              {{"polynomial", TimingModelKind::kPolynomial},
               {"profile", TimingModelKind::kProfile},
               {"fixed", TimingModelKind::kFixed}},
              "pass duration model"),
    K::string("workers.engine.timing.profile_path",
              [](Config& c) -> auto& { return c.workers.engine.timing.profile_path; }, "path",
              nullptr, "profile table (JSON or CSV) for timing.model profile"),
    K::number("workers.engine.timing.fixed_prefill_ms",
              [](Config& c) -> auto& { return c.workers.engine.timing.fixed_prefill_ms; }, 0,
              kNoMaxDouble, false, "timing.model fixed: duration of a pass with prefill work"),
    K::number("workers.engine.timing.fixed_decode_ms",
              [](Config& c) -> auto& { return c.workers.engine.timing.fixed_decode_ms; }, 0,
              kNoMaxDouble, false, "timing.model fixed: duration of a decode-only pass"),
    K::uint("workers.engine.g2.num_blocks",
            [](Config& c) -> auto& { return c.workers.engine.g2.num_blocks; }, 0, 1ull << 32,
            "host-memory (G2) offload blocks per dp rank; 0 = G2 off"),
    K::uint("workers.engine.g2.kv_bytes_per_token",
            [](Config& c) -> auto& { return c.workers.engine.g2.kv_bytes_per_token; }, 0, kNoMax,
            "KV bytes of one token (sizes G1<->G2 transfers)"),
    K::number("workers.engine.g2.bandwidth_g1_to_g2_gbps",
              [](Config& c) -> auto& { return c.workers.engine.g2.bandwidth_g1_to_g2_gbps; }, 0,
              kNoMaxDouble, true, "offload link bandwidth, GB/s, shared by concurrent copies"),
    K::number("workers.engine.g2.bandwidth_g2_to_g1_gbps",
              [](Config& c) -> auto& { return c.workers.engine.g2.bandwidth_g2_to_g1_gbps; }, 0,
              kNoMaxDouble, true, "onboarding link bandwidth, GB/s, shared by concurrent copies"),
    K::uint("workers.engine.g2.offload_batch_size",
            [](Config& c) -> auto& { return c.workers.engine.g2.offload_batch_size; }, 1, 65536,
            "evicted G1 blocks copied to G2 per batch"),
    K::choice("workers.engine.output_length.distribution",
              [](Config& c) -> auto& { return c.workers.engine.output_length.distribution; },
              {{"max_tokens", OutputLengthDistribution::kMaxTokens},
               {"uniform", OutputLengthDistribution::kUniform},
               {"exponential", OutputLengthDistribution::kExponential}},
              "where a request without ignore_eos ends: always at max_tokens, or at an EOS "
              "drawn per request (finish_reason stop), never before min_tokens"),
    K::uint("workers.engine.output_length.mean",
            [](Config& c) -> auto& { return c.workers.engine.output_length.mean; }, 1, kNoMax,
            "mean output length in tokens of the uniform and exponential distributions"),

    K::boolean("workers.zmq_events.enabled",
               [](Config& c) -> auto& { return c.workers.zmq_events.enabled; },
               "also publish mock workers' KV events in vLLM's ZMQ format"),
    K::string("workers.zmq_events.bind_host",
              [](Config& c) -> auto& { return c.workers.zmq_events.bind_host; }, "non-empty",
              check_not_empty, "address the PUB and replay sockets bind to"),
    K::uint("workers.zmq_events.base_port",
            [](Config& c) -> auto& { return c.workers.zmq_events.base_port; }, 1, 65535,
            "PUB port of worker i, dp rank r: base + i * dp_size + r"),
    K::uint("workers.zmq_events.replay_base_port",
            [](Config& c) -> auto& { return c.workers.zmq_events.replay_base_port; }, 0, 65535,
            "replay ROUTER ports, numbered like base_port; 0 = no replay"),
    K::choice("workers.zmq_events.encoding",
              [](Config& c) -> auto& { return c.workers.zmq_events.encoding; },
              {{"map", ZmqEncoding::kMap}, {"positional", ZmqEncoding::kPositional}},
              "events as tagged maps or vLLM's positional arrays"),
    K::choice("workers.zmq_events.hash_encoding",
              [](Config& c) -> auto& { return c.workers.zmq_events.hash_encoding; },
              {{"uint64", HashEncoding::kUint64}, {"int64", HashEncoding::kInt64},
               {"bytes32", HashEncoding::kBytes32}},
              "block hash representation on the wire"),
    K::string("workers.zmq_events.topic",
              [](Config& c) -> auto& { return c.workers.zmq_events.topic; },
              "text with {host} {port} {model} {worker_id} {dp_rank}", check_zmq_topic_template,
              "topic frame of every message; a template, e.g. kv@{host}:{port}@{model} "
              "as llm-d expects"),
    K::string("workers.zmq_events.connect",
              [](Config& c) -> auto& { return c.workers.zmq_events.connect; },
              "empty or tcp://host:port", check_zmq_connect_endpoint,
              "PUB sockets connect to this SUB endpoint instead of binding base_port "
              "(llm-d's central subscriber); replay still binds"),

    K::boolean("workers.load.enabled", [](Config& c) -> auto& { return c.workers.load.enabled; },
               "drive the mock workers with built-in synthetic requests"),
    K::number("workers.load.requests_per_s",
              [](Config& c) -> auto& { return c.workers.load.requests_per_s; }, 0, 100000, false,
              "request arrival rate per worker"),
    K::uint("workers.load.input_tokens",
            [](Config& c) -> auto& { return c.workers.load.input_tokens; }, 1, 10000000,
            "prompt length of each request"),
    K::uint("workers.load.output_tokens",
            [](Config& c) -> auto& { return c.workers.load.output_tokens; }, 1, 10000000,
            "tokens generated per request"),
    K::number("workers.load.shared_prefix_ratio",
              [](Config& c) -> auto& { return c.workers.load.shared_prefix_ratio; }, 0, 1, false,
              "fraction of each prompt shared with its prefix group"),
    K::uint("workers.load.prefix_groups",
            [](Config& c) -> auto& { return c.workers.load.prefix_groups; }, 1, 1000000,
            "distinct shared prefixes"),
    K::uint("workers.load.seed", [](Config& c) -> auto& { return c.workers.load.seed; }, 0,
            kNoMax, "seed of the synthetic prompts and arrivals"),
    K::uint("workers.max_queued_prompt_tokens",
            [](Config& c) -> auto& { return c.workers.max_queued_prompt_tokens; }, 1, kNoMax,
            "prompt tokens a worker holds for accepted, unfinished requests (waiting or "
            "running); past it new requests get 429 (an idle worker still takes one)"),
    K::number("workers.startup_delay_s",
              [](Config& c) -> auto& { return c.workers.startup_delay_s; }, 0, 86400, false,
              "seconds after start before a worker is ready (health and requests 503 until "
              "then), as a pod loading weights"),
    K::uint("workers.max_num_waiting",
            [](Config& c) -> auto& { return c.workers.max_num_waiting; }, 1, 10000000,
            "requests each engine (dp rank) keeps waiting at most; past it new ones get 429"),
  };
  // clang-format on
  return keys;
}

std::vector<KeySpec<RelayConfig>> build_relay_keys() {
  using K = Keys<RelayConfig>;
  // clang-format off
  std::vector<KeySpec<RelayConfig>> keys = {
    K::string("endpoint", [](RelayConfig& r) -> auto& { return r.endpoint; },
              "tcp://host:port or ipc://path", check_zmq_endpoint,
              "the engine's KV-event PUB socket"),
    K::string("replay_endpoint", [](RelayConfig& r) -> auto& { return r.replay_endpoint; },
              "empty, tcp://host:port or ipc://path", check_optional_zmq_endpoint,
              "the engine's replay ROUTER socket; empty = no replay on reconnect"),
    K::string("topic", [](RelayConfig& r) -> auto& { return r.topic; }, "", nullptr,
              "ZMQ subscription prefix; empty = everything"),
    K::uint("worker_id", [](RelayConfig& r) -> auto& { return r.worker_id; }, 0, kNoMax,
            "worker id the engine's events are published under"),
    K::uint("block_size", [](RelayConfig& r) -> auto& { return r.block_size; }, 1, 1024,
            "the engine's tokens per KV block"),
    K::uint("dp_size", [](RelayConfig& r) -> auto& { return r.dp_size; }, 1, 64,
            "the engine's data-parallel ranks"),
    K::uint("replay_timeout_ms", [](RelayConfig& r) -> auto& { return r.replay_timeout_ms; }, 1,
            600000, "how long to wait for a replay to finish"),
    K::uint("max_message_bytes", [](RelayConfig& r) -> auto& { return r.max_message_bytes; },
            1024, uint64_t{1} << 30,
            "larger engine messages are refused (the connection is dropped and re-made)"),
    K::uint("max_buffered_bytes", [](RelayConfig& r) -> auto& { return r.max_buffered_bytes; },
            1024, uint64_t{1} << 40,
            "bytes that may wait in the ZMQ socket while NATS is behind, counted in "
            "max_message_bytes messages"),
    K::uint("max_gap", [](RelayConfig& r) -> auto& { return r.max_gap; }, 1, uint64_t{1} << 62,
            "largest seq jump taken as a gap; a larger one is dropped as corrupted unless the "
            "next batch confirms it"),
  };
  // clang-format on
  keys[0].required = true;
  keys[3].required = true;
  return keys;
}

size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

}  // namespace

const std::vector<KeySpec<Config>>& config_keys() {
  static const auto* keys = new std::vector<KeySpec<Config>>(build_config_keys());
  return *keys;
}

const std::vector<KeySpec<RelayConfig>>& relay_keys() {
  static const auto* keys = new std::vector<KeySpec<RelayConfig>>(build_relay_keys());
  return *keys;
}

std::string env_var_for_key(std::string_view path) {
  std::string name = "KVMOCK_";
  for (const char c : path) {
    name += c == '.' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  return name;
}

const std::vector<std::pair<std::string, std::string>>& conventional_env_vars() {
  static const auto* vars = new std::vector<std::pair<std::string, std::string>>{
      {"NATS_SERVER", "nats.url"},
      {"ETCD_ENDPOINTS", "dynamo.etcd_endpoints"},
      {"DYN_FILE_KV", "dynamo.file_root"},
      {"DYN_DISCOVERY_BACKEND", "dynamo.discovery"},
      {"DYN_REQUEST_PLANE", "dynamo.request_plane"},
      {"DYN_TCP_RPC_HOST", "dynamo.tcp_host"},
      {"DYN_NAMESPACE", "nats.namespace"},
  };
  return *vars;
}

std::string closest_name(std::string_view name, const std::vector<std::string>& candidates) {
  std::string best;
  size_t best_distance = std::max<size_t>(2, name.size() / 3) + 1;
  for (const auto& candidate : candidates) {
    const size_t d = edit_distance(name, candidate);
    if (d < best_distance) {
      best_distance = d;
      best = candidate;
    }
  }
  return best;
}

bool operator==(const Config& a, const Config& b) {
  for (const auto& key : config_keys()) {
    if (!key.equal(a, b)) return false;
  }
  return a.relays == b.relays;
}

}  // namespace kvmock
