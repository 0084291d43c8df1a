#include "core/events/msgpack_reader.h"

#include <algorithm>
#include <bit>
#include <cstring>

namespace kvmock {
namespace {

// The deepest skip() supports; callers pass smaller limits.
constexpr int kSkipStackCapacity = 64;

}  // namespace

std::string_view msgpack_type_phrase(MsgpackType type) {
  switch (type) {
    case MsgpackType::kNil:
      return "nil";
    case MsgpackType::kBool:
      return "a bool";
    case MsgpackType::kInt:
      return "an int";
    case MsgpackType::kFloat:
      return "a float";
    case MsgpackType::kStr:
      return "a string";
    case MsgpackType::kBin:
      return "a bin";
    case MsgpackType::kArray:
      return "an array";
    case MsgpackType::kMap:
      return "a map";
    case MsgpackType::kExt:
      return "an ext";
  }
  return "unknown";
}

uint64_t MsgpackReader::be(size_t width) const {
  uint64_t v = 0;
  const uint8_t* p = input_.data() + pos_ + 1;
  for (size_t i = 0; i < width; ++i) v = (v << 8) | p[i];
  return v;
}

MsgpackStatus MsgpackReader::peek(MsgpackType& type) const {
  if (at_end()) return MsgpackStatus::kTruncated;
  const uint8_t b = input_[pos_];
  if (b <= 0x7f || b >= 0xe0) {
    type = MsgpackType::kInt;
  } else if (b <= 0x8f) {
    type = MsgpackType::kMap;
  } else if (b <= 0x9f) {
    type = MsgpackType::kArray;
  } else if (b <= 0xbf) {
    type = MsgpackType::kStr;
  } else {
    switch (b) {
      case 0xc0:
        type = MsgpackType::kNil;
        break;
      case 0xc1:
        return MsgpackStatus::kInvalid;
      case 0xc2:
      case 0xc3:
        type = MsgpackType::kBool;
        break;
      case 0xc4:
      case 0xc5:
      case 0xc6:
        type = MsgpackType::kBin;
        break;
      case 0xc7:
      case 0xc8:
      case 0xc9:
      case 0xd4:
      case 0xd5:
      case 0xd6:
      case 0xd7:
      case 0xd8:
        type = MsgpackType::kExt;
        break;
      case 0xca:
      case 0xcb:
        type = MsgpackType::kFloat;
        break;
      case 0xcc:
      case 0xcd:
      case 0xce:
      case 0xcf:
      case 0xd0:
      case 0xd1:
      case 0xd2:
      case 0xd3:
        type = MsgpackType::kInt;
        break;
      case 0xd9:
      case 0xda:
      case 0xdb:
        type = MsgpackType::kStr;
        break;
      case 0xdc:
      case 0xdd:
        type = MsgpackType::kArray;
        break;
      default:  // 0xde, 0xdf
        type = MsgpackType::kMap;
        break;
    }
  }
  return MsgpackStatus::kOk;
}

MsgpackStatus MsgpackReader::read_nil() {
  if (at_end()) return MsgpackStatus::kTruncated;
  if (input_[pos_] != 0xc0)
    return input_[pos_] == 0xc1 ? MsgpackStatus::kInvalid : MsgpackStatus::kWrongType;
  ++pos_;
  return MsgpackStatus::kOk;
}

MsgpackStatus MsgpackReader::read_int(MsgpackInt& out) {
  if (at_end()) return MsgpackStatus::kTruncated;
  const uint8_t b = input_[pos_];
  if (b <= 0x7f) {
    out = {b, false};
    ++pos_;
    return MsgpackStatus::kOk;
  }
  if (b >= 0xe0) {
    out = {static_cast<uint64_t>(static_cast<int64_t>(static_cast<int8_t>(b))), true};
    ++pos_;
    return MsgpackStatus::kOk;
  }
  if (b < 0xcc || b > 0xd3) {
    return b == 0xc1 ? MsgpackStatus::kInvalid : MsgpackStatus::kWrongType;
  }
  const bool is_signed = b >= 0xd0;
  const size_t width = size_t{1} << ((b - (is_signed ? 0xd0 : 0xcc)));
  if (!has(1 + width)) return MsgpackStatus::kTruncated;
  uint64_t v = be(width);
  if (is_signed && width < 8) {
    // Sign-extend from `width` bytes.
    const unsigned shift = static_cast<unsigned>(64 - 8 * width);
    v = static_cast<uint64_t>(static_cast<int64_t>(v << shift) >> shift);
  }
  out = {v, is_signed && static_cast<int64_t>(v) < 0};
  pos_ += 1 + width;
  return MsgpackStatus::kOk;
}

namespace {

uint32_t be16_at(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return std::endian::native == std::endian::little ? __builtin_bswap16(v) : v;
}

uint32_t be32_at(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return std::endian::native == std::endian::little ? __builtin_bswap32(v) : v;
}

// The bytes a token id in the form starting with `first` takes: fixint, uint8, uint16 or
// uint32; 0 for any other form.
size_t uint32_width(uint8_t first) {
  if (first <= 0x7f) return 1;
  if (first == 0xcc) return 2;
  if (first == 0xcd) return 3;
  if (first == 0xce) return 5;
  return 0;
}

uint32_t uint32_value(const uint8_t* p, size_t width) {
  switch (width) {
    case 1:
      return p[0];
    case 2:
      return p[1];
    case 3:
      return be16_at(p + 1);
    default:
      return be32_at(p + 1);
  }
}

}  // namespace

size_t MsgpackReader::read_uint32_run(uint32_t* out, size_t n) {
  // One pass over raw bytes: read_int's general dispatch costs several times more per
  // token, and token arrays are most of a payload. While the input holds five bytes for
  // each value still wanted (the widest form), values are read in a stretch with no bounds
  // check, uint16 (where vocabularies of 32k-150k put most ids) tested first; the tail
  // near the end of the input is read with one check per value.
  const uint8_t* const begin = input_.data();
  const uint8_t* const end = begin + input_.size();
  const uint8_t* p = begin + pos_;
  uint32_t* o = out;
  uint32_t* const o_end = out + n;
  while (o < o_end) {
    const size_t unchecked = std::min(static_cast<size_t>(o_end - o), (end - p) / size_t{5});
    if (unchecked == 0) break;
    uint32_t* const stretch_end = o + unchecked;
    while (o < stretch_end) {
      while (*p == 0xcd) {
        *o++ = be16_at(p + 1);
        p += 3;
        if (o == stretch_end) break;
      }
      if (o == stretch_end) break;
      const size_t width = uint32_width(*p);
      if (width == 0) {
        pos_ = static_cast<size_t>(p - begin);
        return static_cast<size_t>(o - out);
      }
      *o++ = uint32_value(p, width);
      p += width;
    }
  }
  for (; o < o_end && p < end; ++o) {
    const size_t width = uint32_width(*p);
    if (width == 0 || static_cast<size_t>(end - p) < width) break;
    *o = uint32_value(p, width);
    p += width;
  }
  pos_ = static_cast<size_t>(p - begin);
  return static_cast<size_t>(o - out);
}

MsgpackStatus MsgpackReader::read_float(double& out) {
  if (at_end()) return MsgpackStatus::kTruncated;
  const uint8_t b = input_[pos_];
  if (b == 0xca) {
    if (!has(5)) return MsgpackStatus::kTruncated;
    out = static_cast<double>(std::bit_cast<float>(static_cast<uint32_t>(be(4))));
    pos_ += 5;
    return MsgpackStatus::kOk;
  }
  if (b == 0xcb) {
    if (!has(9)) return MsgpackStatus::kTruncated;
    out = std::bit_cast<double>(be(8));
    pos_ += 9;
    return MsgpackStatus::kOk;
  }
  return b == 0xc1 ? MsgpackStatus::kInvalid : MsgpackStatus::kWrongType;
}

MsgpackStatus MsgpackReader::read_str(std::string_view& out) {
  if (at_end()) return MsgpackStatus::kTruncated;
  const uint8_t b = input_[pos_];
  size_t header;
  uint64_t len;
  if (b >= 0xa0 && b <= 0xbf) {
    header = 1;
    len = b & 0x1f;
  } else if (b >= 0xd9 && b <= 0xdb) {
    const size_t width = size_t{1} << (b - 0xd9);
    if (!has(1 + width)) return MsgpackStatus::kTruncated;
    header = 1 + width;
    len = be(width);
  } else {
    return b == 0xc1 ? MsgpackStatus::kInvalid : MsgpackStatus::kWrongType;
  }
  if (remaining() - header < len) return MsgpackStatus::kTruncated;
  out = std::string_view(reinterpret_cast<const char*>(input_.data() + pos_ + header), len);
  pos_ += header + len;
  return MsgpackStatus::kOk;
}

MsgpackStatus MsgpackReader::read_bin(std::span<const uint8_t>& out) {
  if (at_end()) return MsgpackStatus::kTruncated;
  const uint8_t b = input_[pos_];
  if (b < 0xc4 || b > 0xc6) {
    return b == 0xc1 ? MsgpackStatus::kInvalid : MsgpackStatus::kWrongType;
  }
  const size_t width = size_t{1} << (b - 0xc4);
  if (!has(1 + width)) return MsgpackStatus::kTruncated;
  const uint64_t len = be(width);
  if (remaining() - 1 - width < len) return MsgpackStatus::kTruncated;
  out = input_.subspan(pos_ + 1 + width, len);
  pos_ += 1 + width + len;
  return MsgpackStatus::kOk;
}

MsgpackStatus MsgpackReader::read_array(uint32_t& n) {
  if (at_end()) return MsgpackStatus::kTruncated;
  const uint8_t b = input_[pos_];
  size_t header;
  uint64_t count;
  if (b >= 0x90 && b <= 0x9f) {
    header = 1;
    count = b & 0x0f;
  } else if (b == 0xdc || b == 0xdd) {
    const size_t width = b == 0xdc ? 2 : 4;
    if (!has(1 + width)) return MsgpackStatus::kTruncated;
    header = 1 + width;
    count = be(width);
  } else {
    return b == 0xc1 ? MsgpackStatus::kInvalid : MsgpackStatus::kWrongType;
  }
  if (remaining() - header < count) return MsgpackStatus::kTruncated;
  n = static_cast<uint32_t>(count);
  pos_ += header;
  return MsgpackStatus::kOk;
}

MsgpackStatus MsgpackReader::read_map(uint32_t& n) {
  if (at_end()) return MsgpackStatus::kTruncated;
  const uint8_t b = input_[pos_];
  size_t header;
  uint64_t count;
  if (b >= 0x80 && b <= 0x8f) {
    header = 1;
    count = b & 0x0f;
  } else if (b == 0xde || b == 0xdf) {
    const size_t width = b == 0xde ? 2 : 4;
    if (!has(1 + width)) return MsgpackStatus::kTruncated;
    header = 1 + width;
    count = be(width);
  } else {
    return b == 0xc1 ? MsgpackStatus::kInvalid : MsgpackStatus::kWrongType;
  }
  if ((remaining() - header) / 2 < count) return MsgpackStatus::kTruncated;
  n = static_cast<uint32_t>(count);
  pos_ += header;
  return MsgpackStatus::kOk;
}

namespace {

// What the first byte of a value says about its layout.
struct ValueLayout {
  bool valid = true;
  bool container = false;  // array or map
  bool map = false;        // a container whose length counts key-value pairs
  size_t width = 0;        // bytes of the length field after the first byte, if any
  uint64_t payload = 0;    // fixed payload bytes (scalars), before any length is added
  uint64_t children = 0;   // values inside a fix-size container
};

ValueLayout layout_of(uint8_t b) {
  ValueLayout v;
  if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3) return v;  // one byte
  if (b <= 0x8f) {
    v.container = v.map = true;
    v.children = 2 * uint64_t{b & 0x0fu};
  } else if (b <= 0x9f) {
    v.container = true;
    v.children = b & 0x0fu;
  } else if (b <= 0xbf) {
    v.payload = b & 0x1fu;
  } else if (b == 0xc1) {
    v.valid = false;
  } else if (b <= 0xc6) {  // bin 8/16/32
    v.width = size_t{1} << (b - 0xc4);
  } else if (b <= 0xc9) {  // ext 8/16/32: the length, then the ext type byte
    v.width = size_t{1} << (b - 0xc7);
    v.payload = 1;
  } else if (b <= 0xcb) {  // float 32/64
    v.payload = b == 0xca ? 4 : 8;
  } else if (b <= 0xcf) {  // uint 8..64
    v.payload = uint64_t{1} << (b - 0xcc);
  } else if (b <= 0xd3) {  // int 8..64
    v.payload = uint64_t{1} << (b - 0xd0);
  } else if (b <= 0xd8) {  // fixext 1..16: type byte plus data
    v.payload = 1 + (uint64_t{1} << (b - 0xd4));
  } else if (b <= 0xdb) {  // str 8/16/32
    v.width = size_t{1} << (b - 0xd9);
  } else {  // array 16/32 (0xdc, 0xdd), map 16/32 (0xde, 0xdf)
    v.container = true;
    v.map = b >= 0xde;
    v.width = (b == 0xdc || b == 0xde) ? 2 : 4;
  }
  return v;
}

}  // namespace

