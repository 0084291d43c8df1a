// The normalizer stage of a Hugging Face tokenizer: rewrites the text between added
// tokens before it is split (Unicode forms, lowercasing, prepending, replacing,
// stripping). Built from the "normalizer" object of tokenizer.json; each type the
// reference library defines and this code does not implement is refused by name.
#pragma once

#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <string>

#include "core/common/result.h"

namespace kvmock::tokenizer {

class Normalizer {
 public:
  virtual ~Normalizer() = default;
  // `text` is valid UTF-8 and stays so.
  virtual Result<std::string> normalize(std::string text) const = 0;
};

// Errors: "unsupported" (type or option), "bad_tokenizer" (missing or mistyped field).
Result<std::unique_ptr<Normalizer>> make_normalizer(const nlohmann::json& spec);

}  // namespace kvmock::tokenizer
