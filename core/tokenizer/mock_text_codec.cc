// The TextCodec of workers that serve no real model: whitespace pieces and the mock chat
// template of mock_tokenizer.h.
#include "core/tokenizer/mock_tokenizer.h"
#include "core/tokenizer/text_codec.h"

namespace kvmock {
namespace {

class MockTextCodec final : public TextCodec {
 public:
  Result<std::vector<TokenId>> encode(std::string_view text, bool) const override {
    return mock_tokenize(text);
  }

  Result<std::string> render_chat(const ChatPrompt& prompt) const override {
    std::vector<ChatMessage> messages;
    messages.reserve(prompt.messages.size());
    for (const auto& message : prompt.messages) {
      ChatMessage parsed;
      if (const auto role = message.find("role"); role != message.end() && role->is_string()) {
        parsed.role = role->get<std::string>();
      }
      if (const auto content = message.find("content");
          content != message.end() && content->is_string()) {
        parsed.content = content->get<std::string>();
      }
      messages.push_back(std::move(parsed));
    }
    return kvmock::render_chat(messages);
  }

  std::string decode(std::span<const TokenId> ids, bool) const override { return mock_decode(ids); }

  std::optional<std::string> token_string(TokenId id) const override { return mock_token_text(id); }

  std::shared_ptr<const std::vector<TokenId>> output_vocabulary() const override { return nullptr; }

  // Mock words are joined by spaces whatever comes before them.
  size_t detokenize_context() const override { return 0; }
};

}  // namespace

std::shared_ptr<const TextCodec> make_mock_text_codec() {
  static const auto codec = std::make_shared<const MockTextCodec>();
  return codec;
}

}  // namespace kvmock
