// Feeds arbitrary bytes to the NATS generate intake's PreprocessedRequest parser: it must
// return a request or an Error, never crash, hang or read out of bounds.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "transport/nats/generate_intake.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto request = kvmock::parse_preprocessed_request(
      std::string_view(reinterpret_cast<const char*>(data), size));
  if (request && request->prompt.empty()) __builtin_trap();
  return 0;
}
