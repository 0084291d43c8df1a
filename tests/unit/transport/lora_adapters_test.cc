#include "transport/http/lora_adapters.h"

#include <gtest/gtest.h>

#include "transport/http/lora_endpoints.h"

namespace kvmock {
namespace {

TEST(LoraAdapters, IdsFollowLoadOrderAndAreNeverReused) {
  LoraAdapters adapters("base");
  EXPECT_EQ(adapters.load("a", "/a")->id, 1u);
  EXPECT_EQ(adapters.load("b", "/b", "other")->id, 2u);
  ASSERT_TRUE(adapters.unload("a"));
  EXPECT_EQ(adapters.load("a", "/a2")->id, 3u);
  const std::vector<LoraAdapter> listed = adapters.list();
  ASSERT_EQ(listed.size(), 2u);
  EXPECT_EQ(listed[0].name, "b");
  EXPECT_EQ(listed[0].parent, "other");
  EXPECT_EQ(listed[1].name, "a");
  EXPECT_EQ(listed[1].parent, "base");
  EXPECT_EQ(listed[1].path, "/a2");
}

TEST(LoraAdapters, RefusalsCarryVllmsMessages) {
  LoraAdapters adapters("base");
  ASSERT_TRUE(adapters.load("a", "/a"));
  auto twice = adapters.load("a", "/a");
  ASSERT_FALSE(twice);
  EXPECT_EQ(twice.error().reason, "bad_request");
  EXPECT_EQ(twice.error().message, "The lora adapter 'a' has already been loaded.");
  EXPECT_EQ(adapters.load("", "/p").error().message,
            "Both 'lora_name' and 'lora_path' must be provided.");
  EXPECT_EQ(adapters.load("n", "").error().reason, "bad_request");
  auto missing = adapters.unload("zz");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().reason, "not_found");
  EXPECT_EQ(missing.error().message, "The lora adapter 'zz' cannot be found.");
  EXPECT_EQ(adapters.unload("").error().reason, "bad_request");
  EXPECT_TRUE(adapters.find("a").has_value());
  EXPECT_FALSE(adapters.find("zz").has_value());
}

TEST(LoraAdapterBody, ReadsTheTwoFieldsAndRefusesOtherShapes) {
  auto body = parse_lora_adapter_body(R"({"lora_name":"x","lora_path":"/p","extra":1})");
  ASSERT_TRUE(body);
  EXPECT_EQ(body->lora_name, "x");
  EXPECT_EQ(body->lora_path, "/p");
  auto missing = parse_lora_adapter_body(R"({"lora_name":null})");
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->lora_name, "");
  EXPECT_FALSE(parse_lora_adapter_body("[1]"));
  EXPECT_FALSE(parse_lora_adapter_body("{"));
  EXPECT_FALSE(parse_lora_adapter_body(""));
  auto wrong = parse_lora_adapter_body(R"({"lora_name":3})");
  ASSERT_FALSE(wrong);
  EXPECT_EQ(wrong.error().message, "lora_name must be a string");
}

}  // namespace
}  // namespace kvmock
