// A bounds-checked, allocation-free msgpack pull reader over a byte span.
//
// Decoders of outside bytes walk the input with it value by value, reading exactly the
// shape their schema expects. It never allocates, never throws, never recurses, and never
// reads past the span: every length in a header is checked against the bytes that remain
// before anything is returned, so a header claiming 2^32 elements is reported as
// truncated instead of being trusted. Strings and bins are views into the input.
//
// Why not msgpack::unpack: it materialises the whole tree in a zone, allocating each
// container from its claimed size before the elements arrive (nested claims multiply),
// throws on bad input, and forgets byte offsets, which exact re-encoding of opaque
// sub-values (vLLM's extra_keys) needs.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string_view>

namespace kvmock {

enum class MsgpackType : uint8_t { kNil, kBool, kInt, kFloat, kStr, kBin, kArray, kMap, kExt };

// Human-readable name for error messages ("a string", "an array", ...).
std::string_view msgpack_type_phrase(MsgpackType type);

enum class MsgpackStatus : uint8_t {
  kOk,
  kTruncated,  // the input ends inside the value (or a header claims more than remains)
  kWrongType,  // the next value has another type; nothing was consumed
  kInvalid,    // the never-used byte 0xc1
  kTooDeep,    // skip() met nesting deeper than allowed
};

// A msgpack integer of any width. `bits` is the value as uint64 for non-negative values
// and the two's-complement bits for negative ones, so reinterpreting as int64 is exact.
struct MsgpackInt {
  uint64_t bits = 0;
  bool negative = false;
  int64_t as_signed() const { return static_cast<int64_t>(bits); }
};

class MsgpackReader {
 public:
  explicit MsgpackReader(std::span<const uint8_t> input) : input_(input) {}

  size_t offset() const { return pos_; }
  size_t remaining() const { return input_.size() - pos_; }
  bool at_end() const { return pos_ == input_.size(); }
  // Moves to an offset previously returned by offset(); used to read a map twice.
  void seek(size_t offset) { pos_ = offset <= input_.size() ? offset : input_.size(); }
  // The bytes in [from, to), both earlier results of offset().
  std::span<const uint8_t> slice(size_t from, size_t to) const {
    return input_.subspan(from, to - from);
  }

  // Type of the next value without consuming it. kTruncated at the end of input,
  // kInvalid on 0xc1.
  MsgpackStatus peek(MsgpackType& type) const;
  bool next_is_nil() const { return pos_ < input_.size() && input_[pos_] == 0xc0; }

  // Each read consumes one value of the named type or returns a status and consumes
  // nothing. Container reads consume only the header; the caller then reads the
  // elements (n values for an array, n key/value pairs for a map).
  MsgpackStatus read_nil();
  MsgpackStatus read_int(MsgpackInt& out);
  MsgpackStatus read_float(double& out);  // float32 or float64
  MsgpackStatus read_str(std::string_view& out);
  MsgpackStatus read_bin(std::span<const uint8_t>& out);
  // `n` is at most remaining() (arrays) or remaining() / 2 (maps): every element takes
  // at least one byte, so a larger claim cannot be satisfied and is kTruncated.
  MsgpackStatus read_array(uint32_t& n);
  MsgpackStatus read_map(uint32_t& n);

  // The fast path of an array of small unsigned ints (token ids): reads up to `n` values
  // written as positive fixint, uint8, uint16 or uint32 into `out`, and stops before the
  // first value in another form or cut short. Returns how many it read; the caller reads
  // the rest one by one with read_int, which also names what is wrong.
  size_t read_uint32_run(uint32_t* out, size_t n);
  // The fast path of a 64-bit block hash: reads a uint64 in its 8-byte form (0xcf) and
  // returns true; otherwise consumes nothing and returns false (read it with read_int).
  bool read_uint64_word(uint64_t& out) {
    if (remaining() < 9 || input_[pos_] != 0xcf) return false;
    uint64_t big_endian = 0;
    std::memcpy(&big_endian, input_.data() + pos_ + 1, sizeof big_endian);
    out = std::endian::native == std::endian::little ? __builtin_bswap64(big_endian) : big_endian;
    pos_ += 9;
    return true;
  }

  // The fast path of a short string (a map key): reads a fixstr (up to 31 bytes) and
  // returns true; otherwise consumes nothing and returns false (read it with read_str).
  bool read_fixstr(std::string_view& out) {
    if (at_end() || (input_[pos_] & 0xe0) != 0xa0) return false;
    const size_t len = input_[pos_] & 0x1f;
    if (remaining() <= len) return false;
    out = std::string_view(reinterpret_cast<const char*>(input_.data() + pos_ + 1), len);
    pos_ += 1 + len;
    return true;
  }

  // Consumes one complete value of any type. A container counts as one level; nesting
  // more than `max_depth` levels is kTooDeep (max_depth < 1 rejects any container).
  // Iterative, so hostile nesting cannot exhaust the stack.
  MsgpackStatus skip(int max_depth);

 private:
  // Reads a big-endian unsigned integer of `width` bytes at pos_ + 1 (after the type byte).
  uint64_t be(size_t width) const;
  bool has(size_t n) const { return remaining() >= n; }

  std::span<const uint8_t> input_;
  size_t pos_ = 0;
};

}  // namespace kvmock
