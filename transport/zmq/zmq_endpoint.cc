#include "transport/zmq/zmq_endpoint.h"

#include <charconv>

namespace kvmock {

Result<std::string> offset_endpoint_port(std::string_view endpoint, uint32_t rank) {
  if (rank == 0 || endpoint.empty()) return std::string(endpoint);
  if (endpoint.starts_with("inproc://")) {
    return std::string(endpoint) + "_dp" + std::to_string(rank);
  }
  if (!endpoint.starts_with("tcp://")) {
    return make_error("bad_endpoint", "cannot offset a non-tcp, non-inproc endpoint for dp rank " +
                                          std::to_string(rank) + ": " + std::string(endpoint));
  }
  const size_t colon = endpoint.rfind(':');
  const std::string_view port_text = endpoint.substr(colon + 1);
  uint32_t base = 0;
  const auto [end, ec] =
      std::from_chars(port_text.data(), port_text.data() + port_text.size(), base);
  // rfind always finds the scheme's colon; a port must follow a later one.
  if (colon < 6 || port_text.empty() || ec != std::errc() ||
      end != port_text.data() + port_text.size() || base > 65535) {
    return make_error("bad_endpoint",
                      "no numeric port after the last ':' in " + std::string(endpoint));
  }
  Result<uint16_t> port = port_for_index(base, rank);
  if (!port) return port.error();
  return std::string(endpoint.substr(0, colon + 1)) + std::to_string(*port);
}

std::string last_endpoint(const zmq::socket_t& socket) {
  return socket.get(zmq::sockopt::last_endpoint);
}

}  // namespace kvmock
