// workers.zmq_events.topic templates and workers.zmq_events.connect (llm-d's topology,
// docs/wire-formats.md#engine-zmq-stream).
#include "config/zmq_topic.h"

#include <gtest/gtest.h>

#include "config/config_loader.h"

namespace kvmock {
namespace {

ZmqTopicValues sample() {
  ZmqTopicValues v;
  v.host = "10.1.2.3";
  v.port = 8000;
  v.model = "meta-llama/Llama-3.1-8B";
  v.worker_id = 1002;
  v.dp_rank = 3;
  return v;
}

TEST(ZmqTopic, LlmdTemplateExpandsPerWorker) {
  auto topic = expand_zmq_topic("kv@{host}:{port}@{model}", sample());
  ASSERT_TRUE(topic.ok()) << topic.error().message;
  EXPECT_EQ(*topic, "kv@10.1.2.3:8000@meta-llama/Llama-3.1-8B");
}

TEST(ZmqTopic, EveryPlaceholderAndRepeats) {
  auto topic = expand_zmq_topic("{worker_id}/{dp_rank}/{host}/{port}/{model}/{dp_rank}", sample());
  ASSERT_TRUE(topic.ok()) << topic.error().message;
  EXPECT_EQ(*topic, "1002/3/10.1.2.3/8000/meta-llama/Llama-3.1-8B/3");
}

TEST(ZmqTopic, LiteralTopicsAreUnchanged) {
  for (const char* literal : {"", "kv", "kv@a:1@m", "a=b", "line1\nline2 \x01 \xc3\xa9"}) {
    auto topic = expand_zmq_topic(literal, sample());
    ASSERT_TRUE(topic.ok()) << literal;
    EXPECT_EQ(*topic, literal);
    EXPECT_EQ(check_zmq_topic_template(literal), "");
  }
}

TEST(ZmqTopic, DoubledBracesAreLiteral) {
  auto topic = expand_zmq_topic("{{host}}={host}}}", sample());
  ASSERT_TRUE(topic.ok()) << topic.error().message;
  EXPECT_EQ(*topic, "{host}=10.1.2.3}");
}

TEST(ZmqTopic, PlaceholdersAreListedInOrder) {
  auto names = zmq_topic_placeholders("kv@{host}:{port}@{model}{{x}}");
  ASSERT_TRUE(names.ok());
  EXPECT_EQ(*names, (std::vector<std::string>{"host", "port", "model"}));
}

TEST(ZmqTopic, BadTemplatesNameTheProblem) {
  const std::string known = "; known: {host}, {port}, {model}, {worker_id}, {dp_rank}";
  EXPECT_EQ(check_zmq_topic_template("kv@{pod_ip}"), "has an unknown placeholder {pod_ip}" + known);
  EXPECT_EQ(check_zmq_topic_template("{HOST}"), "has an unknown placeholder {HOST}" + known);
  EXPECT_EQ(check_zmq_topic_template("{}"), "has an unknown placeholder {}" + known);
  EXPECT_EQ(check_zmq_topic_template("kv{host"),
            "has an unclosed '{' at offset 2 (write '{{' for a literal brace)");
  EXPECT_EQ(check_zmq_topic_template("kv}"),
            "has a lone '}' at offset 2 (write '}}' for a literal brace)");
  auto expanded = expand_zmq_topic("{nope}", sample());
  ASSERT_FALSE(expanded.ok());
  EXPECT_EQ(expanded.error().reason, "bad_value");
}

TEST(ZmqTopic, ConnectEndpointMustBeTcpHostPort) {
  EXPECT_EQ(check_zmq_connect_endpoint(""), "");
  EXPECT_EQ(check_zmq_connect_endpoint("tcp://127.0.0.1:5557"), "");
  EXPECT_EQ(check_zmq_connect_endpoint("tcp://llm-d-scheduler.ns.svc:5557"), "");
  EXPECT_EQ(check_zmq_connect_endpoint("tcp://[::1]:5557"), "");
  for (const char* bad : {"127.0.0.1:5557", "ipc:///tmp/x", "tcp://", "tcp://h", "tcp://h:0",
                          "tcp://*:5557", "tcp://h:65536", "tcp://h:x", "udp://h:1"}) {
    EXPECT_EQ(check_zmq_connect_endpoint(bad),
              "must be empty or tcp://host:port (the SUB socket to connect to), got \"" +
                  std::string(bad) + "\"")
        << bad;
  }
}

// A connecting PUB listens on nothing, so base_port may sit anywhere, even inside the HTTP
// range; the replay ROUTER still binds and is still checked.
TEST(ZmqTopic, ConnectModeFreesTheBasePortRange) {
  const char* yaml =
      "workers:\n  zmq_events:\n    enabled: true\n    base_port: 8102\n"
      "    connect: tcp://127.0.0.1:5557\n    topic: kv@{host}:{port}@{model}\n";
  auto config = parse_config(yaml, "config.yaml", {}, {});
  ASSERT_TRUE(config.ok()) << config.error().message;
  EXPECT_EQ(config->workers.zmq_events.connect, "tcp://127.0.0.1:5557");
  // Nor does a range running past 65535 matter: no PUB port is numbered from it.
  auto high = parse_config(
      "workers:\n  zmq_events:\n    enabled: true\n    base_port: 65535\n"
      "    connect: tcp://127.0.0.1:5557\n",
      "config.yaml", {}, {});
  EXPECT_TRUE(high.ok()) << high.error().message;

  auto replay = parse_config(
      "workers:\n  zmq_events:\n    enabled: true\n    replay_base_port: 8102\n"
      "    connect: tcp://127.0.0.1:5557\n",
      "config.yaml", {}, {});
  ASSERT_FALSE(replay.ok());
  EXPECT_NE(replay.error().message.find("workers.zmq_events.replay_base_port: ports 8102..8105 "
                                        "overlap workers.http_base_port"),
            std::string::npos)
      << replay.error().message;
}

TEST(ZmqTopic, TopicAndConnectCanBeSetFromTheCommandLine) {
  auto config = parse_config("", "config.yaml",
                             {"workers.zmq_events.topic=kv@{host}:{port}@{model}",
                              "workers.zmq_events.connect=tcp://10.0.0.1:5557"},
                             {});
  ASSERT_TRUE(config.ok()) << config.error().message;
  EXPECT_EQ(config->workers.zmq_events.topic, "kv@{host}:{port}@{model}");
  auto bad = parse_config("", "config.yaml", {"workers.zmq_events.topic=kv@{ip}"}, {});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("unknown placeholder {ip}"), std::string::npos)
      << bad.error().message;
}

}  // namespace
}  // namespace kvmock
