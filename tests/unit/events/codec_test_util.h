// Small helpers for the codec tests: hex conversion and the shared golden vector.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/events/router_event.h"

namespace kvmock::testing_util {

inline std::vector<uint8_t> from_hex(std::string_view hex) {
  auto nibble = [](char c) -> uint8_t {
    if (c >= '0' && c <= '9') return static_cast<uint8_t>(c - '0');
    if (c >= 'a' && c <= 'f') return static_cast<uint8_t>(c - 'a' + 10);
    return static_cast<uint8_t>(c - 'A' + 10);
  };
  std::vector<uint8_t> out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) {
    out.push_back(static_cast<uint8_t>(nibble(hex[i]) << 4 | nibble(hex[i + 1])));
  }
  return out;
}

inline std::string to_hex(const std::vector<uint8_t>& bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (uint8_t b : bytes) {
    out.push_back(kHex[b >> 4]);
    out.push_back(kHex[b & 0xf]);
  }
  return out;
}

// tests/data/README.md, "Router event, msgpack with named fields (190 bytes)".
inline constexpr std::string_view kGoldenRouterEventHex =
    "84a9776f726b65725f696407ac73746f726167655f74696572a6646576696365b07265736964656e63795f64"
    "6f6d61696ea6776f726b6572a56576656e7483a86576656e745f696401a46461746181a673746f726564"
    "83ab706172656e745f68617368c0ae73746172745f706f736974696f6ec0a6626c6f636b739183aa626c"
    "6f636b5f68617368cf7ee2cbedc694ab46ab746f6b656e735f68617368cf7ee2cbedc694ab46ad6d6d5f"
    "65787472615f696e666fc0a764705f72616e6b00";

// The event the golden vector encodes.
inline RouterEvent golden_router_event() {
  RouterEvent e;
  e.worker_id = 7;
  e.storage_tier = StorageTier::kDevice;
  e.event.event_id = 1;
  e.event.dp_rank = 0;
  StoreData store;
  store.blocks.push_back(StoredBlock{9143094415614847814ull, 9143094415614847814ull, {}});
  e.event.data = store;
  return e;
}

inline constexpr RouterEventFieldSet kAllFields{true, true};

}  // namespace kvmock::testing_util
