#include "core/tokenizer/mock_tokenizer.h"

#include <gtest/gtest.h>

#include <set>

namespace kvmock {
namespace {

TEST(MockTokenizerTest, SameTextGivesSameIds) {
  EXPECT_EQ(mock_tokenize("the quick brown fox"), mock_tokenize("the quick brown fox"));
}

TEST(MockTokenizerTest, EachWhitespaceSeparatedPieceIsOneId) {
  const auto ids = mock_tokenize("  the\tquick\n\nbrown   fox ");
  ASSERT_EQ(ids.size(), 4u);
  EXPECT_EQ(ids[0], mock_token_id("the"));
  EXPECT_EQ(ids[3], mock_token_id("fox"));
}

TEST(MockTokenizerTest, SharedWordPrefixGivesSharedIdPrefix) {
  const auto a = mock_tokenize("you are a helpful assistant. Summarise this page");
  const auto b = mock_tokenize("you are a helpful assistant. Translate that");
  ASSERT_GE(a.size(), 5u);
  ASSERT_GE(b.size(), 5u);
  EXPECT_TRUE(std::equal(a.begin(), a.begin() + 5, b.begin()));
  EXPECT_NE(a[5], b[5]);
}

TEST(MockTokenizerTest, IdsStayInsideTheVocabularyRange) {
  for (int i = 0; i < 2000; ++i) {
    const TokenId id = mock_token_id("w" + std::to_string(i));
    EXPECT_GE(id, kMockVocabBegin);
    EXPECT_LT(id, kMockVocabEnd);
  }
}

TEST(MockTokenizerTest, DifferentWordsMostlyGetDifferentIds) {
  std::set<TokenId> ids;
  for (int i = 0; i < 1000; ++i) ids.insert(mock_token_id("word" + std::to_string(i)));
  // 1000 draws from 31000 ids collide about 16 times on average; a broken hash far more.
  EXPECT_GT(ids.size(), 950u);
}

TEST(MockTokenizerTest, BlankTextGivesNoIds) {
  EXPECT_TRUE(mock_tokenize("").empty());
  EXPECT_TRUE(mock_tokenize(" \t\r\n").empty());
}

TEST(MockTokenizerTest, DecodeGivesOneReadableWordPerIdJoinedBySpaces) {
  const std::vector<TokenId> ids = {0, 79, 80, 31999, 4294967295u};
  const std::string text = mock_decode(ids);
  EXPECT_EQ(mock_tokenize(text).size(), ids.size());
  for (char c : text) EXPECT_TRUE(c == ' ' || (c >= 'a' && c <= 'z')) << text;
  EXPECT_EQ(text.front(), 'b');  // id 0 → "ba"
  EXPECT_EQ(mock_token_text(0), "ba");
  EXPECT_EQ(mock_decode(std::vector<TokenId>{}), "");
}

TEST(MockTokenizerTest, DecodeIsDeterministicAndDistinguishesIds) {
  std::set<std::string> words;
  for (TokenId id = kMockVocabBegin; id < kMockVocabBegin + 5000; ++id) {
    EXPECT_EQ(mock_token_text(id), mock_token_text(id));
    words.insert(mock_token_text(id));
  }
  EXPECT_EQ(words.size(), 5000u);
}

TEST(MockTokenizerTest, ChatTemplateWrapsEachMessageAndAddsTheGenerationPrompt) {
  const std::vector<ChatMessage> messages = {{"system", "be brief"}, {"user", "hi there"}};
  EXPECT_EQ(render_chat(messages), "<|system|>\nbe brief\n<|user|>\nhi there\n<|assistant|>\n");
}

TEST(MockTokenizerTest, OneTurnsPromptIsAPrefixOfTheNextTurnsPrompt) {
  std::vector<ChatMessage> conversation = {{"system", "be brief"}, {"user", "what is kv cache"}};
  const auto first = mock_tokenize_chat(conversation);
  conversation.push_back({"assistant", "a cache of attention keys"});
  conversation.push_back({"user", "and prefix caching"});
  const auto second = mock_tokenize_chat(conversation);
  ASSERT_GT(second.size(), first.size());
  EXPECT_TRUE(std::equal(first.begin(), first.end(), second.begin()));
}

TEST(MockTokenizerTest, IdsOfALongTextTakeNoSpareStorage) {
  std::string text;
  for (int i = 0; i < 100001; ++i) text += " a\t";
  const auto ids = mock_tokenize(text);
  EXPECT_EQ(ids.size(), 100001u);
  EXPECT_EQ(ids.capacity(), ids.size());
}

}  // namespace
}  // namespace kvmock
