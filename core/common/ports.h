// Port ranges: the one place that numbers the sockets of a range of listeners. Config
// checks the mock workers' ZMQ ranges with it, the daemon binds them with it, and the
// relay offsets a real engine's dp-rank endpoints with it (vLLM's offset_endpoint_port).
#pragma once

#include <cstdint>

#include "core/common/result.h"

namespace kvmock {

// The port of slot `index` in a range starting at `base_port`: base + index, or 0 when
// base is 0 (ephemeral: every slot binds its own free port). Errors with reason
// "bad_port" when the sum exceeds 65535.
Result<uint16_t> port_for_index(uint32_t base_port, uint64_t index);

// The slot of worker `worker`, dp rank `rank` when every worker has `dp_size` ranks:
// worker * dp_size + rank. The slots of `count` workers are 0..dp_slot(count, dp_size, 0)-1.
constexpr uint64_t dp_slot(uint32_t worker, uint32_t dp_size, uint32_t rank) {
  return uint64_t{worker} * dp_size + rank;
}

}  // namespace kvmock
