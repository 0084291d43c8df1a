// Arbitrary bytes as a config file: parse_config must return a Config or an Error naming
// the problem (the daemon's exit 2), never throw, crash or hang — yaml-cpp throws on bad
// YAML and on nesting too deep, and the loader must turn both into errors.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "config/config_loader.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto config = kvmock::parse_config(text, "fuzz.yaml", {}, {});
  if (!config.ok() && config.error().message.empty()) __builtin_trap();
  return 0;
}
