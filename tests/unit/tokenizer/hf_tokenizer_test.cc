// HfTokenizer on tiny hand-made tokenizer.json files, one stage behaviour per test.
#include "core/tokenizer/hf_tokenizer.h"

#include <gtest/gtest.h>

#include <string>

namespace kvmock {
namespace {

// A byte-level BPE over "a", "b", "c", "Ġ" with merges a+b then ab+c.
std::string byte_level_json(bool ignore_merges) {
  return std::string(
             R"({"model":{"type":"BPE","vocab":{"a":0,"b":1,"c":2,"Ġ":3,"ab":4,"abc":5,"bc":6},
    "merges":["a b","ab c"],"ignore_merges":)") +
         (ignore_merges ? "true" : "false") + R"(},
    "pre_tokenizer":{"type":"ByteLevel","add_prefix_space":false,"use_regex":true},
    "decoder":{"type":"ByteLevel"},
    "added_tokens":[{"id":7,"content":"<s>","single_word":false,"lstrip":false,"rstrip":true,
                     "normalized":false,"special":true}],
    "post_processor":{"type":"TemplateProcessing","single":[{"SpecialToken":{"id":"<s>","type_id":0}},
      {"Sequence":{"id":"A","type_id":0}}],"special_tokens":{"<s>":{"id":"<s>","ids":[7],"tokens":["<s>"]}}}})";
}

// A Metaspace tokenizer with byte fallback and a fused unknown token.
const char* kMetaspaceJson =
    R"({"model":{"type":"BPE","vocab":{"<unk>":0,"▁":1,"h":2,"i":3,"▁h":4,"▁hi":5,
    "<0xC3>":6,"<0xA9>":7},"merges":["▁ h","▁h i"],"byte_fallback":true,"fuse_unk":true,"unk_token":"<unk>"},
    "pre_tokenizer":{"type":"Metaspace","replacement":"▁","prepend_scheme":"always","split":true},
    "decoder":{"type":"Sequence","decoders":[{"type":"Replace","pattern":{"String":"▁"},"content":" "},
      {"type":"ByteFallback"},{"type":"Fuse"},{"type":"Strip","content":" ","start":1,"stop":0}]}})";

std::vector<TokenId> encode(const std::string& json, std::string_view text, bool special = false) {
  auto tokenizer = HfTokenizer::from_json(json);
  EXPECT_TRUE(tokenizer.ok()) << tokenizer.error().message;
  auto ids = (*tokenizer)->encode(text, special);
  EXPECT_TRUE(ids.ok());
  return *ids;
}

TEST(HfTokenizerTest, ByteLevelBpeAppliesMergesLowestRankFirst) {
  EXPECT_EQ(encode(byte_level_json(false), "abc"), (std::vector<TokenId>{5}));
}

TEST(HfTokenizerTest, ByteLevelMapsASpaceToItsPrintableStandIn) {
  EXPECT_EQ(encode(byte_level_json(false), "a b"), (std::vector<TokenId>{0, 3, 1}));
}

TEST(HfTokenizerTest, IgnoreMergesTakesAVocabularyWordWhole) {
  // "bc" is in the vocabulary but no merge builds it.
  EXPECT_EQ(encode(byte_level_json(false), "bc"), (std::vector<TokenId>{1, 2}));
  EXPECT_EQ(encode(byte_level_json(true), "bc"), (std::vector<TokenId>{6}));
}

TEST(HfTokenizerTest, AddedTokenWithRstripSwallowsFollowingSpaces) {
  EXPECT_EQ(encode(byte_level_json(false), "<s>  ab"), (std::vector<TokenId>{7, 4}));
}

TEST(HfTokenizerTest, TemplateProcessingAddsTheBosOnlyWhenAsked) {
  EXPECT_EQ(encode(byte_level_json(false), "ab", true), (std::vector<TokenId>{7, 4}));
  EXPECT_EQ(encode(byte_level_json(false), "ab", false), (std::vector<TokenId>{4}));
}

TEST(HfTokenizerTest, MetaspacePrependsTheMarkerAndMerges) {
  EXPECT_EQ(encode(kMetaspaceJson, "hi"), (std::vector<TokenId>{5}));
}

TEST(HfTokenizerTest, ByteFallbackSpellsUnknownCharactersAsBytes) {
  EXPECT_EQ(encode(kMetaspaceJson, "é"), (std::vector<TokenId>{1, 6, 7}));
}

TEST(HfTokenizerTest, FuseUnkMergesARunOfUnknownCharacters) {
  EXPECT_EQ(encode(kMetaspaceJson, "xyz"), (std::vector<TokenId>{1, 0}));
}

TEST(HfTokenizerTest, DecoderChainUndoesMetaspaceAndByteFallback) {
  auto tokenizer = HfTokenizer::from_json(kMetaspaceJson);
  ASSERT_TRUE(tokenizer.ok());
  const std::vector<TokenId> ids{5, 1, 6, 7};
  EXPECT_EQ((*tokenizer)->decode(ids, false), "hi é");
}

TEST(HfTokenizerTest, BadJsonIsReportedAsBadJson) {
  auto tokenizer = HfTokenizer::from_json("{not json");
  ASSERT_FALSE(tokenizer.ok());
  EXPECT_EQ(tokenizer.error().reason, "bad_json");
  // JSON that is not an object is no tokenizer.json either (the model directory reports both
  // as model_directory_bad_json).
  auto array = HfTokenizer::from_json("[1, 2]");
  ASSERT_FALSE(array.ok());
  EXPECT_EQ(array.error().reason, "bad_json");
  EXPECT_NE(array.error().message.find("not a JSON object"), std::string::npos);
}

TEST(HfTokenizerTest, UnsupportedModelTypeIsNamedInTheError) {
  auto tokenizer = HfTokenizer::from_json(R"({"model":{"type":"WordPiece","vocab":{}}})");
  ASSERT_FALSE(tokenizer.ok());
  EXPECT_EQ(tokenizer.error().reason, "unsupported");
  EXPECT_NE(tokenizer.error().message.find("WordPiece"), std::string::npos);
}

TEST(HfTokenizerTest, InvalidUtf8InputIsBadUtf8) {
  auto tokenizer = HfTokenizer::from_json(byte_level_json(false));
  ASSERT_TRUE(tokenizer.ok());
  auto ids = (*tokenizer)->encode("a\xff", false);
  ASSERT_FALSE(ids.ok());
  EXPECT_EQ(ids.error().reason, "bad_utf8");
}

}  // namespace
}  // namespace kvmock
