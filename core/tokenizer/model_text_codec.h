// The TextCodec of a worker that serves a real model (workers.model.path): the model's
// tokenizer.json, the chat template of its tokenizer_config.json or chat_template.jinja, and
// the special tokens the template is given. Built once at start from the files' text (the
// caller reads them); docs/tokenizers.md says what is supported.
#pragma once

#include <memory>
#include <optional>
#include <string_view>

#include "core/common/result.h"
#include "core/tokenizer/text_codec.h"

namespace kvmock {

struct ModelTextFiles {
  std::string_view tokenizer_json;
  std::string_view tokenizer_config_json;
  // chat_template.jinja when the directory has one: it wins over tokenizer_config.json's
  // "chat_template", as in transformers.
  std::optional<std::string_view> chat_template_jinja;
};

// Errors name the file: "bad_json"/"unsupported"/"bad_tokenizer" (tokenizer.json, from
// HfTokenizer), "bad_tokenizer_config" (tokenizer_config.json not an object, or a
// chat_template/bos_token/eos_token of the wrong shape), "bad_template" (the chat template
// does not parse).
Result<std::shared_ptr<const TextCodec>> make_model_text_codec(const ModelTextFiles& files);

}  // namespace kvmock
