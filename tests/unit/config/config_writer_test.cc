#include "config/config_writer.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "config/config_loader.h"

namespace kvmock {
namespace {

Config parse_ok(std::string_view yaml) {
  Result<Config> config = parse_config(yaml, "config.yaml", {}, {});
  EXPECT_TRUE(config.ok()) << config.error().message << "\n--- yaml ---\n" << yaml;
  return config.ok() ? *config : Config{};
}

TEST(ConfigWriter, DefaultConfigRoundTripsThroughYaml) {
  const Config defaults;
  EXPECT_TRUE(parse_ok(to_yaml(defaults)) == defaults);
}

TEST(ConfigWriter, EveryKeyIsPrintedWithItsSection) {
  const std::string yaml = to_yaml(Config{});
  EXPECT_NE(yaml.find("nats:\n  url: \"nats://127.0.0.1:4222\"\n  event_plane: nats\n"),
            std::string::npos);
  EXPECT_NE(yaml.find("    g2:\n      num_blocks: 0\n"), std::string::npos);
  EXPECT_NE(yaml.find("    speedup_ratio: 1.0\n"), std::string::npos);
  EXPECT_NE(yaml.find("\nrelays: []\n"), std::string::npos);
}

TEST(ConfigWriter, NonDefaultConfigWithRelaysAndOddStringsRoundTrips) {
  Config c;
  c.nats.event_plane = EventPlane::kJetStream;
  c.nats.user = "u";
  c.nats.password = "p\"a\\ss: #word";
  c.workers.count = 2;
  c.workers.engine.speedup_ratio = 0.1;  // not exactly representable: printed to round-trip
  c.workers.engine.seed = 18446744073709551615ull;
  c.workers.engine.timing.model = TimingModelKind::kFixed;
  c.workers.engine.timing.fixed_decode_ms = 1e-7;
  c.workers.zmq_events.topic = "line1\nline2\ttab \x01 yes null ~ \xc3\xa9";
  c.workers.load.requests_per_s = 12345.678;
  c.relays.push_back({"tcp://h:1", "", "", 7, 16, 1, 2000});
  c.relays.push_back({"ipc:///tmp/x", "tcp://h:2", "true", 8, 32, 2, 100});
  const Config back = parse_ok(to_yaml(c));
  EXPECT_TRUE(back == c);
  EXPECT_EQ(back.workers.zmq_events.topic, c.workers.zmq_events.topic);
  EXPECT_EQ(back.nats.password, c.nats.password);
}

TEST(ConfigWriter, EqualityNoticesAChangeInAnyKey) {
  Config a;
  Config b;
  b.workers.engine.g2.offload_batch_size = 1;
  EXPECT_FALSE(a == b);
  b = a;
  b.relays.push_back({"tcp://h:1", "", "", 7, 16, 1, 2000});
  EXPECT_FALSE(a == b);
}

TEST(ConfigWriter, RedactionHidesOnlyNonEmptySecrets) {
  Config c;
  c.nats.user = "alice";
  c.nats.password = "hunter2";
  const std::string shown = to_yaml(c, Secrets::kShow);
  const std::string redacted = to_yaml(c, Secrets::kRedact);
  EXPECT_NE(shown.find("password: \"hunter2\""), std::string::npos);
  EXPECT_EQ(redacted.find("hunter2"), std::string::npos);
  EXPECT_NE(redacted.find("password: \"<redacted>\""), std::string::npos);
  EXPECT_NE(redacted.find("user: \"alice\""), std::string::npos);
  EXPECT_NE(redacted.find("token: \"\""), std::string::npos);
}

TEST(ConfigWriter, TheAdminTokenIsRedacted) {
  Config c;
  c.admin.auth_token = "adm1n-s3cret";
  const std::string redacted = to_yaml(c, Secrets::kRedact);
  EXPECT_EQ(redacted.find("adm1n-s3cret"), std::string::npos) << redacted;
  EXPECT_NE(redacted.find("auth_token: \"<redacted>\""), std::string::npos) << redacted;
}

TEST(ConfigWriter, ReferenceHasOneRowPerKeyIncludingRelayKeys) {
  const std::string table = config_reference_markdown();
  EXPECT_NE(table.find("| `workers.engine.block_size` | uint32 | `64` | 1..1024 | "),
            std::string::npos);
  EXPECT_NE(table.find("| `nats.event_plane` | enum | `nats` | `nats`, `jetstream` | "),
            std::string::npos);
  EXPECT_NE(table.find("| `relays[].endpoint` | string | required | "), std::string::npos);
  EXPECT_NE(table.find("| `relays[].block_size` | uint32 | `16` | 1..1024 | "), std::string::npos);
}

// config/README.md embeds the generated table; this keeps the document from rotting.
TEST(ConfigWriter, ReadmeTableMatchesTheGeneratedReference) {
  const std::string path = std::string(KVMOCK_TEST_DATA_DIR) + "/../../config/README.md";
  std::ifstream in(path);
  ASSERT_TRUE(in.good()) << path;
  std::stringstream buffer;
  buffer << in.rdbuf();
  const std::string readme = buffer.str();
  const std::string begin = "<!-- BEGIN GENERATED REFERENCE -->\n";
  const std::string end = "<!-- END GENERATED REFERENCE -->";
  const size_t from = readme.find(begin);
  const size_t to = readme.find(end);
  ASSERT_NE(from, std::string::npos);
  ASSERT_NE(to, std::string::npos);
  const std::string embedded = readme.substr(from + begin.size(), to - from - begin.size());
  EXPECT_EQ(embedded, config_reference_markdown())
      << "config/README.md is stale; regenerate the table with "
         "`kvmockd check-config --reference`";
}

}  // namespace
}  // namespace kvmock
