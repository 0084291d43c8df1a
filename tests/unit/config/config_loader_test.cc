#include "config/config_loader.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <set>
#include <string>

#include "config/schema.h"

namespace kvmock {
namespace {

using Env = std::map<std::string, std::string>;

Result<Config> parse(std::string_view yaml, const std::vector<std::string>& sets = {},
                     const Env& env = {}) {
  return parse_config(yaml, "config.yaml", sets, env);
}

Config parse_ok(std::string_view yaml, const std::vector<std::string>& sets = {},
                const Env& env = {}) {
  Result<Config> config = parse(yaml, sets, env);
  EXPECT_TRUE(config.ok()) << config.error().message;
  return config.ok() ? *config : Config{};
}

TEST(ConfigLoader, EmptyFileGivesTheDocumentedDefaults) {
  const Config c = parse_ok("");
  EXPECT_EQ(c.nats.url, "nats://127.0.0.1:4222");
  EXPECT_EQ(c.nats.event_plane, EventPlane::kNats);
  EXPECT_EQ(c.nats.namespace_, "dynamo");
  EXPECT_EQ(c.nats.component, "backend");
  EXPECT_EQ(c.nats.kv_subject, "kv-events");
  EXPECT_EQ(c.nats.outbox_capacity, 100000u);
  EXPECT_EQ(c.nats.outbox_full_wait_ms, 1000u);
  EXPECT_EQ(c.nats.stream_max_age_s, 3600u);
  EXPECT_EQ(c.nats.stream_replicas, 1u);
  EXPECT_FALSE(c.nats.field_set.residency_domain);
  EXPECT_EQ(c.admin.listen, "127.0.0.1:9090");
  EXPECT_EQ(c.admin.auth_token, "");
  EXPECT_EQ(c.admin.auth_token_file, "");
  EXPECT_EQ(c.admin.max_connections, 64u);
  EXPECT_EQ(c.http.max_connections, 1024u);
  EXPECT_EQ(c.indexer.buffer_size, 1024u);
  EXPECT_EQ(c.load_metrics.debounce_ms, 1u);
  EXPECT_EQ(c.load_metrics.heartbeat_s, 10u);
  EXPECT_EQ(c.pipeline.batching_timeout_ms, 0u);
  EXPECT_EQ(c.log.level, LogLevel::kInfo);
  EXPECT_EQ(c.log.format, LogFormat::kText);
  EXPECT_EQ(c.shutdown.grace_s, 5u);
  EXPECT_EQ(c.shutdown.flush_deadline_s, 5u);
  EXPECT_EQ(c.workers.count, 4u);
  EXPECT_EQ(c.workers.worker_id_base, 1000u);
  EXPECT_EQ(c.workers.http_base_port, 8100u);
  EXPECT_EQ(c.workers.engine.block_size, 64u);
  EXPECT_EQ(c.workers.engine.num_gpu_blocks, 16384u);
  EXPECT_EQ(c.workers.engine.max_num_seqs, 256u);
  EXPECT_EQ(c.workers.engine.max_num_batched_tokens, 8192u);
  EXPECT_TRUE(c.workers.engine.enable_prefix_caching);
  EXPECT_EQ(c.workers.engine.preemption_mode, PreemptionMode::kLifo);
  EXPECT_EQ(c.workers.engine.speedup_ratio, 1.0);
  EXPECT_EQ(c.workers.engine.timing.model, TimingModelKind::kPolynomial);
  EXPECT_EQ(c.workers.engine.g2.bandwidth_g1_to_g2_gbps, 14.0);
  EXPECT_EQ(c.workers.engine.g2.offload_batch_size, 32u);
  EXPECT_FALSE(c.workers.zmq_events.enabled);
  EXPECT_EQ(c.workers.zmq_events.base_port, 5557u);
  EXPECT_EQ(c.workers.zmq_events.replay_base_port, 5657u);
  EXPECT_EQ(c.workers.zmq_events.encoding, ZmqEncoding::kMap);
  EXPECT_EQ(c.workers.zmq_events.hash_encoding, HashEncoding::kUint64);
  EXPECT_FALSE(c.workers.load.enabled);
  EXPECT_EQ(c.workers.load.requests_per_s, 2.0);
  EXPECT_TRUE(c.relays.empty());
  EXPECT_TRUE(c == Config{});
}

TEST(ConfigLoader, CommentsOnlyAndExplicitNullFilesGiveDefaults) {
  EXPECT_TRUE(parse_ok("# nothing here\n") == Config{});
  EXPECT_TRUE(parse_ok("~\n") == Config{});
  EXPECT_TRUE(parse_ok("nats:\nworkers:\n") == Config{});
}

// Together these set every key of the table to a non-default value (the auth methods are
// exclusive, so they take three files).
constexpr const char* kEveryKeyYaml = R"(
nats:
  url: nats://a:4222,tls://b:4223
  event_plane: jetstream
  namespace: ns1
  component: comp1
  kv_subject: kv_events
  outbox_capacity: 7
  outbox_full_wait_ms: 250
  user: alice
  password: secret
  tls: { ca_file: /ca.pem, cert_file: /cert.pem, key_file: /key.pem }
  stream_max_age_s: 60
  stream_replicas: 3
  field_set: { residency_domain: true, start_position: true }
dynamo:
  discovery: etcd
  etcd_endpoints: http://10.0.0.9:2379,http://10.0.0.10:2379
  file_root: /shared/dynamo
  lease_ttl_s: 30
  request_plane: nats
  tcp_listen: 0.0.0.0:7777
  tcp_host: worker-7.example
  tcp_max_message_bytes: 1048576
  release: "1.1"
admin: { listen: "[::1]:9191", auth_token_file: /run/secrets/admin-token, max_connections: 8 }
http: { max_connections: 100, max_request_body_bytes: 2048 }
indexer: { buffer_size: 2048 }
load_metrics: { debounce_ms: 5, heartbeat_s: 30 }
pipeline: { batching_timeout_ms: 250 }
log: { level: debug, format: json }
shutdown: { grace_s: 7, flush_deadline_s: 9 }
faults:
  seed: 4242
  scenario: /etc/kvmock/chaos.yaml
workers:
  count: 3
  worker_id_base: 500
  http_base_port: 9000
  http_host: 0.0.0.0
  threads: 3
  model: { name: qwen-small, aliases: "qwen, Qwen/Qwen3-0.6B", path: /models/qwen }
  lora:
    modules: "sql-lora, chat-lora=qwen"
    max_loras: 3
  engine:
    block_size: 16
    num_gpu_blocks: 1000
    max_num_seqs: 8
    max_num_batched_tokens: 4096
    max_model_len: 4096
    enable_prefix_caching: false
    enable_chunked_prefill: false
    preemption_mode: fifo
    speedup_ratio: 2.5
    dp_size: 2
    seed: 77
    timing:
      model: profile
      profile_path: /profiles/h100.json
      fixed_prefill_ms: 12.5
      fixed_decode_ms: 3.25
    g2:
      num_blocks: 4096
      kv_bytes_per_token: 131072
      bandwidth_g1_to_g2_gbps: 25.0
      bandwidth_g2_to_g1_gbps: 20
      offload_batch_size: 16
    output_length:
      distribution: exponential
      mean: 40
  zmq_events:
    enabled: true
    bind_host: 0.0.0.0
    base_port: 6000
    replay_base_port: 6100
    encoding: positional
    hash_encoding: bytes32
    topic: kv@{host}:{port}@{model}
    connect: tcp://10.0.0.9:5557
  load:
    enabled: true
    requests_per_s: 0.5
    input_tokens: 512
    output_tokens: 64
    shared_prefix_ratio: 0.25
    prefix_groups: 3
    seed: 9
  max_queued_prompt_tokens: 5000000
  max_num_waiting: 77
  startup_delay_s: 2.5
relays:
  - endpoint: tcp://10.0.0.5:5557
    replay_endpoint: tcp://10.0.0.5:5558
    topic: engine
    worker_id: 42
    block_size: 32
    dp_size: 4
    replay_timeout_ms: 500
    max_message_bytes: 65536
    max_buffered_bytes: 1048576
    max_gap: 5000
)";

TEST(ConfigLoader, EveryKeyIsSettableFromYaml) {
  const Config c = parse_ok(kEveryKeyYaml);
  EXPECT_EQ(c.nats.url, "nats://a:4222,tls://b:4223");
  EXPECT_EQ(c.nats.event_plane, EventPlane::kJetStream);
  EXPECT_EQ(c.nats.namespace_, "ns1");
  EXPECT_EQ(c.nats.tls.key_file, "/key.pem");
  EXPECT_EQ(c.dynamo.discovery, DynamoDiscoveryKind::kEtcd);
  EXPECT_EQ(c.dynamo.etcd_endpoints, "http://10.0.0.9:2379,http://10.0.0.10:2379");
  EXPECT_EQ(c.dynamo.request_plane, DynamoRequestPlaneKind::kNats);
  EXPECT_EQ(c.dynamo.release, DynamoReleaseKind::k1_1);
  EXPECT_EQ(c.workers.model.name, "qwen-small");
  EXPECT_EQ(c.workers.model.path, "/models/qwen");
  EXPECT_EQ(c.workers.model.aliases, "qwen, Qwen/Qwen3-0.6B");
  EXPECT_EQ(c.admin.listen, "[::1]:9191");
  EXPECT_EQ(c.admin.auth_token_file, "/run/secrets/admin-token");
  EXPECT_EQ(c.admin.max_connections, 8u);
  EXPECT_EQ(c.http.max_connections, 100u);
  EXPECT_EQ(c.log.level, LogLevel::kDebug);
  EXPECT_EQ(c.workers.engine.block_size, 16u);
  EXPECT_EQ(c.workers.engine.num_gpu_blocks, 1000u);
  EXPECT_EQ(c.workers.engine.max_num_seqs, 8u);
  EXPECT_EQ(c.workers.engine.max_num_batched_tokens, 4096u);
  EXPECT_EQ(c.workers.engine.max_model_len, 4096u);
  EXPECT_FALSE(c.workers.engine.enable_prefix_caching);
  EXPECT_FALSE(c.workers.engine.enable_chunked_prefill);
  EXPECT_EQ(c.workers.engine.preemption_mode, PreemptionMode::kFifo);
  EXPECT_EQ(c.workers.engine.speedup_ratio, 2.5);
  EXPECT_EQ(c.workers.engine.dp_size, 2u);
  EXPECT_EQ(c.workers.engine.seed, 77u);
  EXPECT_EQ(c.workers.engine.timing.model, TimingModelKind::kProfile);
  EXPECT_EQ(c.workers.engine.timing.profile_path, "/profiles/h100.json");
  EXPECT_EQ(c.workers.engine.timing.fixed_prefill_ms, 12.5);
  EXPECT_EQ(c.workers.engine.timing.fixed_decode_ms, 3.25);
  EXPECT_EQ(c.workers.engine.g2.num_blocks, 4096u);
  EXPECT_EQ(c.workers.engine.g2.kv_bytes_per_token, 131072u);
  EXPECT_EQ(c.workers.engine.g2.bandwidth_g1_to_g2_gbps, 25.0);
  EXPECT_EQ(c.workers.engine.g2.bandwidth_g2_to_g1_gbps, 20.0);
  EXPECT_EQ(c.workers.engine.g2.offload_batch_size, 16u);
  EXPECT_EQ(c.workers.engine.output_length.distribution, OutputLengthDistribution::kExponential);
  EXPECT_EQ(c.workers.engine.output_length.mean, 40u);
  EXPECT_EQ(c.workers.http_host, "0.0.0.0");
  EXPECT_EQ(c.workers.threads, 3u);
  EXPECT_EQ(c.workers.zmq_events.encoding, ZmqEncoding::kPositional);
  EXPECT_EQ(c.workers.zmq_events.hash_encoding, HashEncoding::kBytes32);
  EXPECT_EQ(c.workers.zmq_events.topic, "kv@{host}:{port}@{model}");  // expanded per engine
  EXPECT_EQ(c.workers.zmq_events.connect, "tcp://10.0.0.9:5557");
  EXPECT_EQ(c.workers.load.shared_prefix_ratio, 0.25);
  EXPECT_EQ(c.workers.max_queued_prompt_tokens, 5000000u);
  EXPECT_EQ(c.workers.startup_delay_s, 2.5);
  EXPECT_EQ(c.workers.max_num_waiting, 77u);
  EXPECT_EQ(c.faults.seed, 4242u);
  EXPECT_EQ(c.faults.scenario, "/etc/kvmock/chaos.yaml");
  EXPECT_EQ(c.workers.lora.modules, "sql-lora, chat-lora=qwen");
  EXPECT_EQ(c.workers.engine.max_loras, 3u);
  EXPECT_EQ(c.http.max_request_body_bytes, 2048u);
  ASSERT_EQ(c.relays.size(), 1u);
  EXPECT_EQ(c.relays[0], (RelayConfig{"tcp://10.0.0.5:5557", "tcp://10.0.0.5:5558", "engine", 42,
                                      32, 4, 500, 65536, 1048576, 5000}));

  // Table-driven: every declared key differs from its default in one of these files.
  const Config token = parse_ok("nats: { token: t0k }\nadmin: { auth_token: adm1n }\n");
  const Config nkey = parse_ok("nats: { nkey_seed_file: /seed.nk }\n");
  const Config creds = parse_ok("nats: { credentials_file: /user.creds }\n");
  const Config defaults;
  for (const auto& key : config_keys()) {
    bool changed = false;
    for (const Config* parsed : {&c, &token, &nkey, &creds}) {
      changed = changed || key.render(*parsed) != key.render(defaults);
    }
    EXPECT_TRUE(changed) << key.path << " is not covered by the every-key files";
  }
  for (const auto& key : relay_keys()) {
    EXPECT_NE(key.render(c.relays[0]), key.render(RelayConfig{})) << key.path;
  }
}

TEST(ConfigLoader, EnvironmentOverridesTheFileAndSetOverridesTheEnvironment) {
  const std::string yaml = "workers:\n  count: 2\n";
  EXPECT_EQ(parse_ok(yaml).workers.count, 2u);
  EXPECT_EQ(parse_ok(yaml, {}, {{"KVMOCK_WORKERS_COUNT", "8"}}).workers.count, 8u);
  EXPECT_EQ(parse_ok(yaml, {"workers.count=16"}, {{"KVMOCK_WORKERS_COUNT", "8"}}).workers.count,
            16u);
}

TEST(ConfigLoader, LaterSetWinsOverEarlierSet) {
  EXPECT_EQ(parse_ok("", {"workers.count=3", "workers.count=5"}).workers.count, 5u);
}

TEST(ConfigLoader, NatsServerOverridesTheFileButNotKvmockNatsUrl) {
  const std::string yaml = "nats:\n  url: nats://file:1\n";
  EXPECT_EQ(parse_ok(yaml, {}, {{"NATS_SERVER", "nats://env:2"}}).nats.url, "nats://env:2");
  EXPECT_EQ(
      parse_ok(yaml, {}, {{"NATS_SERVER", "nats://env:2"}, {"KVMOCK_NATS_URL", "nats://kvmock:3"}})
          .nats.url,
      "nats://kvmock:3");
  EXPECT_EQ(parse_ok(yaml, {"nats.url=nats://set:4"}, {{"NATS_SERVER", "nats://env:2"}}).nats.url,
            "nats://set:4");
}

TEST(ConfigLoader, DynamosEnvironmentSetsEtcdAndFileRootUnlessKvmockVariablesDo) {
  const Config c = parse_ok("", {},
                            {{"ETCD_ENDPOINTS", "http://etcd-a:2379,http://etcd-b:2379"},
                             {"DYN_FILE_KV", "/mnt/dynamo"}});
  EXPECT_EQ(c.dynamo.etcd_endpoints, "http://etcd-a:2379,http://etcd-b:2379");
  EXPECT_EQ(c.dynamo.file_root, "/mnt/dynamo");
  EXPECT_EQ(parse_ok("", {},
                     {{"ETCD_ENDPOINTS", "http://etcd-a:2379"},
                      {"KVMOCK_DYNAMO_ETCD_ENDPOINTS", "http://mine:2379"}})
                .dynamo.etcd_endpoints,
            "http://mine:2379");
}

// A mocker deployment's environment works as it is (issue #15's contract).
TEST(ConfigLoader, DynamosMockerEnvironmentSetsTheDynamoKeys) {
  const Config c = parse_ok("dynamo: { tcp_listen: \"10.1.2.3:0\" }\n", {},
                            {{"DYN_DISCOVERY_BACKEND", "file"},
                             {"DYN_REQUEST_PLANE", "nats"},
                             {"DYN_TCP_RPC_HOST", "worker-3.svc"},
                             {"DYN_TCP_RPC_PORT", "9345"},
                             {"DYN_NAMESPACE", "prod"},
                             {"KVMOCK_WORKERS_MODEL_PATH", "/models/m"}});
  EXPECT_EQ(c.dynamo.discovery, DynamoDiscoveryKind::kFile);
  EXPECT_EQ(c.dynamo.request_plane, DynamoRequestPlaneKind::kNats);
  EXPECT_EQ(c.dynamo.tcp_host, "worker-3.svc");
  EXPECT_EQ(c.dynamo.tcp_listen, "10.1.2.3:9345");
  EXPECT_EQ(c.nats.namespace_, "prod");
}

TEST(ConfigLoader, EnvironmentSetsEnumsBooleansAndNestedKeys) {
  const Config c = parse_ok("", {},
                            {{"KVMOCK_NATS_EVENT_PLANE", "jetstream"},
                             {"KVMOCK_WORKERS_ENGINE_G2_NUM_BLOCKS", "10"},
                             {"KVMOCK_WORKERS_ENGINE_G2_KV_BYTES_PER_TOKEN", "1024"},
                             {"KVMOCK_WORKERS_ZMQ_EVENTS_ENABLED", "true"},
                             {"KVMOCK_ADMIN_LISTEN", ""},
                             {"PATH", "/usr/bin"}});
  EXPECT_EQ(c.nats.event_plane, EventPlane::kJetStream);
  EXPECT_EQ(c.workers.engine.g2.num_blocks, 10u);
  EXPECT_TRUE(c.workers.zmq_events.enabled);
  EXPECT_EQ(c.admin.listen, "");
}

TEST(ConfigLoader, TheAdminTokenComesFromTheEnvironment) {
  const Config c = parse_ok("", {}, {{"KVMOCK_ADMIN_AUTH_TOKEN", "from-env"}});
  EXPECT_EQ(c.admin.auth_token, "from-env");
  EXPECT_EQ(parse_ok("", {}, {{"KVMOCK_ADMIN_AUTH_TOKEN_FILE", "/t"}}).admin.auth_token_file, "/t");
  EXPECT_EQ(parse_ok("", {}, {{"KVMOCK_HTTP_MAX_CONNECTIONS", "5"}}).http.max_connections, 5u);
}

TEST(ConfigLoader, SetParsesTheValueByTheKeysType) {
  const Config c =
      parse_ok("", {"workers.engine.speedup_ratio=0", "log.format=json",
                    "workers.engine.enable_prefix_caching=false", "workers.zmq_events.topic=a=b"});
  EXPECT_EQ(c.workers.engine.speedup_ratio, 0.0);
  EXPECT_EQ(c.log.format, LogFormat::kJson);
  EXPECT_FALSE(c.workers.engine.enable_prefix_caching);
  EXPECT_EQ(c.workers.zmq_events.topic, "a=b");  // the first '=' splits KEY from VALUE
}

TEST(ConfigLoader, SetAddressesRelaysByIndexAndAppendsAtTheEnd) {
  const std::string yaml = "relays:\n  - endpoint: tcp://h:1\n    worker_id: 1\n";
  const Config c = parse_ok(
      yaml, {"relays[0].worker_id=5", "relays[1].endpoint=ipc:///tmp/e", "relays[1].worker_id=6"});
  ASSERT_EQ(c.relays.size(), 2u);
  EXPECT_EQ(c.relays[0].worker_id, 5u);
  EXPECT_EQ(c.relays[0].endpoint, "tcp://h:1");
  EXPECT_EQ(c.relays[1].endpoint, "ipc:///tmp/e");
  EXPECT_EQ(c.relays[1].worker_id, 6u);
  EXPECT_EQ(c.relays[1].block_size, 16u);
}

TEST(ConfigLoader, NullStringValueMeansEmptyString) {
  const Config c = parse_ok("workers:\n  zmq_events:\n    topic:\n");
  EXPECT_EQ(c.workers.zmq_events.topic, "");
}

TEST(ConfigLoader, QuotedStringsAndEnumsAreAccepted) {
  const Config c = parse_ok("nats:\n  event_plane: \"jetstream\"\n  namespace: '123'\n");
  EXPECT_EQ(c.nats.event_plane, EventPlane::kJetStream);
  EXPECT_EQ(c.nats.namespace_, "123");
}

struct BadConfig {
  const char* name;
  const char* yaml;
  std::vector<std::string> sets;
  Env env;
  std::string message;
  std::string_view reason;
};

const BadConfig kBadConfigs[] = {
    {"unknown key with hint",
     "nats:\n  url: nats://x:1\n  evnt_plane: jetstream\n",
     {},
     {},
     "config.yaml:3: nats.evnt_plane: unknown key (did you mean event_plane?)",
     "unknown_key"},
    {"unknown section",
     "natz:\n  url: x\n",
     {},
     {},
     "config.yaml:1: natz: unknown key (did you mean nats?)",
     "unknown_key"},
    {"unknown key without hint",
     "workers:\n  banana: 1\n",
     {},
     {},
     "config.yaml:2: workers.banana: unknown key",
     "unknown_key"},
    {"not an integer",
     "workers:\n  count: four\n",
     {},
     {},
     "config.yaml:2: workers.count: must be an integer, got four",
     "bad_type"},
    {"quoted integer",
     "workers:\n  count: \"4\"\n",
     {},
     {},
     "config.yaml:2: workers.count: must be an integer, got the string \"4\"",
     "bad_type"},
    {"fraction for integer",
     "workers:\n  count: 1.5\n",
     {},
     {},
     "config.yaml:2: workers.count: must be an integer, got 1.5",
     "bad_type"},
    {"null for integer",
     "workers:\n  count:\n",
     {},
     {},
     "config.yaml:2: workers.count: must be an integer, got null",
     "bad_type"},
    {"out of range",
     "workers:\n  engine:\n    block_size: 0\n",
     {},
     {},
     "config.yaml:3: workers.engine.block_size: must be between 1 and 1024, got 0",
     "out_of_range"},
    {"negative",
     "nats:\n  outbox_capacity: -5\n",
     {},
     {},
     "config.yaml:2: nats.outbox_capacity: must be at least 1, got -5",
     "out_of_range"},
    {"integer overflow",
     "workers:\n  worker_id_base: 99999999999999999999\n",
     {},
     {},
     "config.yaml:2: workers.worker_id_base: must be at most 18446744073709551615, got "
     "99999999999999999999",
     "out_of_range"},
    {"port out of range",
     "workers:\n  http_base_port: 70000\n",
     {},
     {},
     "config.yaml:2: workers.http_base_port: must be between 0 and 65535, got 70000",
     "out_of_range"},
    {"negative number",
     "workers:\n  engine:\n    speedup_ratio: -1\n",
     {},
     {},
     "config.yaml:3: workers.engine.speedup_ratio: must be at least 0.0, got -1",
     "out_of_range"},
    {"zero bandwidth",
     "workers:\n  engine:\n    g2:\n      bandwidth_g2_to_g1_gbps: 0\n",
     {},
     {},
     "config.yaml:4: workers.engine.g2.bandwidth_g2_to_g1_gbps: must be greater than 0.0, got 0",
     "out_of_range"},
    {"ratio above one",
     "workers:\n  load:\n    shared_prefix_ratio: 1.5\n",
     {},
     {},
     "config.yaml:3: workers.load.shared_prefix_ratio: must be between 0.0 and 1.0, got 1.5",
     "out_of_range"},
    {"not a number",
     "workers:\n  engine:\n    speedup_ratio: fast\n",
     {},
     {},
     "config.yaml:3: workers.engine.speedup_ratio: must be a number, got fast",
     "bad_type"},
    {"infinity",
     "workers:\n  engine:\n    speedup_ratio: .inf\n",
     {},
     {},
     "config.yaml:3: workers.engine.speedup_ratio: must be a number, got .inf",
     "bad_type"},
    {"bad bool",
     "workers:\n  engine:\n    enable_prefix_caching: yes\n",
     {},
     {},
     "config.yaml:3: workers.engine.enable_prefix_caching: must be true or false, got yes",
     "bad_type"},
    {"bad enum",
     "nats:\n  event_plane: kafka\n",
     {},
     {},
     "config.yaml:2: nats.event_plane: must be one of nats | jetstream, got kafka",
     "bad_value"},
    {"section is a scalar",
     "workers: 5\n",
     {},
     {},
     "config.yaml:1: workers: must be a map, got a scalar",
     "bad_type"},
    {"key is a map",
     "workers:\n  count:\n    a: 1\n",
     {},
     {},
     "config.yaml:2: workers.count: must be an integer, got a map",
     "bad_type"},
    {"string is a list",
     "nats:\n  url: [a, b]\n",
     {},
     {},
     "config.yaml:2: nats.url: must be a string, got a list",
     "bad_type"},
    {"malformed yaml",
     "nats:\n  url: [a,\nworkers: {}\n",
     {},
     {},
     "config.yaml:4: invalid YAML: end of sequence flow not found",
     "yaml_syntax"},
    {"malformed indentation",
     "nats:\n  url: x\n bad: 1\n",
     {},
     {},
     "config.yaml:3: invalid YAML: end of map not found",
     "yaml_syntax"},
    {"two documents",
     "workers: {}\n---\nnats: {}\n",
     {},
     {},
     "config.yaml:3: only one YAML document is allowed",
     "yaml_syntax"},
    {"root is a list",
     "- a\n- b\n",
     {},
     {},
     "config.yaml:1: the top level must be a map of sections, got a list",
     "bad_root"},
    {"root is a scalar",
     "hello\n",
     {},
     {},
     "config.yaml:1: the top level must be a map of sections, got a scalar",
     "bad_root"},
    {"duplicate key",
     "workers:\n  count: 1\n  count: 2\n",
     {},
     {},
     "config.yaml:3: workers.count: duplicate key (first at line 2)",
     "duplicate_key"},
    {"duplicate section",
     "nats: {}\nworkers: {}\nnats: {}\n",
     {},
     {},
     "config.yaml:3: nats: duplicate key (first at line 1)",
     "duplicate_key"},
    {"bad listen address",
     "admin:\n  listen: localhost\n",
     {},
     {},
     "config.yaml:2: admin.listen: must be host:port, got localhost",
     "bad_value"},
    {"bad nats url",
     "nats:\n  url: http://x:1\n",
     {},
     {},
     "config.yaml:2: nats.url: must be a comma-separated list of nats://host:port URLs, got "
     "\"http://x:1\"",
     "bad_value"},
    {"zmq topic with an unknown placeholder",
     "workers:\n  zmq_events:\n    topic: kv@{pod_ip}@{model}\n",
     {},
     {},
     "config.yaml:3: workers.zmq_events.topic: has an unknown placeholder {pod_ip}; known: "
     "{host}, {port}, {model}, {worker_id}, {dp_rank}",
     "bad_value"},
    {"zmq topic with an unclosed brace",
     "workers:\n  zmq_events:\n    topic: kv@{host\n",
     {},
     {},
     "config.yaml:3: workers.zmq_events.topic: has an unclosed '{' at offset 3 (write '{{' for "
     "a literal brace)",
     "bad_value"},
    {"zmq connect without tcp",
     "workers:\n  zmq_events:\n    connect: 127.0.0.1:5557\n",
     {},
     {},
     "config.yaml:3: workers.zmq_events.connect: must be empty or tcp://host:port (the SUB "
     "socket to connect to), got \"127.0.0.1:5557\"",
     "bad_value"},
    {"zmq connect to a wildcard",
     "workers:\n  zmq_events:\n    connect: tcp://*:5557\n",
     {},
     {},
     "config.yaml:3: workers.zmq_events.connect: must be empty or tcp://host:port (the SUB "
     "socket to connect to), got \"tcp://*:5557\"",
     "bad_value"},
    {"zmq connect without a port",
     "workers:\n  zmq_events:\n    connect: tcp://scheduler\n",
     {},
     {},
     "config.yaml:3: workers.zmq_events.connect: must be empty or tcp://host:port (the SUB "
     "socket to connect to), got \"tcp://scheduler\"",
     "bad_value"},
    {"empty namespace",
     "nats:\n  namespace: \"\"\n",
     {},
     {},
     "config.yaml:2: nats.namespace: must not be empty",
     "bad_value"},
    {"relays not a list",
     "relays:\n  endpoint: tcp://h:1\n",
     {},
     {},
     "config.yaml:1: relays: must be a list of maps, got a map",
     "bad_type"},
    {"relay not a map",
     "relays:\n  - tcp://h:1\n",
     {},
     {},
     "config.yaml:2: relays[0]: must be a map, got a scalar",
     "bad_type"},
    {"relay without endpoint",
     "relays:\n  - worker_id: 5\n",
     {},
     {},
     "config.yaml:2: relays[0].endpoint: required key is missing",
     "missing_key"},
    {"relay without worker id",
     "relays:\n  - endpoint: tcp://h:1\n",
     {},
     {},
     "config.yaml:2: relays[0].worker_id: required key is missing",
     "missing_key"},
    {"relay bad endpoint",
     "relays:\n  - endpoint: http://h:1\n    worker_id: 1\n",
     {},
     {},
     "config.yaml:2: relays[0].endpoint: must be tcp://host:port or ipc://path, got "
     "\"http://h:1\"",
     "bad_value"},
    {"relay unknown key",
     "relays:\n  - endpoint: tcp://h:1\n    worker_id: 1\n    blocksize: 8\n",
     {},
     {},
     "config.yaml:4: relays[0].blocksize: unknown key (did you mean block_size?)",
     "unknown_key"},
    {"relay block size out of range",
     "relays:\n  - endpoint: tcp://h:1\n    worker_id: 1\n    block_size: 2048\n",
     {},
     {},
     "config.yaml:4: relays[0].block_size: must be between 1 and 1024, got 2048",
     "out_of_range"},
    {"profile without path",
     "workers:\n  engine:\n    timing:\n      model: profile\n",
     {},
     {},
     "config.yaml:4: workers.engine.timing.model: is profile but "
     "workers.engine.timing.profile_path is empty",
     "inconsistent"},
    {"g2 tuning while g2 is off",
     "workers:\n  engine:\n    g2:\n      bandwidth_g1_to_g2_gbps: 20\n",
     {},
     {},
     "config.yaml:4: workers.engine.g2.bandwidth_g1_to_g2_gbps: is set to 20.0 but G2 is off "
     "(workers.engine.g2.num_blocks is 0)",
     "inconsistent"},
    {"g2 batch while g2 is off",
     "workers:\n  engine:\n    g2: { offload_batch_size: 8 }\n",
     {},
     {},
     "config.yaml:3: workers.engine.g2.offload_batch_size: is set to 8 but G2 is off "
     "(workers.engine.g2.num_blocks is 0)",
     "inconsistent"},
    {"g2 without kv bytes",
     "workers:\n  engine:\n    g2:\n      num_blocks: 100\n",
     {},
     {},
     "config.yaml:4: workers.engine.g2.num_blocks: G2 needs "
     "workers.engine.g2.kv_bytes_per_token > 0 to time its transfers",
     "inconsistent"},
    {"unchunked budget below a block",
     "workers:\n  engine:\n    enable_chunked_prefill: false\n    max_num_batched_tokens: 32\n",
     {},
     {},
     "config.yaml:4: workers.engine.max_num_batched_tokens: 32 is less than "
     "workers.engine.block_size 64 with chunked prefill off: not even one block could be "
     "prefilled",
     "inconsistent"},
    {"unchunked budget below max_model_len",
     "workers:\n  engine:\n    enable_chunked_prefill: false\n    max_model_len: 16384\n",
     {},
     {},
     "config.yaml: workers.engine.max_num_batched_tokens: 8192 is less than "
     "workers.engine.max_model_len 16384 with chunked prefill off: long prompts could never be "
     "scheduled",
     "inconsistent"},
    {"duplicate relay worker ids",
     "workers: { count: 0 }\nrelays:\n  - { endpoint: tcp://a:1, worker_id: 42 }\n"
     "  - { endpoint: tcp://b:1, worker_id: 42 }\n",
     {},
     {},
     "config.yaml:4: relays[1].worker_id: 42 is also the worker_id of relays[0]",
     "inconsistent"},
    {"relay id among mock worker ids",
     "relays:\n  - endpoint: tcp://h:1\n    worker_id: 1002\n",
     {},
     {},
     "config.yaml:3: relays[0].worker_id: 1002 is a mock worker's id (workers.worker_id_base "
     "1000 and workers.count 4 use 1000..1003)",
     "inconsistent"},
    {"lora module syntax",
     "workers:\n  lora:\n    modules: \"a, =b\"\n",
     {},
     {},
     "config.yaml:3: workers.lora.modules: \"=b\" has no adapter name",
     "bad_value"},
    {"lora base not served",
     "workers:\n  lora:\n    modules: \"a=other-model\"\n",
     {},
     {},
     "config.yaml:3: workers.lora.modules: adapter \"a\" names base \"other-model\", which is "
     "not workers.model.name or one of workers.model.aliases",
     "inconsistent"},
    {"lora named as the model",
     "workers:\n  lora:\n    modules: kvmock-model\n",
     {},
     {},
     "config.yaml:3: workers.lora.modules: adapter \"kvmock-model\" has the name of a served "
     "model",
     "inconsistent"},
    {"worker ids overflow",
     "workers:\n  worker_id_base: 18446744073709551615\n",
     {},
     {},
     "config.yaml:2: workers.worker_id_base: 18446744073709551615 + workers.count 4 overflows "
     "a 64-bit worker id",
     "inconsistent"},
    {"zmq ports overlap http ports",
     "workers:\n  zmq_events:\n    enabled: true\n    base_port: 8102\n",
     {},
     {},
     "config.yaml:4: workers.zmq_events.base_port: ports 8102..8105 overlap "
     "workers.http_base_port ports 8100..8103",
     "inconsistent"},
    {"zmq ranges scale with dp size",
     "workers:\n  engine: { dp_size: 32 }\n  zmq_events: { enabled: true }\n",
     {},
     {},
     "config.yaml: workers.zmq_events.replay_base_port: ports 5657..5784 overlap "
     "workers.zmq_events.base_port ports 5557..5684",
     "inconsistent"},
    {"zmq topic port without http",
     "workers:\n  http_base_port: 0\n  zmq_events:\n    enabled: true\n"
     "    topic: kv@{host}:{port}@{model}\n",
     {},
     {},
     "config.yaml:5: workers.zmq_events.topic: uses {port} but workers.http_base_port is 0: the "
     "workers serve no HTTP port",
     "inconsistent"},
    {"admin port inside http ports",
     "admin:\n  listen: 0.0.0.0:8101\n",
     {},
     {},
     "config.yaml:2: admin.listen: port 8101 overlaps workers.http_base_port ports 8100..8103",
     "inconsistent"},
    {"ports run past 65535",
     "workers:\n  http_base_port: 65534\n",
     {},
     {},
     "config.yaml:2: workers.http_base_port: ports 65534..65537 run past 65535 (4 workers)",
     "inconsistent"},
    {"nothing to do",
     "workers:\n  count: 0\n",
     {},
     {},
     "config.yaml:2: workers.count: is 0 and there are no relays: nothing to do",
     "inconsistent"},
    {"load driver without workers",
     "workers:\n  count: 0\n  load:\n    enabled: true\nrelays:\n  - { endpoint: tcp://h:1, "
     "worker_id: 1 }\n",
     {},
     {},
     "config.yaml:4: workers.load.enabled: is true but workers.count is 0: no mock workers to "
     "drive",
     "inconsistent"},
    {"two auth methods",
     "nats:\n  user: a\n  password: b\n  token: c\n",
     {},
     {},
     "config.yaml:4: nats.token: cannot be combined with nats.user: choose one NATS "
     "authentication method",
     "inconsistent"},
    {"admin token twice",
     "admin:\n  auth_token: a\n  auth_token_file: /t\n",
     {},
     {},
     "config.yaml:3: admin.auth_token_file: cannot be combined with admin.auth_token: set one of "
     "them",
     "inconsistent"},
    {"no connections allowed",
     "http:\n  max_connections: 0\n",
     {},
     {},
     "config.yaml:2: http.max_connections: must be between 1 and 1000000, got 0",
     "out_of_range"},
    {"password without user",
     "nats:\n  password: b\n",
     {},
     {},
     "config.yaml:2: nats.password: is set but nats.user is empty",
     "inconsistent"},
    {"tls cert without key",
     "nats:\n  tls:\n    cert_file: /c.pem\n",
     {},
     {},
     "config.yaml:3: nats.tls.cert_file: is set but nats.tls.key_file is empty",
     "inconsistent"},
    {"set unknown key",
     "",
     {"workers.cuont=3"},
     {},
     "--set: workers.cuont: unknown key (did you mean count?)",
     "unknown_key"},
    {"set unknown section",
     "",
     {"wrkers.count=3"},
     {},
     "--set: wrkers.count: unknown key (did you mean workers?)",
     "unknown_key"},
    {"set bad value",
     "",
     {"workers.count=x"},
     {},
     "--set: workers.count: must be an integer, got x",
     "bad_type"},
    {"set without value",
     "",
     {"workers.count"},
     {},
     "--set: workers.count: expected KEY=VALUE",
     "bad_set"},
    {"set a section",
     "",
     {"workers=3"},
     {},
     "--set: workers: is a section; set one of its keys",
     "unknown_key"},
    {"set relay index out of range",
     "",
     {"relays[1].worker_id=5"},
     {},
     "--set: relays[1].worker_id: index out of range: there are 0 relays (relays[0] adds one)",
     "unknown_key"},
    {"set appended relay without endpoint",
     "",
     {"relays[0].worker_id=5"},
     {},
     "--set: relays[0].endpoint: required key is missing",
     "missing_key"},
    {"env bad value",
     "",
     {},
     {{"KVMOCK_WORKERS_COUNT", "many"}},
     "env KVMOCK_WORKERS_COUNT: workers.count: must be an integer, got many",
     "bad_type"},
    {"env unknown variable",
     "",
     {},
     {{"KVMOCK_WORKERS_CONUT", "3"}},
     "env KVMOCK_WORKERS_CONUT: unknown KVMOCK_ variable (did you mean KVMOCK_WORKERS_COUNT?)",
     "unknown_key"},
    {"env bad nats server",
     "",
     {},
     {{"NATS_SERVER", "http://x"}},
     "env NATS_SERVER: nats.url: must be a comma-separated list of nats://host:port URLs, got "
     "\"http://x\"",
     "bad_value"},
    {"etcd over https",
     "dynamo: { etcd_endpoints: https://etcd:2379 }",
     {},
     {},
     "config.yaml:1: dynamo.etcd_endpoints: \"https://etcd:2379\": https is not supported "
     "(kvmock uses etcd's plain-HTTP JSON gateway)",
     "bad_value"},
    {"env bad etcd endpoints",
     "",
     {},
     {{"ETCD_ENDPOINTS", "etcd:2379"}},
     "env ETCD_ENDPOINTS: dynamo.etcd_endpoints: must be a comma-separated list of "
     "http://host:port URLs, got \"etcd:2379\"",
     "bad_value"},
    {"Dynamo's mem discovery backend",
     "",
     {},
     {{"DYN_DISCOVERY_BACKEND", "mem"}},
     "env DYN_DISCOVERY_BACKEND: dynamo.discovery: must be one of none | etcd | file, got mem",
     "bad_value"},
    {"discovery without a model directory",
     "dynamo: { discovery: file }",
     {},
     {},
     "config.yaml:1: dynamo.discovery: is on but workers.model.path is empty: the model card "
     "needs a model directory (config.json, tokenizer.json, tokenizer_config.json)",
     "inconsistent"},
    {"rule blames a key set in the environment",
     "",
     {},
     {{"KVMOCK_WORKERS_COUNT", "0"}},
     "env KVMOCK_WORKERS_COUNT: workers.count: is 0 and there are no relays: nothing to do",
     "inconsistent"},
    {"every problem is reported",
     "workers:\n  count: x\n  engine:\n    block_size: 0\n",
     {},
     {},
     "config.yaml:2: workers.count: must be an integer, got x\n"
     "config.yaml:4: workers.engine.block_size: must be between 1 and 1024, got 0",
     "bad_type"},
};

TEST(ConfigLoader, BadConfigsFailWithAMessageNamingTheKeyAndLine) {
  ASSERT_GE(std::size(kBadConfigs), 20u);
  for (const BadConfig& bad : kBadConfigs) {
    SCOPED_TRACE(bad.name);
    const Result<Config> config = parse(bad.yaml, bad.sets, bad.env);
    ASSERT_FALSE(config.ok());
    EXPECT_EQ(config.error().message, bad.message);
    EXPECT_EQ(config.error().reason, bad.reason);
  }
}

TEST(ConfigLoader, LoadConfigReportsAnUnreadableFile) {
  const Result<Config> config = load_config({"/nonexistent/kvmock.yaml", {}, {}});
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.error().reason, "io");
  EXPECT_EQ(config.error().message,
            "/nonexistent/kvmock.yaml: cannot read: No such file or directory");
}

