// A Hugging Face model directory named by the config (workers.model.path), read once at
// start: the files a Dynamo frontend loads (docs/dynamo-discovery.md#model-directory) with
// their checksums for the model card, and the few facts the mock engine needs from them
// (context length, vocabulary size, EOS ids, whether chat is possible), and the model's
// tokenizer and chat template (docs/tokenizers.md).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/common/result.h"
#include "core/dynamo/model_card.h"
#include "core/tokenizer/text_codec.h"

namespace kvmock {

struct ModelDirectory {
  // Absolute and canonical: the card's file paths are `{path}/{name}`, opened by the
  // frontend on its own host.
  std::string path;
  dynamo::ModelFile config_json;
  dynamo::ModelFile tokenizer_json;
  dynamo::ModelFile tokenizer_config_json;
  std::optional<dynamo::ModelFile> generation_config_json;
  std::optional<dynamo::ModelFile> chat_template_jinja;
  // config.json max_position_embeddings, else tokenizer_config.json model_max_length.
  uint32_t context_length = 0;
  // config.json vocab_size: generated ids stay below it so the frontend can detokenize.
  uint64_t vocab_size = 0;
  // generation_config.json eos_token_id, else config.json's; empty when neither has one.
  std::vector<uint64_t> eos_token_ids;
  // chat_template.jinja exists or tokenizer_config.json has a chat_template.
  bool has_chat_template = false;
  // The model's tokenizer and chat template, as the workers use them (never null).
  std::shared_ptr<const TextCodec> codec;
};

// Reads the directory at `path`: config.json, tokenizer.json and tokenizer_config.json are
// required, generation_config.json and chat_template.jinja optional; each present file is
// hashed whole (blake3). An error names the directory, the file, and what is missing or
// wrong, e.g. "model directory /x lacks tokenizer.json, which the Dynamo frontend needs to
// tokenize". Reads files; call at start, not on a hot path.
Result<ModelDirectory> read_model_directory(const std::string& path);

// The model card that serves `dir` as `served_name`: the directory's files and context
// length, slugify(served_name), Chat as well as Completions when the directory has a chat
// template, and the worker's own block size and capacities.
dynamo::ModelCardSpec model_card_spec(const ModelDirectory& dir, std::string_view served_name,
                                      uint32_t kv_cache_block_size,
                                      const dynamo::ModelRuntimeConfig& runtime_config);

}  // namespace kvmock
