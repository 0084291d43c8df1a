// The address a process tells others to reach it at, when the operator named none.
#pragma once

#include <string>

namespace kvmock {

// The first IPv4 address of an interface that is up and not loopback, as Dynamo's own
// workers pick the host they advertise (docs/dynamo-discovery.md#advertised-address);
// "127.0.0.1" when there is none (a machine with loopback only, or getifaddrs failed).
std::string first_non_loopback_address();

}  // namespace kvmock