TEST(ConfigLoader, LoadConfigNamesTheFileInMessages) {
  const std::string path = ::testing::TempDir() + "kvmock_bad_config.yaml";
  std::FILE* f = std::fopen(path.c_str(), "wb");
  ASSERT_NE(f, nullptr);
  std::fputs("# comment\nworkers:\n  count: -1\n", f);
  std::fclose(f);
  const Result<Config> config = load_config({path, {}, {}});
  std::remove(path.c_str());
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.error().message,
            path + ":3: workers.count: must be between 0 and 100000, got -1");
}

TEST(ConfigLoader, NoFileMeansDefaultsPlusOverlays) {
  const Result<Config> config = load_config({"", {"workers.count=1"}, {}});
  ASSERT_TRUE(config.ok()) << config.error().message;
  EXPECT_EQ(config->workers.count, 1u);
}

TEST(ConfigLoader, BinaryGarbageIsRejectedWithoutThrowing) {
  const std::string garbage("\x00\xff\x01{[\"\n\t:&*!|>%@`", 17);
  const Result<Config> config = parse(garbage);
  EXPECT_FALSE(config.ok());
}

TEST(ConfigLoader, DeeplyNestedYamlIsRejectedWithoutExhaustingTheStack) {
  const Result<Config> config = parse("a: " + std::string(100000, '['));
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.error().message, "config.yaml: invalid YAML: nested too deeply");
}

