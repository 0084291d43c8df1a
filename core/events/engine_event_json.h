// Renders decoded engine events as JSON for people (kvmockd decode). Field names follow
// vLLM's own struct fields, so the output reads like the engine's source.
#pragma once

#include <string>

#include "core/events/engine_event.h"

namespace kvmock {

// One JSON object for event `index` of `batch`, with the batch's ts and dp_rank.
std::string engine_event_json(const EngineBatch& batch, size_t index);

}  // namespace kvmock
