// The chat-template engine against the reference renderer: every snippet in
// tests/data/chat_templates/snippets.json (made by tests/tools/tokenizer_goldens/
// jinja_snippets.mjs with @huggingface/jinja) renders to the same text here, or fails where
// the reference fails. Plus the error reasons and the bounds, which the reference lacks.
#include "core/chat/chat_template.h"

#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

namespace kvmock {
namespace {

nlohmann::ordered_json load_snippets() {
  std::ifstream in(KVMOCK_TEST_DATA_DIR "/chat_templates/snippets.json");
  std::stringstream buffer;
  buffer << in.rdbuf();
  return nlohmann::ordered_json::parse(buffer.str(), nullptr, false);
}

Result<std::string> render(std::string_view source, const nlohmann::ordered_json& context) {
  auto parsed = ChatTemplate::parse(source);
  if (!parsed.ok()) return parsed.error();
  return (*parsed)->render(context);
}

TEST(ChatTemplateSnippets, EverySnippetRendersLikeTheReference) {
  const auto snippets = load_snippets();
  ASSERT_FALSE(snippets.is_discarded());
  ASSERT_GE(snippets["cases"].size(), 50u);
  int checked = 0;
  for (const auto& c : snippets["cases"]) {
    SCOPED_TRACE(c["name"].get<std::string>() + ": " + c["template"].get<std::string>());
    const auto result = render(c["template"].get<std::string>(), c["context"]);
    if (c.contains("error")) {
      EXPECT_FALSE(result.ok());
    } else if (result.ok()) {
      EXPECT_EQ(*result, c["text"].get<std::string>());
    } else {
      ADD_FAILURE() << result.error().reason << ": " << result.error().message;
    }
    ++checked;
  }
  EXPECT_EQ(checked, static_cast<int>(snippets["cases"].size()));
}

TEST(ChatTemplate, AnUnknownTagIsABadTemplateNamingTheLine) {
  auto parsed = ChatTemplate::parse("line one\n{% frobnicate %}");
  ASSERT_FALSE(parsed.ok());
  EXPECT_EQ(parsed.error().reason, "bad_template");
  EXPECT_NE(parsed.error().message.find("line 2"), std::string::npos) << parsed.error().message;
  EXPECT_NE(parsed.error().message.find("frobnicate"), std::string::npos);
}

TEST(ChatTemplate, AnUnclosedBlockIsABadTemplateNamingItsOpener) {
  auto parsed = ChatTemplate::parse("{% for m in messages %}\n{{ m }}");
  ASSERT_FALSE(parsed.ok());
  EXPECT_EQ(parsed.error().reason, "bad_template");
  EXPECT_NE(parsed.error().message.find("line 1"), std::string::npos) << parsed.error().message;
  EXPECT_NE(parsed.error().message.find("for"), std::string::npos);
}

TEST(ChatTemplate, RaiseExceptionIsATemplateErrorWithItsMessage) {
  auto result = render("{{ raise_exception('Conversation roles must alternate') }}", {});
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().reason, "template_error");
  EXPECT_EQ(result.error().message, "Conversation roles must alternate");
}

TEST(ChatTemplate, UnboundedMacroRecursionIsATemplateError) {
  auto result = render("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}", {});
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().reason, "template_error");
}

TEST(ChatTemplate, DeeplyNestedParenthesesAreABadTemplate) {
  const std::string source = "{{ " + std::string(5000, '(') + "1" + std::string(5000, ')') + " }}";
  auto parsed = ChatTemplate::parse(source);
  ASSERT_FALSE(parsed.ok());
  EXPECT_EQ(parsed.error().reason, "bad_template");
}

TEST(ChatTemplate, ExponentialOutputStopsAtTheBound) {
  auto result = render(
      "{% set s = namespace(v='xxxxxxxxxxxxxxxx') %}{% for i in range(60) %}{% set s.v = s.v ~ s.v "
      "%}{% endfor %}"
      "{{ s.v }}",
      {});
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().reason, "template_error");
}

TEST(ChatTemplate, LongLoopsStopAtTheStepBound) {
  auto result = render(
      "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}", {});
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().reason, "template_error");
}

TEST(ChatTemplate, StrftimeNowRendersTheDateTheCallerPasses) {
  auto result =
      render("{{ strftime_now('%d %b %Y %H:%M') }}", {{"kvmock_now", "2024-07-26T13:05"}});
  ASSERT_TRUE(result.ok()) << result.error().message;
  EXPECT_EQ(*result, "26 Jul 2024 13:05");
}

TEST(ChatTemplate, TojsonKeepsTheKeyOrderOfTheContext) {
  auto context = nlohmann::ordered_json::parse(R"({"d":{"zeta":1,"alpha":2}})");
  auto result = render("{{ d | tojson }}", context);
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(*result, R"({"zeta": 1, "alpha": 2})");
}

TEST(ChatTemplate, AContextNamingABuiltinIsATemplateErrorLikeTheReference) {
  auto result = render("x", {{"namespace", 1}});
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().reason, "template_error");
}

TEST(ChatTemplate, TheTinyTemplatesOfTheTestModelDirsRender) {
  auto result =
      render("{% for message in messages %}{{ message['content'] }} {% endfor %}",
             {{"messages",
               {{{"role", "user"}, {"content", "a"}}, {{"role", "assistant"}, {"content", "b"}}}}});
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(*result, "a b ");
}

}  // namespace
}  // namespace kvmock
