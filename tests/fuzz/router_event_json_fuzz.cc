// Router-event JSON decoder: never crashes; whatever it accepts re-encodes (with every
// optional field written) to text that decodes to the same event and re-encodes to the
// same text.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "core/events/router_event_codec.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  auto first = kvmock::decode_router_event_json(input);
  if (!first.ok()) return 0;
  const kvmock::RouterEventFieldSet all{true, true};
  const std::string text = kvmock::encode_router_event_json(*first, all);
  auto second = kvmock::decode_router_event_json(text);
  if (!second.ok() || !(*second == *first)) abort();
  if (kvmock::encode_router_event_json(*second, all) != text) abort();
  return 0;
}
