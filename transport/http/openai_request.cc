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

// Pydantic's complaint for a field of the wrong type, as vLLM returns it (loc, msg, input).
Error wrong_type(std::string_view reason, const char* key, const char* expected,
                 const json& value) {
  return make_error(reason, std::string("1 validation error: {'type': '") + expected +
                                "_type', 'loc': ('body', '" + key + "'), 'msg': 'Input should be " +
                                "a valid " + expected + "', 'input': " + value.dump() + "}");
}

// A number-typed sampling field within [low, high] (open ends when the flags say so), or
// absent. The message is vLLM's SamplingParams check: "`what` must be ..., got X."
struct NumberRule {
  const char* key;
  std::string_view reason;
  double low;
  double high;
  bool low_open;
  const char* range;  // the rule as vLLM words it
};

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr NumberRule kNumberRules[] = {
    {"temperature", "bad_temperature", 0, kInf, false, "non-negative"},
    {"top_p", "bad_top_p", 0, 1, true, "in (0, 1]"},
    {"min_p", "bad_min_p", 0, 1, false, "in [0, 1]"},
    {"presence_penalty", "bad_presence_penalty", -2, 2, false, "in [-2, 2]"},
    {"frequency_penalty", "bad_frequency_penalty", -2, 2, false, "in [-2, 2]"},
    {"repetition_penalty", "bad_repetition_penalty", 0, kInf, true, "greater than zero"},
};

std::optional<Error> check_number_rules(const json& root) {
  for (const NumberRule& rule : kNumberRules) {
    const json* value = member(root, rule.key);
    if (value == nullptr) continue;
    if (!value->is_number()) return wrong_type(rule.reason, rule.key, "number", *value);
    const double x = value->get<double>();
    const bool below = rule.low_open ? x <= rule.low : x < rule.low;
    if (below || x > rule.high) {
      return make_error(rule.reason, std::string(rule.key) + " must be " + rule.range + ", got " +
                                         value->dump() + ".");
    }
  }
  if (const json* top_k = member(root, "top_k")) {
    if (!top_k->is_number_integer()) return wrong_type("bad_top_k", "top_k", "integer", *top_k);
    if (top_k->get<int64_t>() < -1) {
      return make_error("bad_top_k",
                        "top_k must be 0 (disable), or at least 1, got " + top_k->dump() + ".");
    }
  }
  return std::nullopt;
}

// A non-negative integer field that fits in T, or absent.
template <class T>
Result<std::optional<T>> optional_count(const json& root, const char* key,
                                        std::string_view reason) {
  const json* value = member(root, key);
  if (value == nullptr) return std::optional<T>();
  if (!value->is_number_integer()) return wrong_type(reason, key, "integer", *value);
  if (!value->is_number_unsigned() || value->get<uint64_t>() > std::numeric_limits<T>::max()) {
    return make_error(reason, std::string(key) + " must be between 0 and " +
                                  std::to_string(std::numeric_limits<T>::max()) + ", got " +
                                  value->dump() + ".");
  }
  return std::optional<T>(static_cast<T>(value->get<uint64_t>()));
}

Result<std::vector<TokenId>> token_ids(const json& list, std::string_view reason = "bad_prompt",
                                       std::string_view name = "prompt");

// `n` or `best_of`: at least 1, at most kMaxChoices.
Result<uint32_t> choice_count(const json& value, std::string_view reason, const char* name) {
  auto count = positive_u32(value, reason, name);
  if (!count) return count.error();
  if (*count > kMaxChoices) {
    return make_error(reason, std::string(name) + " must be at most " +
                                  std::to_string(kMaxChoices) + ", got " + value.dump() + ".");
  }
  return *count;
}

// Completions' `best_of`: vLLM's SamplingParams rule against `n`, and its refusal to stream
// sequences that would not all be returned.
std::optional<Error> parse_best_of(const json& root, ParsedRequest& out) {
  const json* best_of = member(root, "best_of");
  if (best_of == nullptr) return std::nullopt;
  auto count = choice_count(*best_of, "bad_best_of", "best_of");
  if (!count) return count.error();
  if (*count < out.n) {
    return make_error("bad_best_of",
                      "best_of must be greater than or equal to n, got n=" + std::to_string(out.n) +
                          " and best_of=" + std::to_string(*count) + ".");
  }
  if (*count != out.n && out.stream) {
    return make_error("bad_best_of", "best_of != n is not supported with streaming, got n=" +
                                         std::to_string(out.n) +
                                         " and best_of=" + std::to_string(*count) + ".");
  }
  out.best_of = *count;
  return std::nullopt;
}

