// Endpoint arithmetic shared by the engine subscriber and the vLLM-format publisher.
//
// vLLM gives each data-parallel rank its own socket pair: the configured endpoint is rank
// 0's, and rank r uses the same host with port base + r (docs/wire-formats.md#engine-zmq-stream).
// Port 0 means "ephemeral" and is never offset, so every rank binds its own free port and reports
// it through last_endpoint().
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <zmq.hpp>

#include "core/common/ports.h"  // port_for_index
#include "core/common/result.h"

namespace kvmock {

// The endpoint of dp rank `rank` given rank 0's endpoint, following vLLM's
// offset_endpoint_port: rank 0 is returned unchanged; tcp:// endpoints get the text after
// the last ':' replaced by base + rank (port 0 stays 0); inproc:// endpoints get "_dp{rank}"
// appended. Anything else for rank > 0, or a tcp port that is not a number in 0..65535,
// is an Error with reason "bad_endpoint" (or "bad_port" when base + rank overflows).
Result<std::string> offset_endpoint_port(std::string_view endpoint, uint32_t rank);

// The address a bound socket actually listens on (ZMQ_LAST_ENDPOINT), e.g.
// "tcp://127.0.0.1:40123" after binding "tcp://127.0.0.1:0". Empty if never bound.
std::string last_endpoint(const zmq::socket_t& socket);

}  // namespace kvmock
