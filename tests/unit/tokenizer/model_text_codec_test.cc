// make_model_text_codec on tiny hand-made files: which template it picks, what the template
// is given, continue_final_message, the output vocabulary, and the errors of bad files; and
// IncrementalDetokenizer never releasing half a character.
#include "core/tokenizer/model_text_codec.h"

#include <gtest/gtest.h>

#include <string>

#include "core/tokenizer/incremental_detokenizer.h"

namespace kvmock {
namespace {

// Byte-level BPE: "Ġhello", "Ġworld" are readable words; "é" is two byte tokens (Ã, ©)
// merged into one; "<|eot|>" is special, "Ġ" alone and "xyz" are not words.
constexpr std::string_view kTokenizer = R"({
  "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "use_regex": true},
  "decoder": {"type": "ByteLevel"},
  "model": {"type": "BPE", "vocab": {"h": 0, "e": 1, "l": 2, "o": 3, "w": 4, "r": 5, "d": 6, "Ġ": 7,
    "Ġh": 8, "Ġhe": 9, "Ġhel": 10, "Ġhell": 11, "Ġhello": 12, "Ġw": 13, "Ġwo": 14, "Ġwor": 15,
    "Ġworl": 16, "Ġworld": 17, "Ã": 18, "©": 19, "Ã©": 20, "x": 21, "y": 22, "z": 23, "xyz": 24},
    "merges": ["Ġ h", "Ġh e", "Ġhe l", "Ġhel l", "Ġhell o", "Ġ w", "Ġw o", "Ġwo r", "Ġwor l",
               "Ġworl d", "Ã ©"]},
  "added_tokens": [{"id": 25, "content": "<|eot|>", "single_word": false, "lstrip": false,
    "rstrip": false, "normalized": false, "special": true}]
})";

std::shared_ptr<const TextCodec> codec(std::string_view config,
                                       std::optional<std::string_view> jinja = std::nullopt) {
  auto made = make_model_text_codec({kTokenizer, config, jinja});
  EXPECT_TRUE(made.ok()) << made.error().message;
  return made.ok() ? *made : nullptr;
}

ChatPrompt user_says(const std::string& text) {
  ChatPrompt prompt;
  prompt.messages = nlohmann::ordered_json::array({{{"role", "user"}, {"content", text}}});
  return prompt;
}

TEST(ModelTextCodec, TheTemplateGetsTheSpecialTokensOfTheConfigInEitherForm) {
  const auto c = codec(R"({"bos_token": {"content": "<s>", "lstrip": false}, "eos_token": "<|eot|>",
    "chat_template": "{{ bos_token }}{% for m in messages %}[{{ m.role }}]{{ m.content }}{{ eos_token }}{% endfor %}{% if add_generation_prompt %}[assistant]{% endif %}"})");
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(*c->render_chat(user_says("hi")), "<s>[user]hi<|eot|>[assistant]");
  ChatPrompt no_prompt = user_says("hi");
  no_prompt.add_generation_prompt = false;
  EXPECT_EQ(*c->render_chat(no_prompt), "<s>[user]hi<|eot|>");
}

TEST(ModelTextCodec, ChatTemplateJinjaWinsAndANamedListUsesItsDefaultEntry) {
  const std::string listed = R"({"chat_template": [{"name": "tool_use", "template": "T"},
                                                   {"name": "default", "template": "D"}]})";
  EXPECT_EQ(*codec(listed)->render_chat(user_says("x")), "D");
  EXPECT_EQ(*codec(listed, "J{{ messages | length }}")->render_chat(user_says("x")), "J1");
}

TEST(ModelTextCodec, KwargsAndToolsReachTheTemplateAndItsExceptionIsATemplateError) {
  const auto c = codec(
      R"({"chat_template": "{% if tools %}{{ tools | tojson }}{% endif %}{% if enable_thinking is false %}no-think{% endif %}{% if messages[0].content == 'bad' %}{{ raise_exception('bad turn') }}{% endif %}"})");
  ChatPrompt prompt = user_says("ok");
  prompt.tools = nlohmann::ordered_json::parse(R"([{"z": 1, "a": 2}])");
  prompt.template_kwargs = {{"enable_thinking", false}};
  EXPECT_EQ(*c->render_chat(prompt), R"([{"z": 1, "a": 2}]no-think)");
  auto refused = c->render_chat(user_says("bad"));
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().reason, "template_error");
  EXPECT_NE(refused.error().message.find("bad turn"), std::string::npos);
}

