#include "transport/http/lora_endpoints.h"

#include <nlohmann/json.hpp>

#include "transport/http/openai_errors.h"

namespace kvmock {
namespace {

constexpr std::string_view kPlainText = "text/plain; charset=utf-8";

Result<bool> read_string_field(const nlohmann::json& root, const char* field, std::string* out) {
  auto it = root.find(field);
  if (it == root.end() || it->is_null()) return true;
  if (!it->is_string()) {
    return make_error("bad_request", std::string(field) + " must be a string");
  }
  *out = it->get<std::string>();
  return true;
}

}  // namespace

Result<LoraAdapterBody> parse_lora_adapter_body(std::string_view body) {
  const nlohmann::json root = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (root.is_discarded() || !root.is_object()) {
    return make_error("bad_request", "the body must be a JSON object");
  }
  LoraAdapterBody parsed;
  if (auto ok = read_string_field(root, "lora_name", &parsed.lora_name); !ok) return ok.error();
  if (auto ok = read_string_field(root, "lora_path", &parsed.lora_path); !ok) return ok.error();
  return parsed;
}

void serve_lora_endpoint(HttpExchange& exchange, LoraAdapters& adapters,
                         const std::map<std::string, std::string>& headers) {
  const auto fail = [&](const Error& error) {
    const int status = error.reason == "not_found" ? 404 : 400;
    exchange.respond(status, "application/json",
                     openai_error_json(status, error.message, error.reason, {}).dump(), headers);
  };
  auto body = parse_lora_adapter_body(exchange.request().body);
  if (!body) return fail(body.error());
  const bool load = exchange.request().path() == kLoadLoraAdapterPath;
  auto changed =
      load ? adapters.load(body->lora_name, body->lora_path) : adapters.unload(body->lora_name);
  if (!changed) return fail(changed.error());
  // vLLM answers with a bare text line.
  exchange.respond(200, std::string(kPlainText),
                   "Success: LoRA adapter '" + changed->name + "' " + (load ? "added" : "removed") +
                       " successfully.",
                   headers);
}

}  // namespace kvmock
