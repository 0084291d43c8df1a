// etcd JSON gateway response parsers (transport/etcd/etcd_gateway_json.h) on arbitrary
// bytes: never crash; what a parser accepts is consistent with itself.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "transport/etcd/etcd_gateway_json.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace kvmock::etcd;
  const std::string_view input(reinterpret_cast<const char*>(data), size);

  (void)parse_lease_grant_response(input);
  (void)parse_keep_alive_response(input);
  (void)parse_txn_succeeded(input);
  (void)parse_delete_range_response(input);
  (void)parse_header_only_response(input);
  const GatewayError error = parse_gateway_error(input);
  // A body the error parser recognises is never taken for a successful answer.
  if (error.grpc_code != 0 && parse_header_only_response(input).ok()) abort();

  if (auto listed = parse_range_response(input); listed.ok()) {
    for (const KeyValue& kv : *listed) {
      // Keys and values round-trip through base64 unchanged.
      auto key = base64_decode(base64_encode(kv.key));
      if (!key.ok() || *key != kv.key) abort();
    }
  }
  if (auto decoded = base64_decode(input); decoded.ok()) {
    auto again = base64_decode(base64_encode(*decoded));
    if (!again.ok() || *again != *decoded) abort();
  }
  return 0;
}
