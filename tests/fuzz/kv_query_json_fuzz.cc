// Indexer query JSON decoders (request and response) on the same input: never crash;
// whatever they accept round-trips through the encoders unchanged.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "core/events/kv_query_codec.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);

  if (auto request = kvmock::decode_worker_kv_query_request_json(input); request.ok()) {
    const std::string text = kvmock::encode_worker_kv_query_request_json(*request);
    auto again = kvmock::decode_worker_kv_query_request_json(text);
    if (!again.ok() || !(*again == *request)) abort();
  }

  if (auto response = kvmock::decode_worker_kv_query_response_json(input); response.ok()) {
    const kvmock::RouterEventFieldSet all{true, true};
    const std::string text = kvmock::encode_worker_kv_query_response_json(*response, all);
    auto again = kvmock::decode_worker_kv_query_response_json(text);
    if (!again.ok() || !(*again == *response)) abort();
    if (kvmock::encode_worker_kv_query_response_json(*again, all) != text) abort();
  }
  return 0;
}
