#include "core/common/ports.h"

#include <string>

namespace kvmock {

Result<uint16_t> port_for_index(uint32_t base_port, uint64_t index) {
  if (base_port == 0) return uint16_t{0};
  const uint64_t port = uint64_t{base_port} + index;
  if (index > 65535 || port > 65535) {
    return make_error("bad_port", "port " + std::to_string(base_port) + " + " +
                                      std::to_string(index) + " exceeds 65535");
  }
  return static_cast<uint16_t>(port);
}

}  // namespace kvmock
