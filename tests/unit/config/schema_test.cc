#include "config/schema.h"

#include <gtest/gtest.h>

#include <set>

namespace kvmock {
namespace {

TEST(ConfigSchema, KeysAndTheirEnvironmentNamesAreUnique) {
  std::set<std::string> paths;
  std::set<std::string> env_names;
  for (const auto& key : config_keys()) {
    EXPECT_TRUE(paths.insert(key.path).second) << key.path;
    EXPECT_TRUE(env_names.insert(env_var_for_key(key.path)).second) << key.path;
  }
  EXPECT_EQ(env_var_for_key("workers.engine.g2.num_blocks"), "KVMOCK_WORKERS_ENGINE_G2_NUM_BLOCKS");
}

TEST(ConfigSchema, EveryKeyHasADocAndItsDefaultIsAccepted) {
  for (const auto& key : config_keys()) {
    EXPECT_FALSE(key.doc.empty()) << key.path;
    Config c;
    EXPECT_FALSE(key.assign(c, key.render(Config{})).has_value()) << key.path;
  }
  for (const auto& key : relay_keys()) {
    EXPECT_FALSE(key.doc.empty()) << key.path;
  }
}

TEST(ConfigSchema, NoKeyIsBothALeafAndASection) {
  for (const auto& key : config_keys()) {
    EXPECT_FALSE(is_section(config_keys(), key.path)) << key.path;
  }
  EXPECT_TRUE(is_section(config_keys(), "workers.engine.g2"));
  EXPECT_FALSE(is_section(config_keys(), "workers.eng"));
}

TEST(ConfigSchema, KeysOfASectionAreContiguousSoPrintingOpensEachSectionOnce) {
  std::set<std::string> closed;
  std::string current;
  for (const auto& key : config_keys()) {
    const std::string section = key.path.substr(0, key.path.find('.'));
    if (section != current) {
      EXPECT_TRUE(closed.insert(current).second || current.empty()) << section;
      EXPECT_EQ(closed.count(section), 0u) << section << " appears twice";
      current = section;
    }
  }
}

TEST(ConfigSchema, ChildNamesListTheDirectChildrenOnce) {
  EXPECT_EQ(child_names(config_keys(), ""),
            (std::vector<std::string>{"nats", "dynamo", "admin", "http", "indexer", "load_metrics",
                                      "pipeline", "log", "shutdown", "faults", "workers"}));
  EXPECT_EQ(
      child_names(config_keys(), "workers.engine.timing"),
      (std::vector<std::string>{"model", "profile_path", "fixed_prefill_ms", "fixed_decode_ms"}));
}

TEST(ConfigSchema, ClosestNameSuggestsOnlyPlausibleTypos) {
  const std::vector<std::string> names{"event_plane", "url", "namespace"};
  EXPECT_EQ(closest_name("evnt_plane", names), "event_plane");
  EXPECT_EQ(closest_name("ulr", names), "url");
  EXPECT_EQ(closest_name("banana", names), "");
}

TEST(ConfigSchema, RangeErrorsUseTheKeysBounds) {
  const auto* key = find_key(config_keys(), "nats.stream_replicas");
  ASSERT_NE(key, nullptr);
  Config c;
  const auto error = key->assign(c, "6");
  ASSERT_TRUE(error.has_value());
  EXPECT_EQ(error->message, "must be between 1 and 5, got 6");
  EXPECT_FALSE(key->assign(c, "5").has_value());
  EXPECT_EQ(c.nats.stream_replicas, 5u);
}

}  // namespace
}  // namespace kvmock
