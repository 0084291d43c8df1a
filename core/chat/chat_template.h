// A model's Jinja chat template (tokenizer_config.json "chat_template" or
// chat_template.jinja), parsed once and rendered per request with the messages, so a chat
// prompt becomes the same text the real model's server would tokenize. The engine is a
// compact interpreter of the Jinja subset real chat templates use (docs/chat-templates.md),
// producing exactly what the reference renderers (Python jinja2 as transformers configures
// it, and @huggingface/jinja) produce for them.
//
// Pure: no I/O, no clock (strftime_now renders a date given by the caller).
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "core/common/result.h"

namespace kvmock {

class ChatTemplate {
 public:
  // Parses `source`. Error "bad_template" naming the line and what was wrong (unknown tag,
  // unclosed block, unsupported construct).
  static Result<std::unique_ptr<ChatTemplate>> parse(std::string_view source);

  ~ChatTemplate();
  ChatTemplate(const ChatTemplate&) = delete;
  ChatTemplate& operator=(const ChatTemplate&) = delete;

  // Renders with `context` as the template's variables: "messages", "add_generation_prompt",
  // "bos_token", "eos_token", "tools", and whatever else the caller passes (for example
  // "enable_thinking"). Ordered JSON because tojson prints keys in the order the request gave
  // them (a plain nlohmann::json converts implicitly, keys then sorted). strftime_now() renders
  // the date in "kvmock_now" ("YYYY-MM-DDTHH:MM"; 1970-01-01T00:00 when absent). Error
  // "template_error" with the template's own message for raise_exception(...), and for a runtime
  // failure (calling a non-function, a filter on a wrong type, too deep recursion, output over a
  // size bound).
  Result<std::string> render(const nlohmann::ordered_json& context) const;

 private:
  struct Impl;
  explicit ChatTemplate(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace kvmock
