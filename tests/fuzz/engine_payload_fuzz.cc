// Fuzzes the engine KV-event payload decoder (core/events/engine_payload_codec.h).
//
// Any input: decoding must not crash, and a failure must carry one of the documented
// reasons. A decoded batch must survive encode -> decode: the re-encoding decodes, encodes
// to the same bytes again (the encoder's output is a fixed point), and decodes to the same
// batch, modulo what re-encoding drops by design (unknown events) or cannot keep in a
// batch that mixes positional and map events (each event's original shape).
// Decoding into one batch reused across inputs, as the relay does, must give exactly what
// a fresh decode gives, the same error included.
#include <bit>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <string_view>

#include "core/events/engine_payload_codec.h"

namespace {

using kvmock::EngineBatch;

bool known_reason(std::string_view reason) {
  for (std::string_view r : {"truncated", "msgpack", "too_deep", "trailing_bytes", "not_array",
                             "bad_batch", "bad_event", "bad_hash", "bad_tokens"}) {
    if (reason == r) return true;
  }
  return false;
}

// True when every event was decoded from the encoding the batch records, so re-encoding
// keeps each event's shape (positional_fields, cache-salt placement).
bool uniform_encoding(const EngineBatch& b) {
  const bool positional = b.encoding == kvmock::EngineEventEncoding::kPositional;
  for (const auto& ev : b.events) {
    if (const auto* s = std::get_if<kvmock::EngineBlockStored>(&ev)) {
      if ((s->positional_fields > 0) != positional) return false;
    } else if (const auto* r = std::get_if<kvmock::EngineBlockRemoved>(&ev)) {
      if ((r->positional_fields > 0) != positional) return false;
    }
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto first = kvmock::decode_engine_payload(std::span<const uint8_t>(data, size));
  static EngineBatch reused;  // what earlier inputs left behind
  const auto into = kvmock::decode_engine_payload(std::span<const uint8_t>(data, size), reused);
  if (into.ok() != first.ok()) std::abort();
  if (!first.ok() && (into.error().reason != first.error().reason ||
                      into.error().message != first.error().message)) {
    std::abort();
  }
  if (first.ok()) {
    // ts by bits (NaN != NaN), then everything else by EngineBatch's own ==.
    if (std::bit_cast<uint64_t>(reused.ts) != std::bit_cast<uint64_t>(first->ts)) std::abort();
    const double ts = first->ts;
    reused.ts = first->ts = 0;
    if (!(reused == *first)) std::abort();
    first->ts = ts;
  }
  if (!first.ok()) {
    if (!known_reason(first.error().reason) || first.error().message.empty()) std::abort();
    return 0;
  }
  const auto bytes = kvmock::reencode_engine_payload(*first);
  auto second = kvmock::decode_engine_payload(bytes);
  if (!second.ok()) std::abort();
  if (kvmock::reencode_engine_payload(*second) != bytes) std::abort();

  EngineBatch a = std::move(first).value();
  EngineBatch b = std::move(second).value();
  // Compare ts by bits (NaN != NaN), then drop what re-encoding does not carry.
  if (std::bit_cast<uint64_t>(a.ts) != std::bit_cast<uint64_t>(b.ts)) std::abort();
  a.ts = b.ts = 0;
  a.unknown_events = 0;
  if (uniform_encoding(a) && !(a == b)) std::abort();
  return 0;
}
