#include "core/dynamo/discovery_records.h"

#include <cassert>
#include <charconv>
#include <initializer_list>
#include <utility>

#include "core/events/json_writer.h"

namespace kvmock::dynamo {

namespace {

constexpr std::string_view kInstancesBucket = "v1/instances";
constexpr std::string_view kModelCardsBucket = "v1/mdc";
constexpr std::string_view kEventChannelsBucket = "v1/event_channels";

std::string join_key(std::initializer_list<std::string_view> parts) {
  std::string key;
  for (std::string_view part : parts) {
    if (!key.empty()) key.push_back('/');
    key.append(part);
  }
  return key;
}

// The request-plane address of one endpoint, as the frontend dials it.
void write_transport(codec::JsonWriter& w, const WorkerDiscoverySpec& spec,
                     std::string_view endpoint, const std::string& id_hex) {
  w.begin_map(1);
  if (spec.request_plane == RequestPlane::kTcp) {
    w.key("tcp");
    w.str(spec.tcp_address + "/" + id_hex + "/" + std::string(endpoint));
  } else {
    // Serde renames the Nats variant "nats_tcp"; the subject is the instance subject the
    // NATS request plane subscribes (docs/wire-formats.md#nats-request-plane).
    w.key("nats_tcp");
    w.str(spec.dynamo_namespace + "_" + spec.component + "." + std::string(endpoint) + "-" +
          id_hex);
  }
  w.end_map();
}

DiscoveryRecord endpoint_record(const WorkerDiscoverySpec& spec, std::string_view endpoint,
                                const std::string& id_hex) {
  std::string value;
  codec::JsonWriter w(value);
  // Dynamo's Instance declares component before namespace; serde keeps that order.
  w.begin_map(6);
  w.key("type");
  w.str("Endpoint");
  w.key("component");
  w.str(spec.component);
  w.key("endpoint");
  w.str(endpoint);
  w.key("namespace");
  w.str(spec.dynamo_namespace);
  w.key("instance_id");
  w.u64(spec.instance_id);
  w.key("transport");
  write_transport(w, spec, endpoint, id_hex);
  w.end_map();
  return {join_key({kInstancesBucket, spec.dynamo_namespace, spec.component, endpoint, id_hex}),
          std::move(value)};
}

DiscoveryRecord model_record(const WorkerDiscoverySpec& spec, const std::string& id_hex) {
  std::string value;
  codec::JsonWriter w(value);
  w.begin_map(6);
  w.key("type");
  w.str("Model");
  w.key("namespace");
  w.str(spec.dynamo_namespace);
  w.key("component");
  w.str(spec.component);
  w.key("endpoint");
  w.str(kGenerateEndpoint);
  w.key("instance_id");
  w.u64(spec.instance_id);
  w.key("card_json");
  w.raw_json(spec.card_json);
  // model_suffix (a LoRA's) is None for a base model, and serde then leaves it out.
  w.end_map();
  return {join_key({kModelCardsBucket, spec.dynamo_namespace, spec.component, kGenerateEndpoint,
                    id_hex}),
          std::move(value)};
}

// `component` empty means the channel is scoped to the namespace (kv_metrics).
std::string event_channel_key(const WorkerDiscoverySpec& spec, std::string_view component,
                              std::string_view topic, const std::string& id_hex) {
  if (spec.release == DynamoRelease::k1_0) {
    // No literal segments; a namespace-scoped topic leaves an empty component segment.
    return join_key({kEventChannelsBucket, spec.dynamo_namespace, component, topic, id_hex});
  }
  // Later releases name each segment (docs/dynamo-discovery.md#releases: unverified, and
  // the namespace-scoped form is a guess).
  if (component.empty()) {
    return join_key(
        {kEventChannelsBucket, "namespace", spec.dynamo_namespace, "topic", topic, id_hex});
  }
  return join_key({kEventChannelsBucket, "namespace", spec.dynamo_namespace, "component", component,
                   "topic", topic, id_hex});
}

DiscoveryRecord event_channel_record(const WorkerDiscoverySpec& spec, std::string_view component,
                                     std::string_view topic, const std::string& id_hex) {
  std::string value;
  codec::JsonWriter w(value);
  w.begin_map(6);
  w.key("type");
  w.str("EventChannel");
  w.key("namespace");
  w.str(spec.dynamo_namespace);
  w.key("component");
  w.str(component);
  w.key("topic");
  w.str(topic);
  w.key("instance_id");
  w.u64(spec.instance_id);
  w.key("transport");
  w.begin_map(2);
  w.key("kind");
  if (spec.zmq_event_endpoint) {
    w.str("Zmq");
    w.key("config");
    w.begin_map(1);
    w.key("endpoint");
    w.str(*spec.zmq_event_endpoint);
    w.end_map();
  } else {
    // The subject prefix of the channel's scope; the topic is appended to it with a '.'.
    std::string subject_prefix = "namespace." + spec.dynamo_namespace;
    if (!component.empty()) subject_prefix += ".component." + std::string(component);
    w.str("Nats");
    w.key("config");
    w.begin_map(1);
    w.key("subject_prefix");
    w.str(subject_prefix);
    w.end_map();
  }
  w.end_map();
  w.end_map();
  return {event_channel_key(spec, component, topic, id_hex), std::move(value)};
}

}  // namespace

std::string instance_id_hex(uint64_t instance_id) {
  char buf[16];
  const auto res = std::to_chars(buf, buf + sizeof(buf), instance_id, 16);
  return std::string(buf, res.ptr);
}

std::vector<DiscoveryRecord> worker_discovery_records(const WorkerDiscoverySpec& spec) {
  assert(spec.data_parallel_size >= 1);
  assert(!spec.card_json.empty());
  const std::string id_hex = instance_id_hex(spec.instance_id);
  std::vector<DiscoveryRecord> records;
  records.reserve(spec.data_parallel_size + 4);
  records.push_back(model_record(spec, id_hex));
  records.push_back(endpoint_record(spec, kGenerateEndpoint, id_hex));
  for (uint32_t rank = 0; rank < spec.data_parallel_size; ++rank) {
    const std::string endpoint = std::string(kIndexerQueryEndpointPrefix) + std::to_string(rank);
    records.push_back(endpoint_record(spec, endpoint, id_hex));
  }
  records.push_back(event_channel_record(spec, spec.component, spec.kv_events_topic, id_hex));
  records.push_back(event_channel_record(spec, "", kLoadMetricsTopic, id_hex));
  return records;
}

}  // namespace kvmock::dynamo
