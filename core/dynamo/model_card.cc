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

}  // namespace

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
