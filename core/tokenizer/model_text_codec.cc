#include "core/tokenizer/model_text_codec.h"

#include <nlohmann/json.hpp>
#include <string>

#include "core/chat/chat_template.h"
#include "core/tokenizer/hf_tokenizer.h"

namespace kvmock {
namespace {

using nlohmann::ordered_json;

constexpr std::string_view kWhitespace = " \t\n\r\f\v";

Error config_error(std::string message) {
  return make_error("bad_tokenizer_config", "tokenizer_config.json: " + std::move(message));
}

// bos_token/eos_token: a string, an AddedToken object {"content": ...}, or null/absent.
Result<ordered_json> special_token_text(const ordered_json& config, const char* key) {
  const auto found = config.find(key);
  if (found == config.end() || found->is_null()) return ordered_json(nullptr);
  if (found->is_string()) return *found;
  if (found->is_object()) {
    const auto content = found->find("content");
    if (content != found->end() && content->is_string()) return *content;
  }
  return config_error(std::string(key) + " must be a string or an object with a string content");
}

// "chat_template": one template, or a list of {"name","template"} from which the one named
// "default" is used (transformers' rule when no name is asked for). nullopt: none.
Result<std::optional<std::string>> config_chat_template(const ordered_json& config) {
  const auto found = config.find("chat_template");
  if (found == config.end() || found->is_null()) return std::optional<std::string>{};
  if (found->is_string()) return std::optional<std::string>(found->get<std::string>());
  if (found->is_array()) {
    for (const auto& entry : *found) {
      if (!entry.is_object()) break;
      const auto name = entry.find("name");
      const auto text = entry.find("template");
      if (name == entry.end() || text == entry.end() || !name->is_string() || !text->is_string()) {
        break;
      }
      if (*name == "default") return std::optional<std::string>(text->get<std::string>());
    }
    return config_error(
        "chat_template is a list without a {\"name\": \"default\", \"template\"} entry");
  }
  return config_error("chat_template must be a string or a list of named templates");
}

std::string_view trim(std::string_view text, bool left, bool right) {
  if (left) {
    const size_t first = text.find_first_not_of(kWhitespace);
    text.remove_prefix(first == std::string_view::npos ? text.size() : first);
  }
  if (right) {
    const size_t last = text.find_last_not_of(kWhitespace);
    text = text.substr(0, last == std::string_view::npos ? 0 : last + 1);
  }
  return text;
}

// A vocabulary entry a mock may generate: a word piece that starts a word ("Ġ" of byte-level
// BPE, "▁" of SentencePiece-style files) followed by 2 to 12 ASCII letters, so the output
// reads as space-separated words whatever the model.
bool is_readable_word(std::string_view piece) {
  for (std::string_view marker : {std::string_view("\xC4\xA0"), std::string_view("\xE2\x96\x81")}) {
    if (piece.substr(0, marker.size()) != marker) continue;
    const std::string_view word = piece.substr(marker.size());
    if (word.size() < 2 || word.size() > 12) return false;
    for (char c : word) {
      if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))) return false;
    }
    return true;
  }
  return false;
}

class ModelTextCodec final : public TextCodec {
 public:
  ModelTextCodec(std::unique_ptr<HfTokenizer> tokenizer, std::unique_ptr<ChatTemplate> chat,
                 ordered_json bos_token, ordered_json eos_token)
      : tokenizer_(std::move(tokenizer)),
        chat_(std::move(chat)),
        bos_token_(std::move(bos_token)),
        eos_token_(std::move(eos_token)) {
    auto words = std::make_shared<std::vector<TokenId>>();
    for (TokenId id = 0; id < tokenizer_->vocab_size(); ++id) {
      if (tokenizer_->is_special(id)) continue;
      const auto piece = tokenizer_->id_to_token(id);
      if (piece && is_readable_word(*piece)) words->push_back(id);
    }
    if (!words->empty()) output_vocabulary_ = std::move(words);
  }

  Result<std::vector<TokenId>> encode(std::string_view text, bool add_special) const override {
    auto ids = tokenizer_->encode(text, add_special);
    if (!ids) return make_error("bad_prompt", ids.error().message);
    return ids;
  }

