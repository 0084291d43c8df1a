// `workers.lora.modules`: the LoRA adapters every mock worker serves from the start, as
// vLLM's --lora-modules (docs/wire-formats.md#lora-adapters). The text is a comma-separated
// list; each entry is `name` (an adapter of the served model) or `name=base` (an adapter of
// `base`, one of the served names, which /v1/models reports as its parent). There are no
// weights to load, so no path.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "core/common/result.h"

namespace kvmock {

struct LoraModule {
  std::string name;
  std::string base;  // empty: the served model

  bool operator==(const LoraModule&) const = default;
};

// The entries of `text` in order, or an Error ("bad_value") naming the first bad entry: an
// empty name or base, a name given twice, or whitespace inside a name.
Result<std::vector<LoraModule>> parse_lora_modules(std::string_view text);

// The schema check of the key: "" when `text` parses, else the message.
std::string check_lora_modules(std::string_view text);

}  // namespace kvmock
