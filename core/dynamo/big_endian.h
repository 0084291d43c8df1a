// Big-endian integers as Dynamo's request-plane frames carry them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace kvmock::dynamo {

template <typename T>
T load_be(const uint8_t* bytes) {
  T value = 0;
  for (size_t i = 0; i < sizeof(T); ++i) value = static_cast<T>((value << 8) | bytes[i]);
  return value;
}

template <typename T>
void append_be(std::string& out, T value) {
  for (size_t i = sizeof(T); i-- > 0;) out.push_back(static_cast<char>((value >> (8 * i)) & 0xff));
}

}  // namespace kvmock::dynamo
