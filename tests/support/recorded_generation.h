// What one request saw through its GenerationCallbacks, for worker and engine-actor tests.
#pragma once

#include <optional>
#include <vector>

#include "transport/http/worker_backend.h"

namespace kvmock::testing {

struct RecordedGeneration {
  std::vector<TokenId> tokens;
  std::optional<GenerationFinish> finish;

  // Callbacks that record into this object, which must outlive the request.
  GenerationCallbacks callbacks() {
    GenerationCallbacks callbacks;
    callbacks.on_tokens = [this](const std::vector<TokenId>& t) {
      tokens.insert(tokens.end(), t.begin(), t.end());
    };
    callbacks.on_finish = [this](const GenerationFinish& f) { finish = f; };
    return callbacks;
  }
};

}  // namespace kvmock::testing
