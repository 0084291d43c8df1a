// The typed configuration of kvmockd (config/README.md).
//
// Plain data. The member initializers below ARE the defaults: the key table in
// config/schema.cc reads them from a default-constructed Config, so a default is written
// exactly once (EngineArgs' defaults live in core/engine/engine_args.h for the same
// reason). Ranges, enum spellings and docs live in the key table; config/README.md is
// generated from it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/engine/engine_args.h"

namespace kvmock {

enum class EventPlane : uint8_t { kNats, kJetStream };
enum class LogLevel : uint8_t { kDebug, kInfo, kWarn, kError };
enum class LogFormat : uint8_t { kText, kJson };
// How mock workers encode their own vLLM-format ZMQ events.
enum class ZmqEncoding : uint8_t { kMap, kPositional };
enum class HashEncoding : uint8_t { kUint64, kInt64, kBytes32 };
// Where mock workers register as Dynamo instances (docs/dynamo-discovery.md).
enum class DynamoDiscoveryKind : uint8_t { kNone, kEtcd, kFile };
// How a Dynamo frontend sends requests to the workers (docs/wire-formats.md).
enum class DynamoRequestPlaneKind : uint8_t { kTcp, kNats };
// The Dynamo release whose discovery layout the records follow.
enum class DynamoReleaseKind : uint8_t { k1_0, k1_1 };

struct NatsTlsConfig {
  std::string ca_file;
  std::string cert_file;
  std::string key_file;
};

// Optional RouterEvent fields that only newer routers understand.
struct NatsFieldSet {
  bool residency_domain = false;
  bool start_position = false;
};

struct NatsConfig {
  std::string url = "nats://127.0.0.1:4222";  // may be a comma-separated list
  EventPlane event_plane = EventPlane::kNats;
  std::string namespace_ = "dynamo";  // key `nats.namespace` (a C++ keyword)
  std::string component = "backend";
  std::string kv_subject = "kv-events";
  uint32_t outbox_capacity = 100000;
  // How long a mock worker waits for outbox room before holding its events and refusing
  // new requests (503) until the outbox drains.
  uint32_t outbox_full_wait_ms = 1000;
  std::string user;
  std::string password;
  std::string token;
  std::string nkey_seed_file;
  std::string credentials_file;
  NatsTlsConfig tls;
  uint64_t stream_max_age_s = 3600;
  uint32_t stream_replicas = 1;
  NatsFieldSet field_set;
};

struct AdminConfig {
  std::string listen = "127.0.0.1:9090";  // "host:port"; empty: no admin server
  // Bearer token every admin endpoint but /health and /ready requires; empty: no auth.
  std::string auth_token;
  std::string auth_token_file;  // file holding the token (trimmed); instead of auth_token
  uint32_t max_connections = 64;
};

// Every HTTP listener of the mock workers (one port per worker).
struct HttpConfig {
  uint32_t max_connections = 1024;  // per port; more are answered 503
  // A request body over this is answered 413 (vLLM: --max-request-body-size-mb).
  uint64_t max_request_body_bytes = uint64_t{16} << 20;
};

struct IndexerConfig {
  uint32_t buffer_size = 1024;
};

struct LoadMetricsConfig {
  uint32_t debounce_ms = 1;
  uint32_t heartbeat_s = 10;  // 0: no heartbeat
};

struct PipelineConfig {
  uint32_t batching_timeout_ms = 0;  // 0: every event is published on its own
};

struct LogConfig {
  LogLevel level = LogLevel::kInfo;
  LogFormat format = LogFormat::kText;
};

// Faults shown to routers on purpose (docs/faults.md).
struct FaultsConfig {
  uint64_t seed = 0;  // fixes which requests an injected failure rate picks
  // A scripted timeline of fault settings and crashes (config/fault_scenario.h); empty: none.
  std::string scenario;
};

struct ShutdownConfig {
  uint32_t grace_s = 5;
  uint32_t flush_deadline_s = 5;
};

// vLLM-format ZMQ publishers of the mock workers. Worker i, dp rank r publishes on
// base_port + i * dp_size + r (replay ROUTER likewise from replay_base_port), or, with
// `connect` set, every PUB dials that one endpoint (llm-d's topology,
// docs/wire-formats.md#engine-zmq-stream).
struct ZmqEventsConfig {
  bool enabled = false;
  std::string bind_host = "127.0.0.1";
  uint16_t base_port = 5557;
  uint16_t replay_base_port = 5657;  // 0: no replay socket
  ZmqEncoding encoding = ZmqEncoding::kMap;
  HashEncoding hash_encoding = HashEncoding::kUint64;
  // A template: {host} {port} {model} {worker_id} {dp_rank} (config/zmq_topic.h).
  std::string topic;
  std::string connect;  // "tcp://host:port" the PUB sockets connect to; empty: they bind
};

// The built-in load driver (demo traffic without an external client).
struct LoadDriverConfig {
  bool enabled = false;
  double requests_per_s = 2.0;  // per worker
  uint32_t input_tokens = 1000;
  uint32_t output_tokens = 100;
  double shared_prefix_ratio = 0.5;
  uint32_t prefix_groups = 8;
  uint64_t seed = 0;
};

// The model the mock workers serve, as a frontend sees it.
struct ModelConfig {
  std::string name = "kvmock-model";  // the served model name
  // More served names, comma-separated (vLLM's --served-model-name list after the first).
  std::string aliases;
  std::string path;  // a Hugging Face model directory; empty: none (the mock tokenizer)
};

// LoRA adapters served from the start (their batch limit is workers.engine's max_loras).
struct LoraConfig {
  std::string modules;  // config/lora_modules.h: `name` or `name=base`, comma-separated
};

struct WorkersConfig {
  uint32_t count = 4;
  uint64_t worker_id_base = 1000;  // worker i has id worker_id_base + i
  uint16_t http_base_port = 8100;  // worker i serves HTTP on base + i; 0: no HTTP
  std::string http_host = "127.0.0.1";
  uint32_t threads = 0;  // engine threads; 0: one per usable CPU
  EngineArgs engine;
  ModelConfig model;
  LoraConfig lora;
  ZmqEventsConfig zmq_events;
  LoadDriverConfig load;
  // Prompt tokens a worker holds for the requests it accepted and has not finished
  // (waiting or running); past it new requests are refused (HTTP 429). Bounds the
  // memory queued prompts take (about 4 bytes a token).
  uint64_t max_queued_prompt_tokens = uint64_t{1} << 24;
  // Requests each engine (dp rank) keeps waiting at most; past it new ones get 429.
  uint32_t max_num_waiting = 4096;
  // A worker is not ready (health 503, requests 503) until this long after it starts, as a
  // vLLM pod loading its weights (docs/faults.md#realism).
  double startup_delay_s = 0;
};

// A real engine whose ZMQ KV events are relayed. `endpoint` and `worker_id` are required.
struct RelayConfig {
  std::string endpoint;
  std::string replay_endpoint;  // empty: no replay on reconnect
  std::string topic;
  uint64_t worker_id = 0;
  uint32_t block_size = 16;
  uint32_t dp_size = 1;
  uint32_t replay_timeout_ms = 2000;
  uint64_t max_message_bytes = 4 << 20;     // larger engine messages are refused
  uint64_t max_buffered_bytes = 256 << 20;  // bound on what waits in the ZMQ socket
  uint64_t max_gap = 1000000;               // larger seq jumps need the next batch to confirm

