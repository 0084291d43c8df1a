#include "config/model_directory.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <span>
#include <string_view>
#include <system_error>

#include "core/common/blake3.h"
#include "core/tokenizer/model_text_codec.h"

namespace kvmock {

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// The card carries context_length as a u32.
constexpr uint64_t kMaxContextLength = std::numeric_limits<uint32_t>::max();

// One file of the directory, read whole: its name and checksum for the card, its bytes
// for the fields read from it.
struct LoadedFile {
  dynamo::ModelFile file;
  std::string bytes;
};

std::string in_directory(const std::string& dir, std::string_view name) {
  return "model directory " + dir + ": " + std::string(name);
}

// The file `name` in `dir`, or nullopt when it does not exist.
Result<std::optional<LoadedFile>> load_file(const std::string& dir, std::string_view name) {
  const fs::path path = fs::path(dir) / name;
  std::error_code ec;
  const fs::file_status status = fs::status(path, ec);
  if (status.type() == fs::file_type::not_found) return std::optional<LoadedFile>{};
  if (ec || !fs::is_regular_file(status)) {
    return make_error("model_directory_unreadable",
                      in_directory(dir, name) + " is not a readable regular file");
  }
  std::ifstream in(path, std::ios::binary);
  std::string bytes;
  char buffer[1 << 16];
  while (in.read(buffer, sizeof buffer) || in.gcount() > 0) {
    bytes.append(buffer, static_cast<size_t>(in.gcount()));
  }
  if (!in.eof() || in.bad()) {
    return make_error("model_directory_unreadable", in_directory(dir, name) + " cannot be read");
  }
  const std::span<const uint8_t> content(reinterpret_cast<const uint8_t*>(bytes.data()),
                                         bytes.size());
  return std::optional<LoadedFile>(
      LoadedFile{dynamo::ModelFile{std::string(name), blake3_checksum(content)}, std::move(bytes)});
}

// A required file: its absence is the error, with `why` saying what depends on it.
Result<LoadedFile> load_required_file(const std::string& dir, std::string_view name,
                                      std::string_view why) {
  auto loaded = load_file(dir, name);
  if (!loaded.ok()) return loaded.error();
  if (!loaded->has_value()) {
    return make_error(
        "model_directory_missing_file",
        "model directory " + dir + " lacks " + std::string(name) + ", which " + std::string(why));
  }
  return std::move(**loaded);
}

// The file's JSON object; every Hugging Face config file is one.
Result<json> parse_object(const std::string& dir, const LoadedFile& loaded) {
  json parsed;
  try {
    parsed = json::parse(loaded.bytes);
  } catch (const json::parse_error& e) {
    return make_error("model_directory_bad_json", in_directory(dir, loaded.file.name) +
                                                      " is not valid JSON (" + e.what() + ")");
  }
  if (!parsed.is_object()) {
    return make_error("model_directory_bad_json",
                      in_directory(dir, loaded.file.name) + " is not a JSON object");
  }
  return parsed;
}

// `value` as a positive integer, or nullopt. A float counts when it holds a whole number
// (some configs write 2048.0).
std::optional<uint64_t> positive_integer(const json& value) {
  if (value.is_number_unsigned()) {
    const auto v = value.get<uint64_t>();
    return v > 0 ? std::optional<uint64_t>(v) : std::nullopt;
  }
  if (value.is_number_integer()) {
    const auto v = value.get<int64_t>();
    return v > 0 ? std::optional<uint64_t>(static_cast<uint64_t>(v)) : std::nullopt;
  }
  if (value.is_number_float()) {
    const double v = value.get<double>();
    // 2^64 as a double: anything at or above it does not fit.
    if (v >= 1.0 && v < 18446744073709551616.0 && std::floor(v) == v) {
      return static_cast<uint64_t>(v);
    }
  }
  return std::nullopt;
}

// max_position_embeddings when config.json has it (it must then be usable), else
// tokenizer_config.json's model_max_length when it is a plausible length: Hugging Face
// writes a huge number (about 1e30) there to mean "no limit".
Result<uint32_t> context_length(const std::string& dir, const json& config,
                                const json& tokenizer_config) {
  if (config.contains("max_position_embeddings")) {
    const auto v = positive_integer(config["max_position_embeddings"]);
    if (!v || *v > kMaxContextLength) {
      return make_error("model_directory_bad_field",
                        in_directory(dir, "config.json") +
                            " max_position_embeddings is not a positive integer below 2^32");
    }
    return static_cast<uint32_t>(*v);
  }
  if (tokenizer_config.contains("model_max_length")) {
    const auto v = positive_integer(tokenizer_config["model_max_length"]);
    if (v && *v <= kMaxContextLength) return static_cast<uint32_t>(*v);
  }
  return make_error("model_directory_missing_field",
                    "model directory " + dir +
                        " gives no context length: config.json lacks max_position_embeddings "
                        "and tokenizer_config.json has no usable model_max_length");
}

// eos_token_id as a number or a list of numbers; an absent or null field is no ids.
Result<std::vector<uint64_t>> eos_token_ids(const std::string& dir, std::string_view file,
                                            const json& object) {
  std::vector<uint64_t> ids;
  if (!object.contains("eos_token_id") || object["eos_token_id"].is_null()) return ids;
  const json& field = object["eos_token_id"];
  const auto bad = [&] {
    return make_error(
        "model_directory_bad_field",
        in_directory(dir, file) + " eos_token_id is neither a token id nor a list of token ids");
  };
  if (field.is_number_unsigned()) {
    ids.push_back(field.get<uint64_t>());
  } else if (field.is_array()) {
    for (const json& id : field) {
      if (!id.is_number_unsigned()) return bad();
      ids.push_back(id.get<uint64_t>());
    }
  } else {
    return bad();
  }
  return ids;
}

}  // namespace

