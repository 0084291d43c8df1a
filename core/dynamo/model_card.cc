#include "core/dynamo/model_card.h"

#include "core/events/json_writer.h"

namespace kvmock::dynamo {

namespace {

// `{"path":"<directory>/<name>","checksum":"blake3:..."}`: Dynamo's CheckedFile.
void write_checked_file(codec::JsonWriter& w, const std::string& directory, const ModelFile& file) {
  w.begin_map(2);
  w.key("path");
  // The root directory is the one path that already ends with '/'.
  w.str(directory.ends_with('/') ? directory + file.name : directory + "/" + file.name);
  w.key("checksum");
  w.str(file.checksum);
  w.end_map();
}

// A one-key object `{"<variant>":<CheckedFile>}`: how serde writes the card's file enums.
void write_file_variant(codec::JsonWriter& w, std::string_view variant,
                        const std::string& directory, const ModelFile& file) {
  w.begin_map(1);
  w.key(variant);
  write_checked_file(w, directory, file);
  w.end_map();
}

void write_runtime_config(codec::JsonWriter& w, const ModelRuntimeConfig& config) {
  w.begin_map(8);
  w.key("total_kv_blocks");
  w.u64(config.total_kv_blocks);
  w.key("max_num_seqs");
  w.optional_u64(config.max_num_seqs);
  w.key("max_num_batched_tokens");
  w.optional_u64(config.max_num_batched_tokens);
  // kvmock parses no tool calls or reasoning: the engine's output is token ids.
  w.key("tool_call_parser");
  w.null();
  w.key("reasoning_parser");
  w.null();
  // A kvmock worker owns all of its dp ranks, so they start at 0.
  w.key("data_parallel_start_rank");
  w.u64(0);
  w.key("data_parallel_size");
  w.u64(config.data_parallel_size);
  w.key("enable_local_indexer");
  w.boolean(config.enable_local_indexer);
  w.end_map();
}

// Length of the valid UTF-8 sequence at the front of `s` and its code point; 0 when the
// bytes are not valid UTF-8.
size_t decode_utf8(std::string_view s, uint32_t& code_point) {
  const auto byte = [&](size_t k) { return static_cast<uint8_t>(s[k]); };
  const uint8_t b0 = byte(0);
  size_t len = 0;
  uint32_t lo = 0x80;  // bounds of the second byte: no overlongs, surrogates, > U+10FFFF
  uint32_t hi = 0xbf;
  if (b0 >= 0xc2 && b0 <= 0xdf) {
    len = 2;
    code_point = b0 & 0x1f;
  } else if (b0 >= 0xe0 && b0 <= 0xef) {
    len = 3;
    code_point = b0 & 0x0f;
    if (b0 == 0xe0) lo = 0xa0;
    if (b0 == 0xed) hi = 0x9f;
  } else if (b0 >= 0xf0 && b0 <= 0xf4) {
    len = 4;
    code_point = b0 & 0x07;
    if (b0 == 0xf0) lo = 0x90;
    if (b0 == 0xf4) hi = 0x8f;
  } else {
    return 0;
  }
  if (s.size() < len || byte(1) < lo || byte(1) > hi) return 0;
  for (size_t k = 1; k < len; ++k) {
    if ((byte(k) & 0xc0) != 0x80) return 0;
    code_point = (code_point << 6) | (byte(k) & 0x3f);
  }
  return len;
}

bool is_slug_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

}  // namespace

std::string slugify(std::string_view name) {
  std::string out;
  out.reserve(name.size());
  size_t i = 0;
  while (i < name.size()) {
    char c = name[i];
    if (static_cast<uint8_t>(c) < 0x80) {
      if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
      out.push_back(is_slug_char(c) ? c : '_');
      ++i;
      continue;
    }
    // Dynamo lower-cases with Unicode rules before filtering, so exactly two non-ASCII
    // characters end up as ASCII letters: KELVIN SIGN becomes 'k', and CAPITAL I WITH DOT
    // ABOVE becomes 'i' plus a combining dot (which is then replaced). Every other
    // non-ASCII character is one '_'; a byte that is not valid UTF-8 is one '_' too.
    uint32_t code_point = 0;
    const size_t len = decode_utf8(name.substr(i), code_point);
    if (len == 0) {
      out.push_back('_');
      ++i;
      continue;
    }
    if (code_point == 0x212a) {
      out.push_back('k');
    } else if (code_point == 0x130) {
      out.append("i_");
    } else {
      out.push_back('_');
    }
    i += len;
  }
  const size_t first_kept = out.find_first_not_of('_');
  return first_kept == std::string::npos ? std::string() : out.substr(first_kept);
}

std::string model_card_json(const ModelCardSpec& spec) {
  std::string out;
  codec::JsonWriter w(out);
  w.begin_map(0);  // JsonWriter ignores the size, and the optional fields make it vary
  w.key("display_name");
  w.str(spec.display_name);
  w.key("slug");
  w.str(spec.slug);
  // source_path is left out, as Dynamo's Python mocker leaves it: the frontend falls back
  // to display_name only when it must download, and local files make that unnecessary.
  w.key("model_info");
  write_file_variant(w, "hf_config_json", spec.directory, spec.config_json);
  w.key("tokenizer");
  write_file_variant(w, "hf_tokenizer_json", spec.directory, spec.tokenizer_json);
  w.key("prompt_formatter");
  write_file_variant(w, "hf_tokenizer_config_json", spec.directory, spec.tokenizer_config_json);
  if (spec.chat_template_jinja) {
    // A template file found in the model directory, not one an operator supplied, hence
    // is_custom false (docs/dynamo-discovery.md#model-card marks this inferred).
    w.key("chat_template_file");
    w.begin_map(1);
    w.key("hf_chat_template");
    w.begin_map(2);
    w.key("is_custom");
    w.boolean(false);
    w.key("file");
    write_checked_file(w, spec.directory, *spec.chat_template_jinja);
    w.end_map();
    w.end_map();
  }
  if (spec.generation_config_json) {
    w.key("gen_config");
    write_file_variant(w, "hf_generation_config_json", spec.directory,
                       *spec.generation_config_json);
  }
  w.key("context_length");
  w.u64(spec.context_length);
  w.key("kv_cache_block_size");
  w.u64(spec.kv_cache_block_size);
  w.key("migration_limit");
  w.u64(spec.migration_limit);
  // bitflags' human-readable form: flag names in declaration order joined by " | ".
  w.key("model_type");
  w.str(spec.chat ? "Chat | Completions" : "Completions");
  // The worker takes token ids: the frontend tokenizes and detokenizes.
  w.key("model_input");
  w.str("Tokens");
  w.key("runtime_config");
  write_runtime_config(w, spec.runtime_config);
  // The mocker's card writes both as null; kvmock takes no images or other media.
  w.key("media_decoder");
  w.null();
  w.key("media_fetcher");
  w.null();
  w.end_map();
  return out;
}

}  // namespace kvmock::dynamo
