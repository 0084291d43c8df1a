// Reading the extra_keys value of an engine BlockStored event (slot 8 / "extra_keys"; the
// entry forms are described in engine_payload_codec.h). The decoder runs it to derive
// mm_hashes and the cache salt; the encoder runs it to learn whether the salt is already
// carried by extra_keys. Internal to core/events.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace kvmock::engine_payload {

// What extra_keys carries besides its raw bytes.
struct ExtraKeysScan {
  std::vector<std::vector<uint64_t>> mm_hashes;  // empty unless some block has one
  std::optional<std::string_view> cache_salt;    // view into the scanned bytes
};

// Walks an extra_keys value (an array, one entry per block). On a malformed shape returns
// false and, when `problem` is set, describes it there (the text after the field name,
// e.g. "[1].mm_objects is not an array"). The bytes must already have passed
// MsgpackReader::skip, so only shape errors remain possible.
bool scan_extra_keys(std::span<const uint8_t> raw, const std::optional<std::string>& lora_name,
                     ExtraKeysScan& scan, std::string* problem);

}  // namespace kvmock::engine_payload
