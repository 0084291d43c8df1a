#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
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

// Truncated and corrupted variants of real files: the loader must return, and every failure
// must carry a located message (no exception, no crash, no empty error).
TEST(ConfigExamples, MutatedExamplesNeverCrashAndAlwaysExplain) {
  const char* names[] = {"single-worker.yaml", "workers-64.yaml", "relay-only.yaml",
                         "jetstream.yaml", "g2.yaml"};
  using namespace std::string_literals;
  const std::string noise = ":-[{\"'\n\t#&*!|>%@`\\\x00\xff"s;
  size_t failures = 0;
  for (const char* name : names) {
    std::ifstream in(std::string(KVMOCK_TEST_DATA_DIR) + "/../../config/examples/" + name);
    std::stringstream buffer;
    buffer << in.rdbuf();
    const std::string text = buffer.str();
    ASSERT_FALSE(text.empty()) << name;
    std::vector<std::string> variants;
    for (size_t n = 0; n < text.size(); n += 7) variants.push_back(text.substr(0, n));
    for (size_t i = 0; i < text.size(); i += 5) {
      std::string changed = text;
      changed[i] = noise[i % noise.size()];
      variants.push_back(std::move(changed));
    }
    for (const std::string& variant : variants) {
      const Result<Config> config = parse_config(variant, "config.yaml", {}, {});
      if (!config.ok()) {
        ++failures;
        ASSERT_TRUE(config.error().message.starts_with("config.yaml")) << config.error().message;
        ASSERT_FALSE(config.error().reason.empty());
      }
    }
  }
  EXPECT_GT(failures, 0u);  // the mutations did reach the error paths
}

}  // namespace
}  // namespace kvmock
