// Requests for engine and scheduler tests.
#pragma once

#include <numeric>
#include <vector>

#include "core/engine/request.h"

namespace kvmock::testing {

// A prompt of `len` distinct tokens starting at `first`.
inline Request make_request(RequestId id, uint32_t len, uint32_t max_tokens, TokenId first = 1) {
  Request r;
  r.id = id;
  r.prompt.resize(len);
  std::iota(r.prompt.begin(), r.prompt.end(), first);
  r.max_tokens = max_tokens;
  return r;
}

// A prompt of `len` ids in [1000, 31000) that depend on (seed, position) only: prompts of
// different seeds share no block, so each one's blocks are new to a worker.
inline std::vector<TokenId> seeded_prompt(uint32_t seed, uint32_t len) {
  std::vector<TokenId> prompt;
  prompt.reserve(len);
  for (uint32_t i = 0; i < len; ++i) prompt.push_back(1000 + (seed * 7919 + i * 104729) % 30000);
  return prompt;
}

}  // namespace kvmock::testing
