// One request of a workload, with when it is due (docs/ARCHITECTURE.md#offline-replay).
// Trace parsers and the synthetic generator produce these; offline replay and the live
// load driver consume them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

#include "core/tokens/block_hash.h"

namespace kvmock {

struct WorkloadRequest {
  // When the request arrives, in ms from the start of the run (the first arrival is at
  // 0). Ignored for a later turn of a session (see `after`) and in closed-loop runs,
  // where a request arrives when it is dispatched.
  double arrival_ms = 0;
  std::vector<TokenId> prompt;
  uint32_t max_tokens = 0;  // output length
  // Later turn of a multi-turn session: the index (in the workload) of the previous turn;
  // this one is released `delay_ms` after that one finishes. nullopt for a first turn.
  std::optional<size_t> after;
  double delay_ms = 0;
};

}  // namespace kvmock