MsgpackStatus MsgpackReader::skip(int max_depth) {
  max_depth = std::min(max_depth, kSkipStackCapacity - 1);
  const size_t start = pos_;
  // pending[d] = values still to consume at nesting level d; level 0 is the value itself.
  uint64_t pending[kSkipStackCapacity];
  int depth = 1;
  pending[0] = 1;
  auto fail = [&](MsgpackStatus status) {
    pos_ = start;
    return status;
  };
  while (depth > 0) {
    if (pending[depth - 1] == 0) {
      --depth;
      continue;
    }
    --pending[depth - 1];
    if (at_end()) return fail(MsgpackStatus::kTruncated);
    const ValueLayout v = layout_of(input_[pos_]);
    if (!v.valid) return fail(MsgpackStatus::kInvalid);
    size_t header = 1;  // bytes before the payload
    uint64_t payload = v.payload;
    uint64_t children = v.children;
    if (v.width > 0) {
      if (!has(1 + v.width)) return fail(MsgpackStatus::kTruncated);
      const uint64_t len = be(v.width);
      header += v.width;
      if (v.container) {
        children = v.map ? 2 * len : len;
      } else {
        payload += len;
      }
    }
    if (remaining() < header || remaining() - header < payload) {
      return fail(MsgpackStatus::kTruncated);
    }
    pos_ += header + payload;
    if (v.container) {
      if (depth > max_depth) return fail(MsgpackStatus::kTooDeep);
      if (children > remaining()) return fail(MsgpackStatus::kTruncated);
      if (children > 0) pending[depth++] = children;
    }
  }
  return MsgpackStatus::kOk;
}

}  // namespace kvmock
