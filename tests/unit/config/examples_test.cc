#include <gtest/gtest.h>

#include <string>

#include "config/config_loader.h"
#include "config/config_writer.h"

namespace kvmock {
namespace {

Config load_example(const std::string& name) {
  const std::string path = std::string(KVMOCK_TEST_DATA_DIR) + "/../../config/examples/" + name;
  Result<Config> config = load_config({path, {}, {}});
  EXPECT_TRUE(config.ok()) << name << ": " << config.error().message;
  if (!config.ok()) return Config{};
  const Result<Config> reparsed = parse_config(to_yaml(*config), name, {}, {});
  EXPECT_TRUE(reparsed.ok() && *reparsed == *config) << name;
  return std::move(config).value();
}

TEST(ConfigExamples, SingleWorkerLoads) {
  const Config c = load_example("single-worker.yaml");
  EXPECT_EQ(c.workers.count, 1u);
  EXPECT_EQ(c.workers.engine.timing.model, TimingModelKind::kFixed);
  EXPECT_TRUE(c.workers.load.enabled);
}

TEST(ConfigExamples, SixtyFourWorkersWithZmqEventsLoad) {
  const Config c = load_example("workers-64.yaml");
  EXPECT_EQ(c.workers.count, 64u);
  EXPECT_TRUE(c.workers.zmq_events.enabled);
}

TEST(ConfigExamples, RelayOnlyLoads) {
  const Config c = load_example("relay-only.yaml");
  EXPECT_EQ(c.workers.count, 0u);
  ASSERT_EQ(c.relays.size(), 2u);
  EXPECT_EQ(c.relays[1].dp_size, 2u);
}

TEST(ConfigExamples, JetStreamLoads) {
  const Config c = load_example("jetstream.yaml");
  EXPECT_EQ(c.nats.event_plane, EventPlane::kJetStream);
  EXPECT_EQ(c.nats.stream_replicas, 3u);
}

TEST(ConfigExamples, G2Loads) {
  const Config c = load_example("g2.yaml");
  EXPECT_TRUE(c.workers.engine.g2.enabled());
}

}  // namespace
}  // namespace kvmock
