// JSON output for the codecs in this folder: number and string appenders, and
// JsonWriter, the JSON half of the writer pair that lets one `template <class W> void
// write(...)` per type produce both JSON and msgpack (the msgpack half is MsgpackWriter in
// msgpack_writer.h; both spell the same calls).
//
// Output is compact, as serde_json::to_string writes it: no spaces, keys in call order,
// integers in decimal.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace kvmock::codec {

// Appends `v` in decimal.
void append_u64(std::string& out, uint64_t v);
inline void append_optional_u64(std::string& out, const std::optional<uint64_t>& v) {
  if (v) {
    append_u64(out, *v);
  } else {
    out.append("null");
  }
}
// Appends `s` as a JSON string literal. Invalid UTF-8 sequences become U+FFFD so the
// output is always valid JSON (as Rust's from_utf8_lossy would do).
void append_json_string(std::string& out, std::string_view s);

// Appends JSON values to a string. The writer places the commas itself: every value or
// key that follows another one at the same level gets one, so callers only say what comes
// next. The sizes passed to begin_map/begin_array are for MsgpackWriter and ignored here.
class JsonWriter {
 public:
  explicit JsonWriter(std::string& out) : out_(out) {}

  void begin_map(size_t /*pairs*/) { open('{'); }
  void end_map() { close('}'); }
  void begin_array(size_t /*n*/) { open('['); }
  void end_array() { close(']'); }
  // `k` is written as is: keys are the codec's own ASCII field names, never input.
  void key(std::string_view k) {
    separate();
    out_.push_back('"');
    out_.append(k);
    out_.append("\":");
    need_comma_ = false;
  }

  void u64(uint64_t v) {
    separate();
    append_u64(out_, v);
    need_comma_ = true;
  }
  void optional_u64(const std::optional<uint64_t>& v) {
    if (v) {
      u64(*v);
    } else {
      null();
    }
  }
  void str(std::string_view s) {
    separate();
    append_json_string(out_, s);
    need_comma_ = true;
  }
  // JSON has no binary type; serde_json writes bytes as an array of numbers.
  void bin(std::span<const uint8_t> b) {
    begin_array(b.size());
    for (uint8_t byte : b) u64(byte);
    end_array();
  }
  void null() {
    separate();
    out_.append("null");
    need_comma_ = true;
  }
  void boolean(bool v) {
    separate();
    out_.append(v ? "true" : "false");
    need_comma_ = true;
  }
  // Splices an already-serialized JSON value in as is (a record that embeds another
  // document, like a model card inside its discovery record). The caller guarantees `json`
  // is one complete, compact JSON value; nothing checks it here.
  void raw_json(std::string_view json) {
    separate();
    out_.append(json);
    need_comma_ = true;
  }

 private:
  void separate() {
    if (need_comma_) out_.push_back(',');
  }
  void open(char c) {
    separate();
    out_.push_back(c);
    need_comma_ = false;
  }
  void close(char c) {
    out_.push_back(c);
    need_comma_ = true;
  }

  std::string& out_;
  bool need_comma_ = false;  // a value was just completed at the current level
};

}  // namespace kvmock::codec
