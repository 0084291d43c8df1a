#include "transport/http/openai_request.h"

#include <limits>
#include <nlohmann/json.hpp>
#include <optional>

#include "core/events/codec_support.h"

namespace kvmock {
namespace {

// Ordered: message objects reach the chat template with the keys in the client's order.
using json = nlohmann::ordered_json;

Result<json> parse_object(std::string_view body) {
  auto parsed = codec::parse_ordered_json(body);  // bounded nesting, never throws
  if (!parsed) {
    return make_error("bad_json", parsed.error().reason == "too_deep"
                                      ? "request body nests too deeply"
                                      : "request body is not valid JSON");
  }
  json root = std::move(*parsed);
  if (!root.is_object()) return make_error("bad_json", "request body must be a JSON object");
  return root;
}

// The member `key`, or nullptr when absent or JSON null (OpenAI treats both as "unset").
const json* member(const json& object, const char* key) {
  const auto it = object.find(key);
  if (it == object.end() || it->is_null()) return nullptr;
  return &*it;
}

Result<uint32_t> positive_u32(const json& value, std::string_view reason, const char* name) {
  if (!value.is_number_integer()) {
    return make_error(reason, std::string(name) + " must be an integer");
  }
  if (value.is_number_unsigned()) {
    const uint64_t n = value.get<uint64_t>();
    if (n >= 1 && n <= std::numeric_limits<uint32_t>::max()) return static_cast<uint32_t>(n);
  }
  return make_error(reason, std::string(name) + " must be between 1 and 4294967295");
}

Result<bool> optional_bool(const json& object, const char* key, std::string_view reason,
                           bool fallback = false) {
  const json* value = member(object, key);
  if (value == nullptr) return fallback;
  if (!value->is_boolean()) return make_error(reason, std::string(key) + " must be a boolean");
  return value->get<bool>();
}

// "model": a string, or empty when absent.
Result<std::string> model_name(const json& root) {
  const json* model = member(root, "model");
  if (model == nullptr) return std::string();
  if (!model->is_string()) return make_error("bad_model", "model must be a string");
  return model->get<std::string>();
}

// The fields both endpoints share: model, stream, stream_options, n, ignore_eos (the
// last accepted and ignored: the mock always generates max_tokens).
std::optional<Error> parse_common(const json& root, ParsedRequest& out) {
  auto model = model_name(root);
  if (!model) return model.error();
  out.model = std::move(*model);
  auto stream = optional_bool(root, "stream", "bad_stream");
  if (!stream) return stream.error();
  out.stream = *stream;
  if (const json* options = member(root, "stream_options")) {
    if (!options->is_object()) {
      return make_error("bad_stream_options", "stream_options must be an object");
    }
    auto usage = optional_bool(*options, "include_usage", "bad_stream_options");
    if (!usage) return usage.error();
    out.include_usage = *usage;
  }
  if (const json* n = member(root, "n")) {
    auto count = positive_u32(*n, "bad_n", "n");
    if (!count) return count.error();
    if (*count != 1) return make_error("bad_n", "only n = 1 is supported");
  }
  auto ignore_eos = optional_bool(root, "ignore_eos", "bad_ignore_eos");
  if (!ignore_eos) return ignore_eos.error();
  return std::nullopt;
}

Result<std::vector<TokenId>> token_ids(const json& list, std::string_view reason = "bad_prompt",
                                       std::string_view name = "prompt") {
  std::vector<TokenId> ids;
  ids.reserve(list.size());
  for (const json& item : list) {
    if (!item.is_number_unsigned() || item.get<uint64_t>() > std::numeric_limits<TokenId>::max()) {
      return make_error(reason,
                        std::string(name) + " token ids must be integers between 0 and 4294967295");
    }
    ids.push_back(static_cast<TokenId>(item.get<uint64_t>()));
  }
  return ids;
}

Result<std::vector<TokenId>> completion_prompt(const json& root, const TextCodec& codec,
                                               bool add_special_tokens) {
  const json* prompt = member(root, "prompt");
  if (prompt == nullptr) return make_error("bad_prompt", "prompt is required");
  const auto encode = [&](const json& text) {
    return codec.encode(text.get_ref<const std::string&>(), add_special_tokens);
  };
  if (prompt->is_string()) return encode(*prompt);
  if (!prompt->is_array()) {
    return make_error("bad_prompt", "prompt must be a string or a list of token ids");
  }
  if (prompt->empty()) return std::vector<TokenId>{};
  const json& first = prompt->front();
  if (first.is_string() || first.is_array()) {
    // A batch: one string or one id list is fine, more is not.
    if (prompt->size() != 1) {
      return make_error("batch_prompt", "only one prompt per request is supported");
    }
    if (first.is_string()) return encode(first);
    return token_ids(first);
  }
  return token_ids(*prompt);
}

Result<std::string> message_content(const json& content) {
  if (content.is_string()) return content.get<std::string>();
  if (!content.is_array()) {
    return make_error("bad_messages", "message content must be a string or a list of parts");
  }
  std::string text;
  for (const json& part : content) {
    const json* type = part.is_object() ? member(part, "type") : nullptr;
    const json* part_text = part.is_object() ? member(part, "text") : nullptr;
    if (type == nullptr || *type != "text" || part_text == nullptr || !part_text->is_string()) {
      return make_error("bad_messages",
                        "only {\"type\":\"text\",\"text\":...} parts are supported");
    }
    if (!text.empty()) text += '\n';
    text += part_text->get_ref<const std::string&>();
  }
  return text;
}

// The messages as the template sees them: every field the client sent, content as text.
Result<json> chat_messages(const json& root) {
  const json* messages = member(root, "messages");
  if (messages == nullptr) return make_error("bad_messages", "messages is required");
  // An empty list is the template's business (vLLM renders it: a bare generation prompt).
  if (!messages->is_array()) return make_error("bad_messages", "messages must be a list");
  json out = json::array();
  for (const json& message : *messages) {
    if (!message.is_object()) return make_error("bad_messages", "each message must be an object");
    const json* role = member(message, "role");
    if (role == nullptr || !role->is_string() || role->get_ref<const std::string&>().empty()) {
      return make_error("bad_messages", "each message needs a non-empty string role");
    }
    json parsed = message;
    if (const json* content = member(message, "content")) {
      auto text = message_content(*content);
      if (!text) return text.error();
      parsed["content"] = std::move(*text);
    }
    out.push_back(std::move(parsed));
  }
  return out;
}

// The chat fields of vLLM's chat and tokenize requests, rendered by the codec's template and
// encoded. `add_special_default`: chat requests add none (the template wrote them).
Result<std::vector<TokenId>> chat_prompt(const json& root, const TextCodec& codec,
                                         std::string_view now, bool add_special_default) {
  ChatPrompt prompt;
  auto messages = chat_messages(root);
  if (!messages) return messages.error();
  prompt.messages = std::move(*messages);
  auto generation = optional_bool(root, "add_generation_prompt", "bad_chat_options", true);
  if (!generation) return generation.error();
  prompt.add_generation_prompt = *generation;
  auto continue_final = optional_bool(root, "continue_final_message", "bad_chat_options");
  if (!continue_final) return continue_final.error();
  prompt.continue_final_message = *continue_final;
  // vLLM's rule: add_generation_prompt defaults to true, so continuing asks for it off.
  if (prompt.continue_final_message && prompt.add_generation_prompt) {
    return make_error("bad_chat_options",
                      "Cannot set both `continue_final_message` and `add_generation_prompt` to "
                      "True.");
  }
  if (const json* tools = member(root, "tools")) {
    if (!tools->is_array()) return make_error("bad_tools", "tools must be a list");
    prompt.tools = *tools;
  }
  if (const json* kwargs = member(root, "chat_template_kwargs")) {
    if (!kwargs->is_object()) {
      return make_error("bad_chat_options", "chat_template_kwargs must be an object");
    }
    prompt.template_kwargs = *kwargs;
  }
  prompt.now = std::string(now);
  auto add_special =
      optional_bool(root, "add_special_tokens", "bad_chat_options", add_special_default);
  if (!add_special) return add_special.error();
  auto text = codec.render_chat(prompt);
  if (!text) return text.error();
  return codec.encode(*text, *add_special);
}

}  // namespace

Result<ParsedRequest> parse_completion_request(std::string_view body, const TextCodec& codec) {
  auto root = parse_object(body);
  if (!root) return root.error();
  ParsedRequest out;
  if (auto error = parse_common(*root, out)) return std::move(*error);
  if (const json* max_tokens = member(*root, "max_tokens")) {
    auto n = positive_u32(*max_tokens, "bad_max_tokens", "max_tokens");
    if (!n) return n.error();
    out.max_tokens = *n;
  }
  auto prompt = completion_prompt(*root, codec, /*add_special_tokens=*/true);
  if (!prompt) return prompt.error();
  if (prompt->empty()) return make_error("bad_prompt", "prompt must not be empty");
  out.prompt = std::move(*prompt);
  return out;
}

Result<ParsedRequest> parse_chat_request(std::string_view body, const TextCodec& codec,
                                         std::string_view now) {
  auto root = parse_object(body);
  if (!root) return root.error();
  ParsedRequest out;
  if (auto error = parse_common(*root, out)) return std::move(*error);
  // max_completion_tokens is the current name; max_tokens the deprecated one.
  for (const char* key : {"max_tokens", "max_completion_tokens"}) {
    if (const json* max_tokens = member(*root, key)) {
      auto n = positive_u32(*max_tokens, "bad_max_tokens", key);
      if (!n) return n.error();
      out.max_tokens = *n;
    }
  }
  auto prompt = chat_prompt(*root, codec, now, /*add_special_default=*/false);
  if (!prompt) return prompt.error();
  if (prompt->empty()) return make_error("bad_messages", "the rendered chat has no tokens");
  out.prompt = std::move(*prompt);
  return out;
}

Result<TokenizeRequest> parse_tokenize_request(std::string_view body, const TextCodec& codec,
                                               std::string_view now) {
  auto root = parse_object(body);
  if (!root) return root.error();
  TokenizeRequest out;
  auto model = model_name(*root);
  if (!model) return model.error();
  out.model = std::move(*model);
  auto token_strs = optional_bool(*root, "return_token_strs", "bad_return_token_strs");
  if (!token_strs) return token_strs.error();
  out.return_token_strs = *token_strs;
  Result<std::vector<TokenId>> tokens = std::vector<TokenId>{};
  if (member(*root, "messages") != nullptr) {
    tokens = chat_prompt(*root, codec, now, /*add_special_default=*/false);
  } else {
    auto add_special = optional_bool(*root, "add_special_tokens", "bad_add_special_tokens", true);
    if (!add_special) return add_special.error();
    tokens = completion_prompt(*root, codec, *add_special);
  }
  if (!tokens) return tokens.error();
  out.tokens = std::move(*tokens);
  return out;
}

Result<DetokenizeRequest> parse_detokenize_request(std::string_view body) {
  auto root = parse_object(body);
  if (!root) return root.error();
  DetokenizeRequest out;
  auto model = model_name(*root);
  if (!model) return model.error();
  out.model = std::move(*model);
  const json* tokens = member(*root, "tokens");
  if (tokens == nullptr || !tokens->is_array()) {
    return make_error("bad_tokens", "tokens must be a list of token ids");
  }
  auto ids = token_ids(*tokens, "bad_tokens", "tokens");
  if (!ids) return ids.error();
  out.tokens = std::move(*ids);
  return out;
}

std::string_view openai_error_param(std::string_view reason) {
  if (reason == "bad_prompt" || reason == "batch_prompt") return "prompt";
  if (reason == "bad_messages" || reason == "template_error" || reason == "no_chat_template") {
    return "messages";
  }
  if (reason == "bad_tools") return "tools";
  if (reason == "bad_tokens") return "tokens";
  if (reason == "bad_return_token_strs") return "return_token_strs";
  if (reason == "bad_add_special_tokens") return "add_special_tokens";
  if (reason == "bad_max_tokens") return "max_tokens";
  if (reason == "bad_stream") return "stream";
  if (reason == "bad_stream_options") return "stream_options";
  if (reason == "bad_model") return "model";
  if (reason == "bad_n") return "n";
  if (reason == "bad_ignore_eos") return "ignore_eos";
  return "";
}

}  // namespace kvmock
