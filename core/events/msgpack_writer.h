// Msgpack output for the codecs in this folder: the byte-vector stream msgpack::packer
// writes to, and MsgpackWriter, the msgpack half of the writer pair that lets one
// `template <class W> void write(...)` per type produce both JSON and msgpack (the JSON
// half is JsonWriter in json_writer.h; both spell the same calls).
//
// Every form is the minimal one (msgpack::packer's choice), which is what rmp_serde and
// msgspec write, so encoders built on it are byte-compatible with Dynamo and vLLM.
#pragma once

#include <cstddef>
#include <cstdint>
#include <msgpack.hpp>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

namespace kvmock::codec {

// msgpack::packer output stream appending to a byte vector.
class VectorSink {
 public:
  explicit VectorSink(std::vector<uint8_t>& out) : out_(out) {}
  void write(const char* data, size_t size) {
    const auto* p = reinterpret_cast<const uint8_t*>(data);
    out_.insert(out_.end(), p, p + size);
  }

 private:
  std::vector<uint8_t>& out_;
};
using Packer = msgpack::packer<VectorSink>;

inline void pack_str(Packer& pk, std::string_view s) {
  pk.pack_str(static_cast<uint32_t>(s.size()));
  pk.pack_str_body(s.data(), static_cast<uint32_t>(s.size()));
}

// Appends msgpack values to a byte vector. Containers announce their size up front;
// end_map/end_array exist only so that code shared with JsonWriter can close them.
class MsgpackWriter {
 public:
  explicit MsgpackWriter(std::vector<uint8_t>& out) : sink_(out), pk_(sink_) {}

  void begin_map(size_t pairs) { pk_.pack_map(static_cast<uint32_t>(pairs)); }
  void end_map() {}
  void begin_array(size_t n) { pk_.pack_array(static_cast<uint32_t>(n)); }
  void end_array() {}
  void key(std::string_view k) { pack_str(pk_, k); }

  void u64(uint64_t v) { pk_.pack_uint64(v); }
  void optional_u64(const std::optional<uint64_t>& v) {
    if (v) {
      u64(*v);
    } else {
      null();
    }
  }
  void str(std::string_view s) { pack_str(pk_, s); }
  void bin(std::span<const uint8_t> b) {
    pk_.pack_bin(static_cast<uint32_t>(b.size()));
    pk_.pack_bin_body(reinterpret_cast<const char*>(b.data()), static_cast<uint32_t>(b.size()));
  }
  void null() { pk_.pack_nil(); }

 private:
  VectorSink sink_;
  Packer pk_;
};

}  // namespace kvmock::codec
