#include "config/lora_modules.h"

#include <gtest/gtest.h>

namespace kvmock {
namespace {

TEST(LoraModules, NamesWithOptionalBasesInOrder) {
  auto modules = parse_lora_modules(" sql-lora , chat-lora=Qwen/Qwen3-0.6B,");
  ASSERT_TRUE(modules) << modules.error().message;
  ASSERT_EQ(modules->size(), 2u);
  EXPECT_EQ((*modules)[0], (LoraModule{"sql-lora", ""}));
  EXPECT_EQ((*modules)[1], (LoraModule{"chat-lora", "Qwen/Qwen3-0.6B"}));
  EXPECT_TRUE(parse_lora_modules("")->empty());
}

TEST(LoraModules, BadEntriesAreNamed) {
  EXPECT_EQ(parse_lora_modules("a=").error().message, "\"a=\" names no base model after '='");
  EXPECT_EQ(parse_lora_modules("a, a=b").error().message, "adapter \"a\" is listed twice");
  EXPECT_EQ(parse_lora_modules("my adapter").error().message,
            "\"my adapter\" has whitespace inside a name");
  EXPECT_EQ(check_lora_modules("=x"), "\"=x\" has no adapter name");
  EXPECT_EQ(check_lora_modules("x"), "");
}

}  // namespace
}  // namespace kvmock
