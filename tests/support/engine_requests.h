// Requests for engine and scheduler tests.
#pragma once

#include <numeric>

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

}  // namespace kvmock::testing
