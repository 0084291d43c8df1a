#include "transport/net/local_address.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>

namespace kvmock {
namespace {

// The advertised host is an IPv4 address a peer can dial: never another loopback address
// than the documented fallback.
TEST(LocalAddress, FirstNonLoopbackAddressIsAnIpv4AddressOrTheLoopbackFallback) {
  const std::string address = first_non_loopback_address();
  in_addr parsed{};
  ASSERT_EQ(inet_pton(AF_INET, address.c_str(), &parsed), 1) << address;
  if (address.starts_with("127.")) {
    EXPECT_EQ(address, "127.0.0.1");
  }
}

}  // namespace
}  // namespace kvmock
