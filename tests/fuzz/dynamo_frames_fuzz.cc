// Dynamo request-plane bytes as a frontend (or an attacker) writes them on a worker's TCP
// port: a stream of request frames, each carrying a two-part message whose header is a
// request control message. Never crash, never allocate past the limit; what decodes
// re-encodes to the same frame.
#include <cstdint>
#include <cstdlib>
#include <span>
#include <string>

#include "core/dynamo/call_home.h"
#include "core/dynamo/request_frame.h"
#include "core/dynamo/two_part_codec.h"

namespace {

constexpr size_t kLimit = 1 << 20;

std::span<const uint8_t> as_bytes(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

void check_two_part(std::span<const uint8_t> bytes) {
  auto size = kvmock::dynamo::two_part_size(bytes, kLimit);
  if (!size.ok() || !size->has_value() || **size > bytes.size()) return;
  auto message = kvmock::dynamo::decode_two_part(bytes.first(**size), kLimit);
  if (!message.ok()) return;
  (void)kvmock::dynamo::parse_request_control(message->header);
  (void)kvmock::dynamo::parse_stream_control(*message);
  const std::string again = kvmock::dynamo::encode_two_part(message->header, message->body);
  auto redecoded = kvmock::dynamo::decode_two_part(as_bytes(again), kLimit);
  if (!redecoded.ok() || !(*redecoded == *message)) abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::span<const uint8_t> stream(data, size);
  check_two_part(stream);
  // Split the input into frames as a connection would, at most 64 of them.
  for (int frames = 0; frames < 64 && !stream.empty(); ++frames) {
    auto frame_size = kvmock::dynamo::request_frame_size(stream, kLimit);
    if (!frame_size.ok() || !frame_size->has_value() || **frame_size > stream.size()) break;
    auto frame = kvmock::dynamo::decode_request_frame(stream.first(**frame_size), kLimit);
    if (frame.ok()) check_two_part(as_bytes(frame->payload));
    stream = stream.subspan(**frame_size);
  }
  return 0;
}
