// ChatTemplate: the lexer and parser run once in parse(), the renderer per request.
#include "core/chat/chat_template.h"

#include <utility>

#include "core/chat/template_lexer.h"
#include "core/chat/template_parser.h"
#include "core/chat/template_renderer.h"

namespace kvmock {

struct ChatTemplate::Impl {
  chat::NodeList program;
};

ChatTemplate::ChatTemplate(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ChatTemplate::~ChatTemplate() = default;

Result<std::unique_ptr<ChatTemplate>> ChatTemplate::parse(std::string_view source) {
  auto tokens = chat::tokenize_template(source);
  if (!tokens.ok()) return tokens.error();
  auto program = chat::parse_template(*tokens);
  if (!program.ok()) return program.error();
  auto impl = std::make_unique<Impl>();
  impl->program = std::move(*program);
  return std::unique_ptr<ChatTemplate>(new ChatTemplate(std::move(impl)));
}

Result<std::string> ChatTemplate::render(const nlohmann::ordered_json& context) const {
  return chat::render_template(impl_->program, context);
}

}  // namespace kvmock