TEST(ModelTextCodec, ContinueFinalMessageCutsTheTextAfterTheLastMessage) {
  const auto c = codec(
      R"({"chat_template": "{% for m in messages %}<{{ m.role }}>{{ m.content }}</{{ m.role }}>\n{% endfor %}{% if add_generation_prompt %}<assistant>{% endif %}"})");
  ChatPrompt prompt;
  prompt.messages = nlohmann::ordered_json::parse(
      R"([{"role": "user", "content": "hi"}, {"role": "assistant", "content": "Hello, I "}])");
  prompt.continue_final_message = true;
  // The template kept the trailing space, so it stays.
  EXPECT_EQ(*c->render_chat(prompt), "<user>hi</user>\n<assistant>Hello, I ");
}

TEST(ModelTextCodec, AModelWithoutATemplateRefusesChat) {
  auto refused = codec("{}")->render_chat(user_says("hi"));
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().reason, "no_chat_template");
}

TEST(ModelTextCodec, OutputVocabularyIsTheReadableWordsOnly) {
  const auto words = codec("{}")->output_vocabulary();
  ASSERT_NE(words, nullptr);
  // Ġhe, Ġhel, Ġhell, Ġhello, Ġwo, Ġwor, Ġworl, Ġworld: a marker and 2..12 letters.
  EXPECT_EQ(*words, (std::vector<TokenId>{9, 10, 11, 12, 14, 15, 16, 17}));
}

TEST(ModelTextCodec, EncodeRefusesInvalidUtf8AsABadPrompt) {
  const auto c = codec("{}");
  EXPECT_EQ(*c->encode(" hello world", false), (std::vector<TokenId>{12, 17}));
  auto refused = c->encode("\xFF", false);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().reason, "bad_prompt");
}

TEST(ModelTextCodec, BadFilesAreErrorsNamingTheFile) {
  struct Case {
    std::string_view tokenizer, config;
    std::optional<std::string_view> jinja;
    std::string_view reason, words;
  };
  const Case cases[] = {
      {R"({"model": {"type": "Unigram"}})", "{}", {}, "unsupported", "tokenizer.json"},
      {kTokenizer, "[1]", {}, "bad_tokenizer_config", "tokenizer_config.json"},
      {kTokenizer, R"({"eos_token": 7})", {}, "bad_tokenizer_config", "eos_token"},
      {kTokenizer,
       R"({"chat_template": [{"name": "x", "template": "y"}]})",
       {},
       "bad_tokenizer_config",
       "default"},
      {kTokenizer, "{}", "{% for %}", "bad_template", "chat_template.jinja"},
  };
  for (const Case& c : cases) {
    auto made = make_model_text_codec({c.tokenizer, c.config, c.jinja});
    ASSERT_FALSE(made.ok()) << c.config;
    EXPECT_EQ(made.error().reason, c.reason) << made.error().message;
    EXPECT_NE(made.error().message.find(c.words), std::string::npos) << made.error().message;
  }
}

TEST(IncrementalDetokenizer, NeverReleasesHalfACharacterAndKeepsThePromptsSpacing) {
  const auto c = codec("{}");
  // Prompt " hello", output " world", then "é" as its two byte tokens, then " hello".
  const std::vector<TokenId> prompt = {12};
  IncrementalDetokenizer detokenizer(*c, prompt);
  EXPECT_EQ(detokenizer.push(std::vector<TokenId>{17}), " world");
  EXPECT_EQ(detokenizer.push(std::vector<TokenId>{18}), "");  // first byte of é: held
  EXPECT_EQ(detokenizer.push(std::vector<TokenId>{19}), "\xC3\xA9");
  EXPECT_EQ(detokenizer.push(std::vector<TokenId>{12}), " hello");
  EXPECT_EQ(detokenizer.finish(), "");
  // A character left incomplete at the end comes out as the decoder renders it (U+FFFD).
  IncrementalDetokenizer cut(*c, prompt);
  EXPECT_EQ(cut.push(std::vector<TokenId>{18}), "");
  EXPECT_EQ(cut.finish(), "\xEF\xBF\xBD");
}

}  // namespace
}  // namespace kvmock
