#include "core/events/engine_extra_keys.h"

#include <algorithm>

#include "core/events/engine_payload_codec.h"
#include "core/events/msgpack_reader.h"
#include "core/tokens/block_hash.h"

namespace kvmock::engine_payload {
namespace {

constexpr int kAnyDepth = kEnginePayloadMaxDepth;

bool is_hex64(std::string_view s) {
  if (s.size() != 64) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
  });
}

// One pass over the per-block entries of an extra_keys array.
class ExtraKeysScanner {
 public:
  ExtraKeysScanner(std::span<const uint8_t> raw, const std::optional<std::string>& lora_name,
                   ExtraKeysScan& scan, std::string* problem)
      : r_(raw), lora_name_(lora_name), scan_(scan), problem_(problem) {}

  bool run() {
    if (r_.read_array(blocks_) != MsgpackStatus::kOk) {
      if (problem_) *problem_ = " is not an array";
      return false;
    }
    for (uint32_t block = 0; block < blocks_; ++block) {
      if (!block_entry(block)) return false;
    }
    return true;
  }

 private:
  bool block_entry(uint32_t block) {
    MsgpackType type = MsgpackType::kNil;
    if (r_.peek(type) != MsgpackStatus::kOk) return shape_error(block, " is not msgpack");
    switch (type) {
      case MsgpackType::kNil:
        (void)r_.read_nil();
        return true;
      case MsgpackType::kArray:
        tuple(block);
        return true;
      case MsgpackType::kMap:
        return mm_infos(block);
      default:
        return shape_error(block, std::string(" is ") + std::string(msgpack_type_phrase(type)) +
                                      ", expected nil, an array or a map");
    }
  }

  // A vLLM extra-keys tuple: LoRA name, mm identifiers, cache salt, prompt-embeds hashes.
  void tuple(uint32_t block) {
    uint32_t items = 0;
    (void)r_.read_array(items);
    for (uint32_t j = 0; j < items; ++j) {
      MsgpackType item_type = MsgpackType::kNil;
      (void)r_.peek(item_type);
      if (item_type == MsgpackType::kStr) {
        std::string_view s;
        (void)r_.read_str(s);
        if (is_hex64(s)) {
          add_mm(block, hash_mm_identifier(s));
        } else if (block == 0 && !scan_.cache_salt && (!lora_name_ || s != *lora_name_)) {
          scan_.cache_salt = s;
        }
      } else if (item_type == MsgpackType::kArray) {
        identifier_with_offsets(block);
      } else {
        (void)r_.skip(kAnyDepth);
      }
    }
  }

  // (identifier, offsets...) when its first item is a string.
  void identifier_with_offsets(uint32_t block) {
    uint32_t parts = 0;
    (void)r_.read_array(parts);
    uint32_t skipped = 0;
    MsgpackType first = MsgpackType::kNil;
    if (parts > 0 && r_.peek(first) == MsgpackStatus::kOk && first == MsgpackType::kStr) {
      std::string_view id;
      (void)r_.read_str(id);
      add_mm(block, hash_mm_identifier(id));
      skipped = 1;
    }
    for (; skipped < parts; ++skipped) (void)r_.skip(kAnyDepth);
  }

  // Consumes a map key; true when it is the string `wanted`. Any other key is skipped
  // together with its value.
  bool key_is(std::string_view wanted) {
    std::string_view key;
    const bool string_key = r_.read_str(key) == MsgpackStatus::kOk;
    if (!string_key) (void)r_.skip(kAnyDepth);
    if (string_key && key == wanted) return true;
    (void)r_.skip(kAnyDepth);
    return false;
  }

  // block_mm_infos: {mm_objects: [{mm_hash, offsets}, ...]}.
  bool mm_infos(uint32_t block) {
    uint32_t keys = 0;
    (void)r_.read_map(keys);
    for (uint32_t k = 0; k < keys; ++k) {
      if (!key_is("mm_objects")) continue;
      if (r_.next_is_nil()) {
        (void)r_.read_nil();
        continue;
      }
      uint32_t objects = 0;
      if (r_.read_array(objects) != MsgpackStatus::kOk) {
        return shape_error(block, ".mm_objects is not an array");
      }
      for (uint32_t o = 0; o < objects; ++o) {
        if (!mm_object(block, o)) return false;
      }
    }
    return true;
  }

  bool mm_object(uint32_t block, uint32_t o) {
    uint32_t fields = 0;
    if (r_.read_map(fields) != MsgpackStatus::kOk) {
      return shape_error(block, ".mm_objects[" + std::to_string(o) + "] is not a map");
    }
    for (uint32_t f = 0; f < fields; ++f) {
      if (!key_is("mm_hash")) continue;
      MsgpackInt hash;
      std::string_view identifier;
      if (r_.read_int(hash) == MsgpackStatus::kOk) {
        add_mm(block, hash.bits);
      } else if (r_.read_str(identifier) == MsgpackStatus::kOk) {
        add_mm(block, hash_mm_identifier(identifier));
      } else {
        return shape_error(
            block, ".mm_objects[" + std::to_string(o) + "].mm_hash is not an int or a string");
      }
    }
    return true;
  }

  void add_mm(uint32_t block, uint64_t hash) {
    if (scan_.mm_hashes.empty()) scan_.mm_hashes.resize(blocks_);
    scan_.mm_hashes[block].push_back(hash);
  }

  bool shape_error(uint32_t block, std::string_view what) {
    if (problem_) *problem_ = "[" + std::to_string(block) + "]" + std::string(what);
    return false;
  }

  MsgpackReader r_;
  const std::optional<std::string>& lora_name_;
  ExtraKeysScan& scan_;
  std::string* problem_;
  uint32_t blocks_ = 0;
};

}  // namespace

bool scan_extra_keys(std::span<const uint8_t> raw, const std::optional<std::string>& lora_name,
                     ExtraKeysScan& scan, std::string* problem) {
  return ExtraKeysScanner(raw, lora_name, scan, problem).run();
}

}  // namespace kvmock::engine_payload
