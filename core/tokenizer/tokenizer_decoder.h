// The decoder stage of a Hugging Face tokenizer: turns the token strings of some ids back
// into text (undoing the byte-level mapping, <0xNN> byte tokens, the Metaspace marker...).
// Each decoder maps a list of token strings to a new list, as the reference chains them;
// the final text is the concatenation. Built from the "decoder" object of tokenizer.json;
// unimplemented types are refused by name.
#pragma once

#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "core/common/result.h"

namespace kvmock::tokenizer {

class TokenDecoder {
 public:
  virtual ~TokenDecoder() = default;
  virtual std::vector<std::string> decode_chain(std::vector<std::string> tokens) const = 0;
};

// Errors: "unsupported" (type or option), "bad_tokenizer" (missing or mistyped field).
Result<std::unique_ptr<TokenDecoder>> make_decoder(const nlohmann::json& spec);

}  // namespace kvmock::tokenizer