Result<ModelDirectory> read_model_directory(const std::string& path) {
  std::error_code ec;
  const fs::path canonical = fs::canonical(path, ec);
  if (ec || !fs::is_directory(canonical, ec)) {
    return make_error("model_directory_missing",
                      "model directory " + path + " does not exist or is not a directory");
  }
  ModelDirectory dir;
  dir.path = canonical.string();

  auto config = load_required_file(dir.path, "config.json",
                                   "the Dynamo frontend needs for the model's architecture");
  if (!config.ok()) return config.error();
  auto tokenizer =
      load_required_file(dir.path, "tokenizer.json", "the Dynamo frontend needs to tokenize");
  if (!tokenizer.ok()) return tokenizer.error();
  auto tokenizer_config = load_required_file(dir.path, "tokenizer_config.json",
                                             "the Dynamo frontend needs to format prompts");
  if (!tokenizer_config.ok()) return tokenizer_config.error();
  auto generation_config = load_file(dir.path, "generation_config.json");
  if (!generation_config.ok()) return generation_config.error();
  auto chat_template = load_file(dir.path, "chat_template.jinja");
  if (!chat_template.ok()) return chat_template.error();

  auto config_object = parse_object(dir.path, *config);
  if (!config_object.ok()) return config_object.error();
  auto tokenizer_config_object = parse_object(dir.path, *tokenizer_config);
  if (!tokenizer_config_object.ok()) return tokenizer_config_object.error();

  auto length = context_length(dir.path, *config_object, *tokenizer_config_object);
  if (!length.ok()) return length.error();
  dir.context_length = *length;

  const auto vocab_size = config_object->contains("vocab_size")
                              ? positive_integer((*config_object)["vocab_size"])
                              : std::nullopt;
  if (!vocab_size) {
    return make_error("model_directory_missing_field",
                      in_directory(dir.path, "config.json") +
                          " lacks a positive vocab_size, which bounds the token ids kvmock "
                          "generates");
  }
  dir.vocab_size = *vocab_size;

  if (generation_config->has_value()) {
    auto generation_object = parse_object(dir.path, **generation_config);
    if (!generation_object.ok()) return generation_object.error();
    auto ids = eos_token_ids(dir.path, "generation_config.json", *generation_object);
    if (!ids.ok()) return ids.error();
    dir.eos_token_ids = std::move(*ids);
  }
  if (dir.eos_token_ids.empty()) {
    auto ids = eos_token_ids(dir.path, "config.json", *config_object);
    if (!ids.ok()) return ids.error();
    dir.eos_token_ids = std::move(*ids);
  }

  // Workers tokenize prompts and render chats with these files; a construct the tokenizer or
  // template engine does not support stops the start here, naming it. tokenizer.json (11 MB
  // for Qwen3, ~0.3 s to parse) is parsed only here; the frontend parses it too, so one that
  // is not JSON is reported as the other files are.
  ModelTextFiles text_files{tokenizer->bytes, tokenizer_config->bytes, std::nullopt};
  if (chat_template->has_value()) text_files.chat_template_jinja = (*chat_template)->bytes;
  auto codec = make_model_text_codec(text_files);
  if (!codec.ok()) {
    const bool not_json = codec.error().reason == "bad_json";
    return make_error(not_json ? "model_directory_bad_json" : "model_directory_unusable_tokenizer",
                      "model directory " + dir.path + ": " + codec.error().message);
  }
  dir.codec = std::move(*codec);

  const auto template_in_config = tokenizer_config_object->find("chat_template");
  dir.has_chat_template =
      chat_template->has_value() ||
      (template_in_config != tokenizer_config_object->end() && !template_in_config->is_null());

  dir.config_json = std::move(config->file);
  dir.tokenizer_json = std::move(tokenizer->file);
  dir.tokenizer_config_json = std::move(tokenizer_config->file);
  if (generation_config->has_value()) dir.generation_config_json = (*generation_config)->file;
  if (chat_template->has_value()) dir.chat_template_jinja = (*chat_template)->file;
  return dir;
}

dynamo::ModelCardSpec model_card_spec(const ModelDirectory& dir, std::string_view served_name,
                                      uint32_t kv_cache_block_size,
                                      const dynamo::ModelRuntimeConfig& runtime_config) {
  dynamo::ModelCardSpec spec;
  spec.display_name = std::string(served_name);
  spec.slug = dynamo::slugify(served_name);
  spec.directory = dir.path;
  spec.config_json = dir.config_json;
  spec.tokenizer_json = dir.tokenizer_json;
  spec.tokenizer_config_json = dir.tokenizer_config_json;
  spec.generation_config_json = dir.generation_config_json;
  spec.chat_template_jinja = dir.chat_template_jinja;
  spec.context_length = dir.context_length;
  spec.kv_cache_block_size = kv_cache_block_size;
  spec.chat = dir.has_chat_template;
  spec.runtime_config = runtime_config;
  return spec;
}

}  // namespace kvmock