  bool operator==(const RelayConfig&) const = default;
};

// Mock workers as Dynamo 1.x instances: discovery records, the request plane
// (docs/dynamo-discovery.md).
struct DynamoConfig {
  DynamoDiscoveryKind discovery = DynamoDiscoveryKind::kNone;
  std::string etcd_endpoints = "http://127.0.0.1:2379";  // comma-separated http:// URLs
  std::string file_root;      // discovery file: empty = $TMPDIR/dynamo_store_kv, as Dynamo
  uint32_t lease_ttl_s = 10;  // Dynamo's own workers use 10 s
  DynamoRequestPlaneKind request_plane = DynamoRequestPlaneKind::kTcp;
  std::string tcp_listen = "0.0.0.0:0";  // one listener for every worker; port 0 = any
  std::string tcp_host;                  // advertised host; empty = first non-loopback address
  uint64_t tcp_max_message_bytes = uint64_t{32} << 20;
  DynamoReleaseKind release = DynamoReleaseKind::k1_0;
};

struct Config {
  NatsConfig nats;
  DynamoConfig dynamo;
  AdminConfig admin;
  HttpConfig http;
  IndexerConfig indexer;
  LoadMetricsConfig load_metrics;
  PipelineConfig pipeline;
  LogConfig log;
  ShutdownConfig shutdown;
  FaultsConfig faults;
  WorkersConfig workers;
  std::vector<RelayConfig> relays;
};

// Key-by-key equality over every declared key (EngineArgs has no operator==, so this
// walks the key table rather than comparing members by hand).
bool operator==(const Config& a, const Config& b);

}  // namespace kvmock