// `stop`: a string or a list of strings; empty strings are dropped (they match nothing).
std::optional<Error> parse_stop(const json& root, ParsedRequest& out) {
  const json* stop = member(root, "stop");
  if (stop == nullptr) return std::nullopt;
  const auto add = [&](const json& item) {
    if (!item.get_ref<const std::string&>().empty()) out.stop.push_back(item.get<std::string>());
  };
  if (stop->is_string()) {
    add(*stop);
    return std::nullopt;
  }
  if (!stop->is_array()) return wrong_type("bad_stop", "stop", "string or list of strings", *stop);
  for (const json& item : *stop) {
    if (!item.is_string()) return wrong_type("bad_stop", "stop", "string", item);
    add(item);
  }
  return std::nullopt;
}

// The fields both endpoints share: model, stream and stream_options, n, the sampling
// parameters vLLM validates, the stop conditions, seed and data_parallel_rank.
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
    if (!out.stream) {
      return make_error("bad_stream_options",
                        "Stream options can only be defined when `stream=True`.");
    }
    auto usage = optional_bool(*options, "include_usage", "bad_stream_options");
    if (!usage) return usage.error();
    out.include_usage = *usage;
    auto continuous = optional_bool(*options, "continuous_usage_stats", "bad_stream_options");
    if (!continuous) return continuous.error();
    out.continuous_usage_stats = *continuous;
  }
  if (const json* n = member(root, "n")) {
    auto count = choice_count(*n, "bad_n", "n");
    if (!count) return count.error();
    out.n = *count;
  }
  out.best_of = out.n;
  if (auto error = check_number_rules(root)) return error;
  auto ignore_eos = optional_bool(root, "ignore_eos", "bad_ignore_eos");
  if (!ignore_eos) return ignore_eos.error();
  out.ignore_eos = *ignore_eos;
  auto include_stop =
      optional_bool(root, "include_stop_str_in_output", "bad_include_stop_str_in_output");
  if (!include_stop) return include_stop.error();
  out.include_stop_str_in_output = *include_stop;
  if (auto error = parse_stop(root, out)) return error;
  if (const json* ids = member(root, "stop_token_ids")) {
    if (!ids->is_array()) return wrong_type("bad_stop_token_ids", "stop_token_ids", "list", *ids);
    auto parsed = token_ids(*ids, "bad_stop_token_ids", "stop_token_ids");
    if (!parsed) return parsed.error();
    out.stop_token_ids = std::move(*parsed);
  }
  auto min_tokens = optional_count<uint32_t>(root, "min_tokens", "bad_min_tokens");
  if (!min_tokens) return min_tokens.error();
  out.min_tokens = min_tokens->value_or(0);
  if (const json* seed = member(root, "seed")) {
    if (!seed->is_number_integer()) return wrong_type("bad_seed", "seed", "integer", *seed);
    // Any 64-bit integer; a negative seed is used by its bits.
    out.seed = seed->is_number_unsigned() ? seed->get<uint64_t>()
                                          : static_cast<uint64_t>(seed->get<int64_t>());
  }
  auto rank = optional_count<uint32_t>(root, "data_parallel_rank", "bad_data_parallel_rank");
  if (!rank) return rank.error();
  out.data_parallel_rank = *rank;
  return std::nullopt;
}

// After max_tokens is known: vLLM's cross-field check.
std::optional<Error> check_min_tokens(const ParsedRequest& out) {
  if (out.max_tokens && out.min_tokens > *out.max_tokens) {
    return make_error("bad_min_tokens", "min_tokens must be less than or equal to max_tokens=" +
                                            std::to_string(*out.max_tokens) + ", got " +
                                            std::to_string(out.min_tokens) + ".");
  }
  return std::nullopt;
}

std::optional<Error> check_logprobs_limit(uint32_t requested, std::string_view reason) {
  if (requested <= kMaxLogprobs) return std::nullopt;
  return make_error(reason,
                    "Requested sample logprobs of " + std::to_string(requested) +
                        ", which is greater than max allowed: " + std::to_string(kMaxLogprobs));
}

Result<std::vector<TokenId>> token_ids(const json& list, std::string_view reason,
                                       std::string_view name) {
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
  if (auto error = parse_best_of(*root, out)) return std::move(*error);
  if (const json* max_tokens = member(*root, "max_tokens")) {
    auto n = positive_u32(*max_tokens, "bad_max_tokens", "max_tokens");
    if (!n) return n.error();
    out.max_tokens = *n;
  }
  if (auto error = check_min_tokens(out)) return std::move(*error);
  auto logprobs = optional_count<uint32_t>(*root, "logprobs", "bad_logprobs");
  if (!logprobs) return logprobs.error();
  if (*logprobs) {
    if (auto error = check_logprobs_limit(**logprobs, "bad_logprobs")) return std::move(*error);
  }
  out.logprobs = *logprobs;
  auto echo = optional_bool(*root, "echo", "bad_echo");
  if (!echo) return echo.error();
  auto prompt = completion_prompt(*root, codec, /*add_special_tokens=*/true);
  if (!prompt) return prompt.error();
  if (prompt->empty()) return make_error("bad_prompt", "prompt must not be empty");
  if (*echo) {
    // The prompt as the client wrote it; ids are shown as their text.
    const json& given = *member(*root, "prompt");
    const json& first = given.is_array() && !given.empty() ? given.front() : given;
    out.echo_text = first.is_string() ? first.get<std::string>()
                                      : codec.decode(*prompt, /*skip_special_tokens=*/false);
  }
  out.prompt = std::move(*prompt);
  return out;
}