// yaml-cpp 0.7's LoadAll never returns on this input (found by config_yaml_fuzz): it
// yields empty documents forever while memory grows.
TEST(ConfigLoader, InputThatMakesYamlCppYieldEndlessDocumentsIsRejected) {
  const Result<Config> config = parse(", The READM# ");
  ASSERT_FALSE(config.ok());
  EXPECT_NE(config.error().message.find("only one YAML document is allowed"), std::string::npos)
      << config.error().message;
}

TEST(ConfigLoader, AnEmptySecondDocumentIsStillASecondDocument) {
  const Result<Config> config = parse("workers:\n  count: 1\n---\n");
  ASSERT_FALSE(config.ok());
  EXPECT_NE(config.error().message.find("only one YAML document is allowed"), std::string::npos)
      << config.error().message;
}

TEST(ConfigLoader, SelfReferencingAliasesTerminate) {
  const Result<Config> config = parse("workers: &w\n  engine: *w\n");
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.error().message, "config.yaml:2: workers.engine.engine: unknown key");
}

TEST(ConfigLoader, MergeKeysAreReportedAsUnsupported) {
  const Result<Config> config = parse("workers:\n  <<: { count: 2 }\n");
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.error().message,
            "config.yaml:2: workers.<<: unknown key (YAML merge keys are not supported)");
}

TEST(ConfigLoader, AnchorsAndAliasesAreResolved) {
  const Config c = parse_ok("workers:\n  count: &n 2\n  engine:\n    dp_size: *n\n");
  EXPECT_EQ(c.workers.count, 2u);
  EXPECT_EQ(c.workers.engine.dp_size, 2u);
}

}  // namespace
}  // namespace kvmock
