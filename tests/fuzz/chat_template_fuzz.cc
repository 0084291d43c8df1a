// Chat templates on outside bytes: the input as a template source (parsed, and rendered with
// a fixed context when it parses), and the input as a message's content rendered through a
// real-looking template. Never crashes, never hangs: the engine's bounds stop runaway work.
#include <cstdint>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "core/chat/chat_template.h"

namespace {

constexpr std::string_view kChatLikeTemplate =
    "{%- set ns = namespace(last=0) %}{%- for m in messages %}{%- if m.role == 'user' %}"
    "{%- set ns.last = loop.index0 %}{%- endif %}{%- endfor %}{%- for m in messages %}"
    "{%- if '</think>' in m.content %}{%- set c = m.content.split('</think>')[-1].lstrip('\\n') %}"
    "{%- else %}{%- set c = m.content %}{%- endif %}"
    "{{- '<|im_start|>' + m.role + '\\n' + c | trim + '<|im_end|>\\n' }}"
    "{%- if m.tool_calls %}{{ m.tool_calls | tojson(indent=2) }}{% endif %}{%- endfor %}"
    "{%- if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string input(reinterpret_cast<const char*>(data), size);
  const nlohmann::ordered_json context = {
      {"messages",
       {{{"role", "system"}, {"content", "sys"}}, {{"role", "user"}, {"content", "hi"}}}},
      {"add_generation_prompt", true},
      {"bos_token", "<s>"},
      {"tools", {{{"type", "function"}, {"function", {{"name", "f"}}}}}},
  };

  if (auto parsed = kvmock::ChatTemplate::parse(input); parsed.ok()) {
    (void)(*parsed)->render(context);
  }

  static auto chat = kvmock::ChatTemplate::parse(kChatLikeTemplate);
  if (!chat.ok()) abort();
  nlohmann::ordered_json with_content = context;
  with_content["messages"][1]["content"] =
      nlohmann::ordered_json(input).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  if (auto text = (*chat)->render(with_content); !text.ok()) abort();
  return 0;
}