namespace {

// A value of the JSON-schema `schema` (the first enum value, else one of its type); objects
// get every declared property, so a client's argument parser finds the required ones.
json value_for_schema(const json& schema, int depth) {
  if (!schema.is_object() || depth > 8) return "kvmock";
  if (const json* choices = member(schema, "enum");
      choices && choices->is_array() && !choices->empty()) {
    return choices->front();
  }
  const json* type = member(schema, "type");
  const std::string kind = type && type->is_string() ? type->get<std::string>() : "string";
  if (kind == "integer") return 1;
  if (kind == "number") return 1.5;
  if (kind == "boolean") return true;
  if (kind == "null") return nullptr;
  if (kind == "array") {
    const json* items = member(schema, "items");
    return json::array({items ? value_for_schema(*items, depth + 1) : json("kvmock")});
  }
  if (kind == "object") {
    json object = json::object();
    if (const json* properties = member(schema, "properties");
        properties && properties->is_object()) {
      for (const auto& [name, property] : properties->items()) {
        object[name] = value_for_schema(property, depth + 1);
      }
    }
    return object;
  }
  return "kvmock";
}

// tool_choice "required" (the first tool) or {"type":"function","function":{"name"}};
// "auto" and "none" let the mock answer in text.
Result<std::optional<ForcedToolCall>> forced_tool_call(const json& root) {
  const json* choice = member(root, "tool_choice");
  if (choice == nullptr) return std::optional<ForcedToolCall>();
  const json* tools = member(root, "tools");
  std::string wanted;
  if (choice->is_string()) {
    const std::string& mode = choice->get_ref<const std::string&>();
    if (mode == "auto" || mode == "none") return std::optional<ForcedToolCall>();
    if (mode != "required") {
      return make_error("bad_tool_choice",
                        "tool_choice must be \"none\", \"auto\", \"required\" or a named "
                        "function");
    }
  } else {
    const json* function = choice->is_object() ? member(*choice, "function") : nullptr;
    const json* name = function && function->is_object() ? member(*function, "name") : nullptr;
    if (name == nullptr || !name->is_string()) {
      return make_error(
          "bad_tool_choice",
          "a named tool_choice is {\"type\":\"function\",\"function\":{\"name\":...}}");
    }
    wanted = name->get<std::string>();
  }
  if (tools == nullptr || tools->empty()) {
    return make_error("bad_tool_choice", "When using `tool_choice`, `tools` must be set.");
  }
  for (const json& tool : *tools) {
    const json* function = tool.is_object() ? member(tool, "function") : nullptr;
    const json* name = function && function->is_object() ? member(*function, "name") : nullptr;
    if (name == nullptr || !name->is_string()) {
      return make_error("bad_tools", "each tool needs a function with a string name");
    }
    if (!wanted.empty() && *name != wanted) continue;
    const json* parameters = member(*function, "parameters");
    ForcedToolCall call;
    call.name = name->get<std::string>();
    call.arguments = (parameters ? value_for_schema(*parameters, 0) : json::object()).dump();
    return std::optional<ForcedToolCall>(std::move(call));
  }
  return make_error("bad_tool_choice", "Tool '" + wanted + "' has not been passed in `tools`.");
}

}  // namespace

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
  if (auto error = check_min_tokens(out)) return std::move(*error);
  auto logprobs = optional_bool(*root, "logprobs", "bad_logprobs");
  if (!logprobs) return logprobs.error();
  auto top = optional_count<uint32_t>(*root, "top_logprobs", "bad_top_logprobs");
  if (!top) return top.error();
  if (*top && !*logprobs) {
    return make_error("bad_top_logprobs",
                      "when using `top_logprobs`, `logprobs` must be set to true.");
  }
  if (*top) {
    if (auto error = check_logprobs_limit(**top, "bad_top_logprobs")) return std::move(*error);
  }
  if (*logprobs) out.logprobs = top->value_or(0);
  auto tool_call = forced_tool_call(*root);
  if (!tool_call) return tool_call.error();
  out.forced_tool_call = std::move(*tool_call);
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
  if (reason == "bad_json" || reason == "bad_chat_options") return "";
  // Every other parse error is named after its field: "bad_top_p" → "top_p".
  constexpr std::string_view kPrefix = "bad_";
  if (reason.substr(0, kPrefix.size()) == kPrefix) return reason.substr(kPrefix.size());
  return "";
}

}  // namespace kvmock
