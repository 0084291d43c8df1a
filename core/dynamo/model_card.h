// The model deployment card a Dynamo 1.0 worker registers under `v1/mdc/...`
// (docs/dynamo-discovery.md#model-card): the JSON the frontend deserializes to learn the
// served model name, where the tokenizer and config files are, the context length, the
// KV block size its router hashes with, and the worker's runtime capacities.
//
// Pure: the caller has already read the model directory (config/model_directory.h) and
// passes names and checksums; nothing here touches the filesystem.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/events/subjects.h"

namespace kvmock::dynamo {

// One file of the model directory as the card names it: the frontend opens
// `{directory}/{name}` on its own host, so both must be what the frontend can read.
struct ModelFile {
  std::string name;      // basename, e.g. "tokenizer.json"
  std::string checksum;  // "blake3:<64 lowercase hex>"
};

// The worker's capacities as the card's `runtime_config` carries them. Dynamo's router
// reads total_kv_blocks and data_parallel_size from here.
struct ModelRuntimeConfig {
  uint64_t total_kv_blocks = 0;
  // Written as null when unset, as Dynamo's mocker does unless given on its command line.
  std::optional<uint64_t> max_num_seqs;
  std::optional<uint64_t> max_num_batched_tokens;
  uint32_t data_parallel_size = 1;
  // On: the worker answers worker_kv_indexer_query_dp{r}, so the router recovers from it
  // instead of JetStream (docs/dynamo-discovery.md#model-card).
  bool enable_local_indexer = true;
};

// Everything the card says. Files are required except the two optional ones; a card
// without a tokenizer or config is useless to a frontend, so the types do not allow it.
struct ModelCardSpec {
  std::string display_name;  // the served model name (OpenAI `model`)
  std::string slug;          // slugify(display_name) unless a caller must copy another card
  std::string directory;     // absolute path of the model directory, no trailing '/'
  ModelFile config_json;
  ModelFile tokenizer_json;
  ModelFile tokenizer_config_json;
  std::optional<ModelFile> generation_config_json;
  std::optional<ModelFile> chat_template_jinja;
  uint32_t context_length = 0;
  uint32_t kv_cache_block_size = 0;  // must equal the block size of the worker's KV events
  uint32_t migration_limit = 0;
  // Chat as well as Completions: only when the directory has a chat template, because a
  // frontend that fails to build the chat pipeline drops the whole model.
  bool chat = false;
  ModelRuntimeConfig runtime_config;
};

// The card as compact JSON, fields in the order and shape Dynamo 1.0 serializes them
// (docs/dynamo-discovery.md#model-card). Integers are printed exactly.
std::string model_card_json(const ModelCardSpec& spec);

// Dynamo's slug of a name (docs/dynamo-discovery.md#slug): lower-cased, every character
// outside [a-z0-9_-] replaced by '_' (one per character, not per byte), then leading '_'
// removed. "/models/tiny" -> "models_tiny", "Qwen/Qwen3-0.6B" -> "qwen_qwen3-0_6b". The
// same rule names the JetStream stream, so it lives with the subjects.
using kvmock::slugify;

}  // namespace kvmock::dynamo
