// Router-event msgpack decoder: never crashes; whatever it accepts re-encodes (with every
// optional field written) to bytes that decode to the same event and re-encode to the
// same bytes. The JSON codec must agree on the decoded event too.
#include <cstdint>
#include <cstdlib>
#include <span>
#include <vector>

#include "core/events/router_event_codec.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto first = kvmock::decode_router_event_msgpack(std::span<const uint8_t>(data, size));
  if (!first.ok()) return 0;
  const kvmock::RouterEventFieldSet all{true, true};
  const std::vector<uint8_t> bytes = kvmock::encode_router_event_msgpack(*first, all);
  auto second = kvmock::decode_router_event_msgpack(bytes);
  if (!second.ok() || !(*second == *first)) abort();
  if (kvmock::encode_router_event_msgpack(*second, all) != bytes) abort();
  auto via_json = kvmock::decode_router_event_json(kvmock::encode_router_event_json(*first, all));
  if (!via_json.ok() || !(*via_json == *first)) abort();
  return 0;
}
