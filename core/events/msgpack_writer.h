// Msgpack output for the codecs in this folder: the byte-vector stream msgpack::packer
// writes to, and MsgpackWriter, the msgpack half of the writer pair that lets one
// `template <class W> void write(...)` per type produce both JSON and msgpack (the JSON
// half is JsonWriter in json_writer.h; both spell the same calls).
//
// Every form is the minimal one (msgpack::packer's choice), which is what rmp_serde and
// msgspec write, so encoders built on it are byte-compatible with Dynamo and vLLM.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <msgpack.hpp>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

namespace kvmock::codec {

// msgpack::packer output stream that gathers writes in a buffer of its own and appends
// them to the byte vector in pieces of up to kStageBytes. A router event is some thirty
// writes of one to nine bytes, and appending each to the vector on its own took half of
// the encoding time (router_event_codec_bench). The vector is complete only after
// flush().
class StagedVectorSink {
 public:
  static constexpr size_t kStageBytes = 256;

  explicit StagedVectorSink(std::vector<uint8_t>& out) : out_(out) {}
  void write(const char* data, size_t size) {
    if (size == 0) return;  // an empty str or bin body may come with a null pointer
    if (size > kStageBytes - used_) {
      flush();
      if (size > kStageBytes) {
        const auto* p = reinterpret_cast<const uint8_t*>(data);
        out_.insert(out_.end(), p, p + size);
        return;
      }
    }
    std::memcpy(stage_.data() + used_, data, size);
    used_ += size;
  }
  void flush() {
    out_.insert(out_.end(), stage_.data(), stage_.data() + used_);
    used_ = 0;
  }

 private:
  std::vector<uint8_t>& out_;
  std::array<uint8_t, kStageBytes> stage_;
  size_t used_ = 0;
};
using Packer = msgpack::packer<StagedVectorSink>;

inline void pack_str(Packer& pk, std::string_view s) {
  pk.pack_str(static_cast<uint32_t>(s.size()));
  pk.pack_str_body(s.data(), static_cast<uint32_t>(s.size()));
}

// Appends msgpack values to a byte vector. Containers announce their size up front;
// end_map/end_array exist only so that code shared with JsonWriter can close them, and
// here they also mark where `out` is complete: whenever a top-level value has been
// written in full (a scalar, or a container at its end_*), `out` holds everything
// written so far.
class MsgpackWriter {
 public:
  explicit MsgpackWriter(std::vector<uint8_t>& out) : sink_(out), pk_(sink_) {}
  ~MsgpackWriter() { sink_.flush(); }
  MsgpackWriter(const MsgpackWriter&) = delete;
  MsgpackWriter& operator=(const MsgpackWriter&) = delete;

  void begin_map(size_t pairs) {
    pk_.pack_map(static_cast<uint32_t>(pairs));
    ++depth_;
  }
  void end_map() { close(); }
  void begin_array(size_t n) {
    pk_.pack_array(static_cast<uint32_t>(n));
    ++depth_;
  }
  void end_array() { close(); }
  void key(std::string_view k) { pack_str(pk_, k); }

  void u64(uint64_t v) {
    pk_.pack_uint64(v);
    value_written();
  }
  void optional_u64(const std::optional<uint64_t>& v) {
    if (v) {
      u64(*v);
    } else {
      null();
    }
  }
  void str(std::string_view s) {
    pack_str(pk_, s);
    value_written();
  }
  void bin(std::span<const uint8_t> b) {
    pk_.pack_bin(static_cast<uint32_t>(b.size()));
    pk_.pack_bin_body(reinterpret_cast<const char*>(b.data()), static_cast<uint32_t>(b.size()));
    value_written();
  }
  void null() {
    pk_.pack_nil();
    value_written();
  }

 private:
  void close() {
    if (depth_ > 0) --depth_;
    value_written();
  }
  void value_written() {
    if (depth_ == 0) sink_.flush();
  }

  StagedVectorSink sink_;
  Packer pk_;
  size_t depth_ = 0;
};

}  // namespace kvmock::codec