  Result<std::string> render_chat(const ChatPrompt& prompt) const override {
    if (!chat_) {
      // vLLM's words when a model has no template and none is given.
      return make_error("no_chat_template",
                        "As of transformers v4.44, default chat template is no longer allowed, so "
                        "you must provide a chat template if the tokenizer does not define one.");
    }
    ordered_json context;
    context["messages"] = prompt.messages;
    if (!prompt.tools.is_null()) context["tools"] = prompt.tools;
    // continue_final_message renders the last message open: no generation prompt after it.
    context["add_generation_prompt"] =
        prompt.add_generation_prompt && !prompt.continue_final_message;
    context["bos_token"] = bos_token_;
    context["eos_token"] = eos_token_;
    context["kvmock_now"] = prompt.now;
    if (prompt.template_kwargs.is_object()) {
      for (const auto& [key, value] : prompt.template_kwargs.items()) context[key] = value;
    }
    auto text = chat_->render(context);
    if (!text || !prompt.continue_final_message) return text;
    return cut_after_final_message(std::move(*text), prompt.messages);
  }

  std::string decode(std::span<const TokenId> ids, bool skip_special) const override {
    return tokenizer_->decode(ids, skip_special);
  }

  std::optional<std::string> token_string(TokenId id) const override {
    return tokenizer_->id_to_token(id);
  }

  std::shared_ptr<const std::vector<TokenId>> output_vocabulary() const override {
    return output_vocabulary_;
  }

  size_t detokenize_context() const override { return 5; }

 private:
  // transformers' continue_final_message: the text ends where the final message's content
  // ends (its trailing whitespace kept only when the template kept it too).
  static Result<std::string> cut_after_final_message(std::string text,
                                                     const ordered_json& messages) {
    const ordered_json* content = nullptr;
    if (messages.is_array() && !messages.empty() && messages.back().is_object()) {
      const auto found = messages.back().find("content");
      if (found != messages.back().end() && found->is_string()) content = &*found;
    }
    if (content == nullptr) {
      return make_error("template_error",
                        "continue_final_message needs a final message with text content");
    }
    const std::string_view final_text = content->get_ref<const std::string&>();
    const std::string_view stripped = trim(final_text, true, true);
    const size_t at = text.rfind(stripped);
    if (at == std::string::npos) {
      return make_error("template_error",
                        "continue_final_message is set but the final message does not appear in "
                        "the chat after applying the chat template");
    }
    const std::string_view left_trimmed = trim(final_text, true, false);
    const bool kept_whole = text.compare(at, left_trimmed.size(), left_trimmed) == 0;
    text.resize(at + (kept_whole ? left_trimmed.size() : stripped.size()));
    return text;
  }

  const std::unique_ptr<HfTokenizer> tokenizer_;
  const std::unique_ptr<ChatTemplate> chat_;  // null: the model has no chat template
  const ordered_json bos_token_;
  const ordered_json eos_token_;
  std::shared_ptr<const std::vector<TokenId>> output_vocabulary_;
};

}  // namespace

Result<std::shared_ptr<const TextCodec>> make_model_text_codec(const ModelTextFiles& files) {
  auto tokenizer = HfTokenizer::from_json(files.tokenizer_json);
  if (!tokenizer) {
    return make_error(tokenizer.error().reason, "tokenizer.json: " + tokenizer.error().message);
  }
  const ordered_json config = ordered_json::parse(files.tokenizer_config_json, nullptr, false);
  if (config.is_discarded() || !config.is_object()) {
    return config_error("not a JSON object");
  }
  auto bos = special_token_text(config, "bos_token");
  if (!bos) return bos.error();
  auto eos = special_token_text(config, "eos_token");
  if (!eos) return eos.error();
  std::optional<std::string> source;
  if (files.chat_template_jinja) {
    source = std::string(*files.chat_template_jinja);
  } else {
    auto from_config = config_chat_template(config);
    if (!from_config) return from_config.error();
    source = std::move(*from_config);
  }
  std::unique_ptr<ChatTemplate> chat;
  if (source) {
    auto parsed = ChatTemplate::parse(*source);
    if (!parsed) {
      return make_error("bad_template", (files.chat_template_jinja ? "chat_template.jinja: "
                                                                   : "tokenizer_config.json "
                                                                     "chat_template: ") +
                                            parsed.error().message);
    }
    chat = std::move(*parsed);
  }
  return std::shared_ptr<const TextCodec>(std::make_shared<const ModelTextCodec>(
      std::move(*tokenizer), std::move(chat), std::move(*bos), std::move(*eos)));
}

}  // namespace kvmock
