// The engine KV-event payload format, shared by its decoder (engine_payload_decoder.cc)
// and encoder (engine_payload_encoder.cc): event tags, positional slot numbers, and one
// {slot, map key} table per event type, so a field's key is spelled once for decoder
// lookups, encoder keys and error messages. The shapes themselves are described in
// engine_payload_codec.h. Internal to core/events.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>

#include "core/events/engine_payload_codec.h"

namespace kvmock::engine_payload {

inline constexpr std::string_view kStoredTag = "BlockStored";
inline constexpr std::string_view kRemovedTag = "BlockRemoved";
inline constexpr std::string_view kClearedTag = "AllBlocksCleared";
// The key that carries the tag of a map event.
inline constexpr std::string_view kTypeKey = "type";

enum class EventKind : uint8_t { kStored, kRemoved, kCleared, kUnknown };

constexpr EventKind classify_tag(std::string_view tag) {
  if (tag == kStoredTag) return EventKind::kStored;
  if (tag == kRemovedTag) return EventKind::kRemoved;
  if (tag == kClearedTag) return EventKind::kCleared;
  return EventKind::kUnknown;
}

// BlockStored positional slot numbers (the tag is slot 0); map keys resolve to the same
// numbers.
enum StoredSlot : uint8_t {
  kSlotIgnored = 0,
  kSlotBlockHashes = 1,
  kSlotParent = 2,
  kSlotTokenIds = 3,
  kSlotBlockSize = 4,
  kSlotLoraId = 5,
  kSlotMedium = 6,
  kSlotLoraName = 7,
  kSlotExtraKeys = 8,
  kSlotGroupIdx = 9,
  kSlotSpecKind = 10,
  kSlotSpecWindow = 11,
  kSlotCacheSalt = 12,  // map key only
};

// BlockRemoved positional slot numbers; map keys resolve to the same numbers.
enum RemovedSlot : uint8_t {
  kRemovedSlotIgnored = 0,
  kRemovedSlotBlockHashes = 1,
  kRemovedSlotMedium = 2,
  kRemovedSlotGroupIdx = 3,
};

// Positional slots known to this codec.
inline constexpr uint8_t kStoredSlots = kSlotSpecWindow;
inline constexpr uint8_t kRemovedSlots = kRemovedSlotGroupIdx;
// Fewest fields a positional event may carry: the Apr-2025 originals minus the
// deprecated lora_id, which older producers could leave off as a trailing default.
inline constexpr uint32_t kStoredMinFields = 4;
inline constexpr uint32_t kRemovedMinFields = 1;
// What a freshly built event (positional_fields == 0) gets in positional mode.
inline constexpr uint8_t kStoredDefaultFields = 7;
inline constexpr uint8_t kRemovedDefaultFields = 2;

template <class Slot>
struct FieldKey {
  Slot slot;
  std::string_view key;
};

// In the order msgspec writes a map event's fields after "type".
inline constexpr std::array<FieldKey<StoredSlot>, 12> kStoredFields = {{
    {kSlotBlockHashes, "block_hashes"},
    {kSlotParent, "parent_block_hash"},
    {kSlotTokenIds, "token_ids"},
    {kSlotBlockSize, "block_size"},
    {kSlotLoraId, "lora_id"},
    {kSlotMedium, "medium"},
    {kSlotLoraName, "lora_name"},
    {kSlotCacheSalt, "cache_salt"},
    {kSlotExtraKeys, "extra_keys"},
    {kSlotGroupIdx, "group_idx"},
    {kSlotSpecKind, "kv_cache_spec_kind"},
    {kSlotSpecWindow, "kv_cache_spec_sliding_window"},
}};

inline constexpr std::array<FieldKey<RemovedSlot>, 3> kRemovedFields = {{
    {kRemovedSlotBlockHashes, "block_hashes"},
    {kRemovedSlotMedium, "medium"},
    {kRemovedSlotGroupIdx, "group_idx"},
}};

// Resolves map keys to slots, trying first the entry after the last one matched: msgspec
// writes a map event's keys in table order, so the usual key costs one comparison and an
// out-of-order or unknown key falls back to the whole table.
template <class Slot, size_t N>
class KeyCursor {
 public:
  constexpr explicit KeyCursor(const std::array<FieldKey<Slot>, N>& table) : table_(table) {}

  constexpr Slot slot(std::string_view key) {
    if (next_ < N && table_[next_].key == key) return table_[next_++].slot;
    for (size_t i = 0; i < N; ++i) {
      if (table_[i].key == key) {
        next_ = i + 1;
        return table_[i].slot;
      }
    }
    return Slot{0};
  }

 private:
  const std::array<FieldKey<Slot>, N>& table_;
  size_t next_ = 0;
};

// The key of `slot`, for map encoding and error messages; "field" for unknown slots.
template <class Slot, size_t N>
constexpr std::string_view key_for_slot(const std::array<FieldKey<Slot>, N>& table, Slot slot) {
  for (const auto& f : table) {
    if (f.slot == slot) return f.key;
  }
  return "field";
}

// Levels (the batch array is level 1) at which values sit, for skip() limits.
inline constexpr int kEventLevel = 3;
inline constexpr int kFieldLevel = 4;
// skip(max_depth) counts the skipped value as level 1.
constexpr int skip_depth(int level) { return kEnginePayloadMaxDepth - level + 1; }

}  // namespace kvmock::engine_payload
