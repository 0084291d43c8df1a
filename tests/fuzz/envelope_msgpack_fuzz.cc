// Event-plane envelope decoder, then the payload decoders a subscriber would run on
// what it carries (router event, ActiveLoad): never crash; accepted values round-trip.
#include <cstdint>
#include <cstdlib>
#include <span>
#include <vector>

#include "core/events/active_load_codec.h"
#include "core/events/envelope_codec.h"
#include "core/events/router_event_codec.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto envelope = kvmock::decode_event_envelope_msgpack(std::span<const uint8_t>(data, size));
  if (!envelope.ok()) return 0;
  const std::vector<uint8_t> bytes = kvmock::encode_event_envelope_msgpack(*envelope);
  auto again = kvmock::decode_event_envelope_msgpack(bytes);
  if (!again.ok() || !(*again == *envelope)) abort();

  if (auto event = kvmock::decode_router_event_msgpack(envelope->payload); event.ok()) {
    auto event_again = kvmock::decode_router_event_msgpack(
        kvmock::encode_router_event_msgpack(*event, kvmock::RouterEventFieldSet{true, true}));
    if (!event_again.ok() || !(*event_again == *event)) abort();
  }
  if (auto load = kvmock::decode_active_load_msgpack(envelope->payload); load.ok()) {
    auto load_again = kvmock::decode_active_load_msgpack(kvmock::encode_active_load_msgpack(*load));
    if (!load_again.ok() || !(*load_again == *load)) abort();
    auto via_json = kvmock::decode_active_load_json(kvmock::encode_active_load_json(*load));
    if (!via_json.ok() || !(*via_json == *load)) abort();
  }
  return 0;
}
