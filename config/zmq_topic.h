// `workers.zmq_events.topic` is a template, so that every mock engine can carry its own
// topic the way llm-d configures vLLM (`kv@<pod-ip>:<port>@<model>`,
// docs/wire-formats.md#engine-zmq-stream). Placeholders, a contract with users' configs:
//   {host}       workers.http_host        {port}     the worker's HTTP port
//   {model}      workers.model.name       {worker_id} the worker id
//   {dp_rank}    the engine's dp rank
// "{{" and "}}" stand for literal braces. A topic without braces is used as it is.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/common/result.h"

namespace kvmock {

struct ZmqTopicValues {
  std::string host;
  uint16_t port = 0;
  std::string model;
  uint64_t worker_id = 0;
  uint32_t dp_rank = 0;
};

// The placeholder names `topic` uses, in order of appearance (repeats kept), or an Error
// ("bad_value") for an unknown name, an unclosed "{" or a lone "}".
Result<std::vector<std::string>> zmq_topic_placeholders(std::string_view topic);

// `workers.zmq_events.connect`: empty (the PUB sockets bind) or "tcp://host:port" with a
// port above 0. Empty if acceptable, else the message tail for "KEY: <message>".
std::string check_zmq_connect_endpoint(std::string_view text);

// Empty if `topic` is a valid template, else the message tail for "KEY: <message>".
std::string check_zmq_topic_template(std::string_view topic);

// `topic` with every placeholder replaced; errors as zmq_topic_placeholders().
Result<std::string> expand_zmq_topic(std::string_view topic, const ZmqTopicValues& values);

}  // namespace kvmock
