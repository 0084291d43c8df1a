#include "core/events/engine_payload_codec.h"

#include <algorithm>
#include <bit>
#include <limits>
#include <msgpack.hpp>
#include <string>
#include <string_view>
#include <utility>

#include "core/events/msgpack_reader.h"
#include "core/tokens/block_hash.h"

namespace kvmock {
namespace {

constexpr std::string_view kStoredTag = "BlockStored";
constexpr std::string_view kRemovedTag = "BlockRemoved";
constexpr std::string_view kClearedTag = "AllBlocksCleared";

// Positional slots known to this codec (the tag is slot 0).
constexpr uint8_t kStoredSlots = 11;
constexpr uint8_t kRemovedSlots = 3;
// Fewest fields a positional event may carry: the Apr-2025 originals minus the
// deprecated lora_id, which older producers could leave off as a trailing default.
constexpr uint32_t kStoredMinFields = 4;
constexpr uint32_t kRemovedMinFields = 1;
// What a freshly built event (positional_fields == 0) gets in positional mode.
constexpr uint8_t kStoredDefaultFields = 7;
constexpr uint8_t kRemovedDefaultFields = 2;

// Levels (the batch array is level 1) at which values sit, for skip() limits.
constexpr int kEventLevel = 3;
constexpr int kFieldLevel = 4;
// skip(max_depth) counts the skipped value as level 1.
constexpr int skip_depth(int level) { return kEnginePayloadMaxDepth - level + 1; }

// Never reserve more than this many events up front: an EngineEvent is a few hundred
// bytes, and an events header may claim as many entries as there are payload bytes.
constexpr uint32_t kMaxEventReserve = 1024;

enum class EventKind : uint8_t { kStored, kRemoved, kCleared, kUnknown };

EventKind classify_tag(std::string_view tag) {
  if (tag == kStoredTag) return EventKind::kStored;
  if (tag == kRemovedTag) return EventKind::kRemoved;
  if (tag == kClearedTag) return EventKind::kCleared;
  return EventKind::kUnknown;
}

// BlockStored positional slot numbers; map keys resolve to the same numbers.
enum StoredSlot : uint8_t {
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
  kSlotIgnored = 0,
};

StoredSlot stored_slot_for_key(std::string_view key) {
  if (key == "block_hashes") return kSlotBlockHashes;
  if (key == "parent_block_hash") return kSlotParent;
  if (key == "token_ids") return kSlotTokenIds;
  if (key == "block_size") return kSlotBlockSize;
  if (key == "lora_id") return kSlotLoraId;
  if (key == "medium") return kSlotMedium;
  if (key == "lora_name") return kSlotLoraName;
  if (key == "extra_keys") return kSlotExtraKeys;
  if (key == "group_idx") return kSlotGroupIdx;
  if (key == "kv_cache_spec_kind") return kSlotSpecKind;
  if (key == "kv_cache_spec_sliding_window") return kSlotSpecWindow;
  if (key == "cache_salt") return kSlotCacheSalt;
  return kSlotIgnored;
}

std::string_view stored_slot_name(uint8_t slot) {
  switch (slot) {
    case kSlotBlockHashes:
      return "block_hashes";
    case kSlotParent:
      return "parent_block_hash";
    case kSlotTokenIds:
      return "token_ids";
    case kSlotBlockSize:
      return "block_size";
    case kSlotLoraId:
      return "lora_id";
    case kSlotMedium:
      return "medium";
    case kSlotLoraName:
      return "lora_name";
    case kSlotExtraKeys:
      return "extra_keys";
    case kSlotGroupIdx:
      return "group_idx";
    case kSlotSpecKind:
      return "kv_cache_spec_kind";
    case kSlotSpecWindow:
      return "kv_cache_spec_sliding_window";
    case kSlotCacheSalt:
      return "cache_salt";
    default:
      return "field";
  }
}

bool is_hex64(std::string_view s) {
  if (s.size() != 64) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
  });
}

uint64_t hash_from_bin(std::span<const uint8_t> bin) {
  const size_t take = std::min<size_t>(bin.size(), 8);
  uint64_t v = 0;
  for (size_t i = bin.size() - take; i < bin.size(); ++i) v = (v << 8) | bin[i];
  return v;
}

// What extra_keys carries besides its raw bytes.
struct ExtraKeysScan {
  std::vector<std::vector<uint64_t>> mm_hashes;  // empty unless some block has one
  std::optional<std::string_view> cache_salt;    // view into the scanned bytes
};

// Walks an extra_keys value (an array, one entry per block; see the header for the
// entry forms). On a malformed shape returns false and describes it in *problem (the
// text after the field name). The bytes have already passed MsgpackReader::skip, so
// only shape errors remain possible.
bool scan_extra_keys(std::span<const uint8_t> raw, const std::optional<std::string>& lora_name,
                     ExtraKeysScan& scan, std::string* problem) {
  MsgpackReader r(raw);
  uint32_t blocks = 0;
  if (r.read_array(blocks) != MsgpackStatus::kOk) {
    if (problem) *problem = " is not an array";
    return false;
  }
  auto add_mm = [&](uint32_t block, uint64_t hash) {
    if (scan.mm_hashes.empty()) scan.mm_hashes.resize(blocks);
    scan.mm_hashes[block].push_back(hash);
  };
  auto shape_error = [&](uint32_t block, std::string_view what) {
    if (problem) *problem = "[" + std::to_string(block) + "]" + std::string(what);
    return false;
  };
  constexpr int kAnyDepth = kEnginePayloadMaxDepth;
  for (uint32_t block = 0; block < blocks; ++block) {
    MsgpackType type = MsgpackType::kNil;
    if (r.peek(type) != MsgpackStatus::kOk) return shape_error(block, " is not msgpack");
    if (type == MsgpackType::kNil) {
      (void)r.read_nil();
    } else if (type == MsgpackType::kArray) {
      // A vLLM extra-keys tuple: LoRA name, mm identifiers, cache salt, prompt-embeds hashes.
      uint32_t items = 0;
      (void)r.read_array(items);
      for (uint32_t j = 0; j < items; ++j) {
        MsgpackType item_type = MsgpackType::kNil;
        (void)r.peek(item_type);
        if (item_type == MsgpackType::kStr) {
          std::string_view s;
          (void)r.read_str(s);
          if (is_hex64(s)) {
            add_mm(block, hash_mm_identifier(s));
          } else if (block == 0 && !scan.cache_salt && (!lora_name || s != *lora_name)) {
            scan.cache_salt = s;
          }
        } else if (item_type == MsgpackType::kArray) {
          // (identifier, offsets...) when its first item is a string.
          uint32_t parts = 0;
          (void)r.read_array(parts);
          uint32_t skipped = 0;
          MsgpackType first = MsgpackType::kNil;
          if (parts > 0 && r.peek(first) == MsgpackStatus::kOk && first == MsgpackType::kStr) {
            std::string_view id;
            (void)r.read_str(id);
            add_mm(block, hash_mm_identifier(id));
            skipped = 1;
          }
          for (; skipped < parts; ++skipped) (void)r.skip(kAnyDepth);
        } else {
          (void)r.skip(kAnyDepth);
        }
      }
    } else if (type == MsgpackType::kMap) {
      // block_mm_infos: {mm_objects: [{mm_hash, offsets}, ...]}.
      uint32_t keys = 0;
      (void)r.read_map(keys);
      for (uint32_t k = 0; k < keys; ++k) {
        std::string_view key;
        const bool string_key = r.read_str(key) == MsgpackStatus::kOk;
        if (!string_key) (void)r.skip(kAnyDepth);
        if (!string_key || key != "mm_objects") {
          (void)r.skip(kAnyDepth);
          continue;
        }
        if (r.next_is_nil()) {
          (void)r.read_nil();
          continue;
        }
        uint32_t objects = 0;
        if (r.read_array(objects) != MsgpackStatus::kOk) {
          return shape_error(block, ".mm_objects is not an array");
        }
        for (uint32_t o = 0; o < objects; ++o) {
          uint32_t fields = 0;
          if (r.read_map(fields) != MsgpackStatus::kOk) {
            return shape_error(block, ".mm_objects[" + std::to_string(o) + "] is not a map");
          }
          for (uint32_t f = 0; f < fields; ++f) {
            std::string_view field;
            const bool string_key = r.read_str(field) == MsgpackStatus::kOk;
            if (!string_key) (void)r.skip(kAnyDepth);
            if (!string_key || field != "mm_hash") {
              (void)r.skip(kAnyDepth);
              continue;
            }
            MsgpackInt hash;
            std::string_view identifier;
            if (r.read_int(hash) == MsgpackStatus::kOk) {
              add_mm(block, hash.bits);
            } else if (r.read_str(identifier) == MsgpackStatus::kOk) {
              add_mm(block, hash_mm_identifier(identifier));
            } else {
              return shape_error(block, ".mm_objects[" + std::to_string(o) +
                                            "].mm_hash is not an int or a string");
            }
          }
        }
      }
    } else {
      return shape_error(block, std::string(" is ") + std::string(msgpack_type_phrase(type)) +
                                    ", expected nil, an array or a map");
    }
  }
  return true;
}

// ---------------------------------------------------------------------------------------
// Decoder

class PayloadDecoder {
 public:
  explicit PayloadDecoder(std::span<const uint8_t> payload) : r_(payload) {}

  Result<EngineBatch> run() {
    if (!decode_batch()) return std::move(error_);
    return std::move(batch_);
  }

 private:
  // Where a value sits, for messages: "token_ids[3]", "block_size", "extra_keys".
  struct Field {
    std::string_view name;
    int64_t index = -1;
  };

  std::string where(Field f) const {
    std::string s(f.name);
    if (f.index >= 0) s += "[" + std::to_string(f.index) + "]";
    return s;
  }

  std::string prefix() const {
    if (!in_events_) return "batch: ";
    std::string p = "event " + std::to_string(event_index_);
    if (!event_name_.empty()) p += " (" + std::string(event_name_) + ")";
    return p + ": ";
  }

  bool fail(std::string_view reason, std::string detail) {
    error_ = make_error(reason, prefix() + detail);
    return false;
  }

  // Turns a reader status into an error. `reason` and `expected` describe a wrong type.
  bool fail_status(MsgpackStatus status, Field f, std::string_view reason,
                   std::string_view expected) {
    switch (status) {
      case MsgpackStatus::kOk:
        break;
      case MsgpackStatus::kTruncated:
        return fail("truncated", "input ends inside " + where(f) + " (at byte " +
                                     std::to_string(r_.offset()) + ")");
      case MsgpackStatus::kInvalid:
        return fail("msgpack", where(f) + " starts with the reserved byte 0xc1 (at byte " +
                                   std::to_string(r_.offset()) + ")");
      case MsgpackStatus::kTooDeep:
        return fail("too_deep", where(f) + " nests deeper than " +
                                    std::to_string(kEnginePayloadMaxDepth) + " levels");
      case MsgpackStatus::kWrongType: {
        MsgpackType type = MsgpackType::kNil;
        (void)r_.peek(type);
        return fail(reason, where(f) + " is " + std::string(msgpack_type_phrase(type)) +
                                ", expected " + std::string(expected));
      }
    }
    return fail("msgpack", "unexpected reader state");
  }

  bool skip(Field f, int level) {
    const MsgpackStatus s = r_.skip(skip_depth(level));
    return s == MsgpackStatus::kOk || fail_status(s, f, "bad_event", "a value");
  }

  // ---- scalars

  bool read_hash(uint64_t& out, Field f) {
    MsgpackType type = MsgpackType::kNil;
    MsgpackStatus s = r_.peek(type);
    if (s == MsgpackStatus::kOk && type == MsgpackType::kInt) {
      MsgpackInt v;
      s = r_.read_int(v);
      if (s == MsgpackStatus::kOk) {
        saw_negative_hash_ |= v.negative;
        out = v.bits;
        return true;
      }
    } else if (s == MsgpackStatus::kOk && type == MsgpackType::kBin) {
      std::span<const uint8_t> bin;
      s = r_.read_bin(bin);
      if (s == MsgpackStatus::kOk) {
        if (bin.empty()) return fail("bad_hash", where(f) + " is an empty bin");
        saw_bin_hash_ = true;
        out = hash_from_bin(bin);
        return true;
      }
    } else if (s == MsgpackStatus::kOk) {
      s = MsgpackStatus::kWrongType;
    }
    return fail_status(s, f, "bad_hash", "an int or a bin");
  }

  bool read_hashes(std::vector<uint64_t>& out, Field f) {
    uint32_t n = 0;
    const MsgpackStatus s = r_.read_array(n);
    if (s != MsgpackStatus::kOk) return fail_status(s, f, "bad_event", "an array");
    out.clear();
    out.resize(n);
    for (uint32_t i = 0; i < n; ++i) {
      if (!read_hash(out[i], Field{f.name, i})) return false;
    }
    return true;
  }

  bool read_optional_hash(std::optional<uint64_t>& out, Field f) {
    if (r_.next_is_nil()) {
      (void)r_.read_nil();
      out.reset();
      return true;
    }
    uint64_t h = 0;
    if (!read_hash(h, f)) return false;
    out = h;
    return true;
  }

  bool read_tokens(std::vector<TokenId>& out, Field f) {
    uint32_t n = 0;
    MsgpackStatus s = r_.read_array(n);
    if (s != MsgpackStatus::kOk) return fail_status(s, f, "bad_event", "an array");
    out.clear();
    out.resize(n);
    for (uint32_t i = 0; i < n; ++i) {
      MsgpackInt v;
      s = r_.read_int(v);
      if (s != MsgpackStatus::kOk) return fail_status(s, Field{f.name, i}, "bad_tokens", "uint32");
      if (v.negative || v.bits > std::numeric_limits<uint32_t>::max()) {
        return fail("bad_tokens",
                    where(Field{f.name, i}) + " is " +
                        (v.negative ? std::to_string(v.as_signed()) : std::to_string(v.bits)) +
                        ", expected uint32");
      }
      out[i] = static_cast<TokenId>(v.bits);
    }
    return true;
  }

  bool read_u32(uint32_t& out, Field f) {
    MsgpackInt v;
    const MsgpackStatus s = r_.read_int(v);
    if (s != MsgpackStatus::kOk) return fail_status(s, f, "bad_event", "uint32");
    if (v.negative || v.bits > std::numeric_limits<uint32_t>::max()) {
      return fail("bad_event",
                  where(f) + " is " +
                      (v.negative ? std::to_string(v.as_signed()) : std::to_string(v.bits)) +
                      ", expected uint32");
    }
    out = static_cast<uint32_t>(v.bits);
    return true;
  }

  // nil or an int that fits int64.
  bool read_optional_i64(std::optional<int64_t>& out, Field f, std::string_view reason) {
    if (r_.next_is_nil()) {
      (void)r_.read_nil();
      out.reset();
      return true;
    }
    MsgpackInt v;
    const MsgpackStatus s = r_.read_int(v);
    if (s != MsgpackStatus::kOk) return fail_status(s, f, reason, "an int or nil");
    if (!v.negative && v.bits > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return fail(reason, where(f) + " is " + std::to_string(v.bits) + ", expected int64");
    }
    out = v.as_signed();
    return true;
  }

  bool read_optional_str(std::optional<std::string>& out, Field f) {
    if (r_.next_is_nil()) {
      (void)r_.read_nil();
      out.reset();
      return true;
    }
    std::string_view s;
    const MsgpackStatus st = r_.read_str(s);
    if (st != MsgpackStatus::kOk) return fail_status(st, f, "bad_event", "a string or nil");
    out.emplace(s);
    return true;
  }

  // Slot 7: lora_name (string or nil), or SGLang's BlockStoredWithMetadata map.
  bool read_lora_name_or_metadata(EngineBlockStored& ev) {
    const Field f{"lora_name"};
    MsgpackType type = MsgpackType::kNil;
    if (r_.peek(type) == MsgpackStatus::kOk && type == MsgpackType::kMap) {
      uint32_t n = 0;
      MsgpackStatus s = r_.read_map(n);
      if (s != MsgpackStatus::kOk) return fail_status(s, Field{"metadata"}, "bad_event", "a map");
      for (uint32_t i = 0; i < n; ++i) {
        std::string_view key;
        if (!read_key(key, kFieldLevel + 1)) return false;
        if (key == "cache_salt") {
          if (!read_optional_str(ev.cache_salt, Field{"metadata.cache_salt"})) return false;
        } else if (!skip(Field{"metadata"}, kFieldLevel + 1)) {
          return false;
        }
      }
      ev.lora_name.reset();
      return true;
    }
    return read_optional_str(ev.lora_name, f);
  }

  // Keeps the raw bytes of extra_keys; analysed once the whole event is read.
  bool read_extra_keys(EngineBlockStored& ev) {
    const Field f{"extra_keys"};
    if (r_.next_is_nil()) {
      (void)r_.read_nil();
      ev.extra_keys_msgpack.reset();
      return true;
    }
    MsgpackType type = MsgpackType::kNil;
    MsgpackStatus s = r_.peek(type);
    if (s == MsgpackStatus::kOk && type != MsgpackType::kArray) s = MsgpackStatus::kWrongType;
    if (s != MsgpackStatus::kOk) return fail_status(s, f, "bad_event", "an array or nil");
    const size_t start = r_.offset();
    if (!skip(f, kFieldLevel)) return false;
    const auto raw = r_.slice(start, r_.offset());
    ev.extra_keys_msgpack.emplace(raw.begin(), raw.end());
    return true;
  }

  bool finish_extra_keys(EngineBlockStored& ev) {
    if (!ev.extra_keys_msgpack) return true;
    ExtraKeysScan scan;
    std::string problem;
    if (!scan_extra_keys(*ev.extra_keys_msgpack, ev.lora_name, scan, &problem)) {
      return fail("bad_event", "extra_keys" + problem);
    }
    ev.mm_hashes = std::move(scan.mm_hashes);
    if (!ev.cache_salt && scan.cache_salt) ev.cache_salt.emplace(*scan.cache_salt);
    return true;
  }

  // ---- events

  bool read_stored_slot(uint8_t slot, EngineBlockStored& ev) {
    const Field f{stored_slot_name(slot)};
    switch (slot) {
      case kSlotBlockHashes:
        return read_hashes(ev.block_hashes, f);
      case kSlotParent:
        return read_optional_hash(ev.parent_block_hash, f);
      case kSlotTokenIds:
        return read_tokens(ev.token_ids, f);
      case kSlotBlockSize:
        return read_u32(ev.block_size, f);
      case kSlotLoraId:
        return read_optional_i64(ev.lora_id, f, "bad_event");
      case kSlotMedium:
        return read_optional_str(ev.medium, f);
      case kSlotLoraName:
        return read_lora_name_or_metadata(ev);
      case kSlotExtraKeys:
        return read_extra_keys(ev);
      case kSlotGroupIdx:
        return read_optional_i64(ev.group_idx, f, "bad_event");
      case kSlotSpecKind:
        return read_optional_str(ev.kv_cache_spec_kind, f);
      case kSlotSpecWindow:
        return read_optional_i64(ev.kv_cache_spec_sliding_window, f, "bad_event");
      case kSlotCacheSalt:
        return read_optional_str(ev.cache_salt, f);
      default:
        return skip(Field{"field"}, kFieldLevel);
    }
  }

  bool read_removed_slot(uint8_t slot, EngineBlockRemoved& ev) {
    switch (slot) {
      case 1:
        return read_hashes(ev.block_hashes, Field{"block_hashes"});
      case 2:
        return read_optional_str(ev.medium, Field{"medium"});
      case 3:
        return read_optional_i64(ev.group_idx, Field{"group_idx"}, "bad_event");
      default:
        return skip(Field{"field"}, kFieldLevel);
    }
  }

  static uint8_t removed_slot_for_key(std::string_view key) {
    if (key == "block_hashes") return 1;
    if (key == "medium") return 2;
    if (key == "group_idx") return 3;
    return 0;
  }

  void note_encoding(EngineEventEncoding encoding) {
    if (!saw_event_) batch_.encoding = encoding;
    saw_event_ = true;
  }

  bool decode_positional_event() {
    uint32_t n = 0;
    const MsgpackStatus header = r_.read_array(n);
    if (header != MsgpackStatus::kOk) return fail_status(header, Field{"event"}, "bad_event", "");
    if (n == 0) return fail("bad_event", "empty array, expected a tag first");
    std::string_view tag;
    const MsgpackStatus s = r_.read_str(tag);
    if (s != MsgpackStatus::kOk) return fail_status(s, Field{"tag"}, "bad_event", "a string");
    const uint32_t fields = n - 1;
    event_name_ = tag;
    switch (classify_tag(tag)) {
      case EventKind::kUnknown:
        ++batch_.unknown_events;
        for (uint32_t i = 0; i < fields; ++i) {
          if (!skip(Field{"field"}, kFieldLevel)) return false;
        }
        return true;
      case EventKind::kStored: {
        if (fields < kStoredMinFields) {
          return fail("bad_event", "has " + std::to_string(fields) + " fields, expected at least " +
                                       std::to_string(kStoredMinFields));
        }
        note_encoding(EngineEventEncoding::kPositional);
        auto& ev = batch_.events.emplace_back(std::in_place_type<EngineBlockStored>);
        auto& stored = std::get<EngineBlockStored>(ev);
        stored.positional_fields = static_cast<uint8_t>(std::min<uint32_t>(fields, kStoredSlots));
        for (uint32_t slot = 1; slot <= fields; ++slot) {
          const uint8_t known = slot <= kStoredSlots ? static_cast<uint8_t>(slot) : 0;
          if (!read_stored_slot(known, stored)) return false;
        }
        return finish_extra_keys(stored);
      }
      case EventKind::kRemoved: {
        if (fields < kRemovedMinFields) {
          return fail("bad_event", "has no fields, expected at least block_hashes");
        }
        note_encoding(EngineEventEncoding::kPositional);
        auto& ev = batch_.events.emplace_back(std::in_place_type<EngineBlockRemoved>);
        auto& removed = std::get<EngineBlockRemoved>(ev);
        removed.positional_fields = static_cast<uint8_t>(std::min<uint32_t>(fields, kRemovedSlots));
        for (uint32_t slot = 1; slot <= fields; ++slot) {
          const uint8_t known = slot <= kRemovedSlots ? static_cast<uint8_t>(slot) : 0;
          if (!read_removed_slot(known, removed)) return false;
        }
        return true;
      }
      case EventKind::kCleared:
        note_encoding(EngineEventEncoding::kPositional);
        batch_.events.emplace_back(std::in_place_type<EngineAllBlocksCleared>);
        for (uint32_t i = 0; i < fields; ++i) {
          if (!skip(Field{"field"}, kFieldLevel)) return false;
        }
        return true;
    }
    return true;
  }

  // Consumes a map key at `level`. A non-string key is skipped and reported as the empty
  // string, which matches no known key, so its value is skipped like any unknown one.
  bool read_key(std::string_view& key, int level = kFieldLevel) {
    key = {};
    MsgpackType type = MsgpackType::kNil;
    const MsgpackStatus s = r_.peek(type);
    if (s != MsgpackStatus::kOk) return fail_status(s, Field{"key"}, "bad_event", "a key");
    if (type == MsgpackType::kStr) {
      (void)r_.read_str(key);
      return true;
    }
    return skip(Field{"key"}, level);
  }

  bool decode_map_event() {
    const size_t map_start = r_.offset();
    uint32_t n = 0;
    const MsgpackStatus header = r_.read_map(n);
    if (header != MsgpackStatus::kOk) return fail_status(header, Field{"event"}, "bad_event", "");
    const size_t body_start = r_.offset();
    // msgspec writes "type" first, but key order is not part of the contract.
    std::string_view tag;
    bool found = false;
    for (uint32_t i = 0; i < n && !found; ++i) {
      std::string_view key;
      if (!read_key(key)) return false;
      if (key == "type") {
        const MsgpackStatus s = r_.read_str(tag);
        if (s != MsgpackStatus::kOk) return fail_status(s, Field{"type"}, "bad_event", "a string");
        found = true;
      } else if (!skip(Field{key.empty() ? std::string_view("value") : key}, kFieldLevel)) {
        return false;
      }
    }
    if (!found) return fail("bad_event", "map has no \"type\" key");
    event_name_ = tag;
    const EventKind kind = classify_tag(tag);
    if (kind == EventKind::kUnknown) {
      ++batch_.unknown_events;
      r_.seek(map_start);
      return skip(Field{"event"}, kEventLevel);
    }
    note_encoding(EngineEventEncoding::kMap);
    if (kind == EventKind::kCleared) {
      batch_.events.emplace_back(std::in_place_type<EngineAllBlocksCleared>);
      r_.seek(map_start);
      return skip(Field{"event"}, kEventLevel);
    }
    r_.seek(body_start);
    if (kind == EventKind::kStored) {
      auto& ev = batch_.events.emplace_back(std::in_place_type<EngineBlockStored>);
      auto& stored = std::get<EngineBlockStored>(ev);
      bool have_hashes = false, have_tokens = false, have_size = false;
      for (uint32_t i = 0; i < n; ++i) {
        std::string_view key;
        if (!read_key(key)) return false;
        const StoredSlot slot = key == "type" ? kSlotIgnored : stored_slot_for_key(key);
        have_hashes |= slot == kSlotBlockHashes;
        have_tokens |= slot == kSlotTokenIds;
        have_size |= slot == kSlotBlockSize;
        if (!read_stored_slot(slot, stored)) return false;
      }
      if (!have_hashes) return fail("bad_event", "missing block_hashes");
      if (!have_tokens) return fail("bad_event", "missing token_ids");
      if (!have_size) return fail("bad_event", "missing block_size");
      return finish_extra_keys(stored);
    }
    auto& ev = batch_.events.emplace_back(std::in_place_type<EngineBlockRemoved>);
    auto& removed = std::get<EngineBlockRemoved>(ev);
    bool have_hashes = false;
    for (uint32_t i = 0; i < n; ++i) {
      std::string_view key;
      if (!read_key(key)) return false;
      const uint8_t slot = key == "type" ? 0 : removed_slot_for_key(key);
      have_hashes |= slot == 1;
      if (!read_removed_slot(slot, removed)) return false;
    }
    if (!have_hashes) return fail("bad_event", "missing block_hashes");
    return true;
  }

  bool decode_event(uint32_t index) {
    event_index_ = index;
    event_name_ = {};
    MsgpackType type = MsgpackType::kNil;
    MsgpackStatus s = r_.peek(type);
    if (s == MsgpackStatus::kOk && type == MsgpackType::kArray) return decode_positional_event();
    if (s == MsgpackStatus::kOk && type == MsgpackType::kMap) return decode_map_event();
    if (s == MsgpackStatus::kOk) s = MsgpackStatus::kWrongType;
    return fail_status(s, Field{"event"}, "bad_event", "an array or a map");
  }

  // ---- batch

  bool decode_batch() {
    MsgpackType type = MsgpackType::kNil;
    MsgpackStatus s = r_.peek(type);
    if (s == MsgpackStatus::kOk && type != MsgpackType::kArray) {
      return fail("not_array", "payload is " + std::string(msgpack_type_phrase(type)) +
                                   ", expected the array [ts, events, dp_rank]");
    }
    uint32_t n = 0;
    if (s == MsgpackStatus::kOk) s = r_.read_array(n);
    if (s != MsgpackStatus::kOk) return fail_status(s, Field{"batch"}, "not_array", "an array");
    if (n < 2) {
      return fail("bad_batch", "has " + std::to_string(n) +
                                   " elements, expected [ts, events] or [ts, events, dp_rank]");
    }
    if (!read_ts()) return false;

    uint32_t events = 0;
    s = r_.read_array(events);
    if (s != MsgpackStatus::kOk) return fail_status(s, Field{"events"}, "bad_batch", "an array");
    batch_.events.reserve(std::min(events, kMaxEventReserve));
    in_events_ = true;
    for (uint32_t i = 0; i < events; ++i) {
      if (!decode_event(i)) return false;
    }
    in_events_ = false;

    if (n >= 3 && !read_optional_i64(batch_.dp_rank, Field{"dp_rank"}, "bad_batch")) return false;
    for (uint32_t i = 3; i < n; ++i) {
      if (!skip(Field{"batch element", i}, 2)) return false;
    }
    if (!r_.at_end()) {
      return fail("trailing_bytes", std::to_string(r_.remaining()) +
                                        " bytes follow the batch (at byte " +
                                        std::to_string(r_.offset()) + ")");
    }
    if (saw_bin_hash_) {
      batch_.hash_encoding = EngineHashEncoding::kBytes32;
    } else if (saw_negative_hash_) {
      batch_.hash_encoding = EngineHashEncoding::kInt64;
    }
    return true;
  }

  bool read_ts() {
    MsgpackType type = MsgpackType::kNil;
    MsgpackStatus s = r_.peek(type);
    if (s == MsgpackStatus::kOk && type == MsgpackType::kFloat) {
      s = r_.read_float(batch_.ts);
      if (s == MsgpackStatus::kOk) return true;
    } else if (s == MsgpackStatus::kOk && type == MsgpackType::kInt) {
      MsgpackInt v;
      s = r_.read_int(v);
      if (s == MsgpackStatus::kOk) {
        batch_.ts = v.negative ? static_cast<double>(v.as_signed()) : static_cast<double>(v.bits);
        return true;
      }
    } else if (s == MsgpackStatus::kOk) {
      s = MsgpackStatus::kWrongType;
    }
    return fail_status(s, Field{"ts"}, "bad_batch", "a float or an int");
  }

  MsgpackReader r_;
  EngineBatch batch_;
  Error error_;
  uint32_t event_index_ = 0;
  std::string_view event_name_;  // tag of the event being read, once known
  bool in_events_ = false;
  bool saw_event_ = false;
  bool saw_negative_hash_ = false;
  bool saw_bin_hash_ = false;
};

// ---------------------------------------------------------------------------------------
// Encoder

// msgpack::packer's stream: appends to a byte vector.
struct VectorSink {
  std::vector<uint8_t>* out;
  void write(const char* data, size_t size) {
    const auto* p = reinterpret_cast<const uint8_t*>(data);
    out->insert(out->end(), p, p + size);
  }
};

class PayloadEncoder {
 public:
  PayloadEncoder(const EngineEncodeOptions& options, std::vector<uint8_t>& out)
      : options_(options), out_(out), sink_{&out}, pk_(sink_) {}

  void batch(const EngineBatch& b) {
    pk_.pack_array(3);
    float64(b.ts);
    pk_.pack_array(static_cast<uint32_t>(b.events.size()));
    for (const EngineEvent& ev : b.events) {
      std::visit([this](const auto& e) { event(e); }, ev);
    }
    if (b.dp_rank) {
      pk_.pack_int64(*b.dp_rank);
    } else {
      pk_.pack_nil();
    }
  }

 private:
  bool map_mode() const { return options_.encoding == EngineEventEncoding::kMap; }

  // Always 0xcb: msgpack::packer::pack_double writes integral values as ints, which
  // msgspec never does.
  void float64(double v) {
    const uint64_t bits = std::bit_cast<uint64_t>(v);
    uint8_t buf[9];
    buf[0] = 0xcb;
    for (int i = 0; i < 8; ++i) buf[1 + i] = static_cast<uint8_t>(bits >> (56 - 8 * i));
    out_.insert(out_.end(), buf, buf + 9);
  }

  void str(std::string_view s) {
    pk_.pack_str(static_cast<uint32_t>(s.size()));
    pk_.pack_str_body(s.data(), static_cast<uint32_t>(s.size()));
  }

  void key(std::string_view k) { str(k); }

  void optional_str(const std::optional<std::string>& s) {
    if (s) {
      str(*s);
    } else {
      pk_.pack_nil();
    }
  }

  void optional_i64(const std::optional<int64_t>& v) {
    if (v) {
      pk_.pack_int64(*v);
    } else {
      pk_.pack_nil();
    }
  }

  void hash(uint64_t h) {
    switch (options_.hashes) {
      case EngineHashEncoding::kUint64:
        pk_.pack_uint64(h);
        return;
      case EngineHashEncoding::kInt64:
        pk_.pack_int64(static_cast<int64_t>(h));
        return;
      case EngineHashEncoding::kBytes32: {
        char digest[32] = {};
        for (int i = 0; i < 8; ++i) digest[31 - i] = static_cast<char>(h >> (8 * i));
        pk_.pack_bin(32);
        pk_.pack_bin_body(digest, 32);
        return;
      }
    }
  }

  void hashes(const std::vector<uint64_t>& hs) {
    pk_.pack_array(static_cast<uint32_t>(hs.size()));
    for (uint64_t h : hs) hash(h);
  }

  void optional_hash(const std::optional<uint64_t>& h) {
    if (h) {
      hash(*h);
    } else {
      pk_.pack_nil();
    }
  }

  void tokens(const std::vector<TokenId>& ts) {
    pk_.pack_array(static_cast<uint32_t>(ts.size()));
    for (TokenId t : ts) pk_.pack_uint32(t);
  }

  void raw(const std::vector<uint8_t>& bytes) {
    out_.insert(out_.end(), bytes.begin(), bytes.end());
  }

  // The salt must be written explicitly unless extra_keys already yields it on decode.
  static bool salt_needs_field(const EngineBlockStored& e) {
    if (!e.cache_salt) return false;
    if (!e.extra_keys_msgpack) return true;
    ExtraKeysScan scan;
    if (!scan_extra_keys(*e.extra_keys_msgpack, e.lora_name, scan, nullptr)) return true;
    return !scan.cache_salt || *scan.cache_salt != *e.cache_salt;
  }

  void event(const EngineBlockStored& e) {
    const bool write_salt = salt_needs_field(e);
    if (map_mode()) {
      const uint32_t pairs = 8 + write_salt + e.extra_keys_msgpack.has_value() +
                             e.group_idx.has_value() + e.kv_cache_spec_kind.has_value() +
                             e.kv_cache_spec_sliding_window.has_value();
      pk_.pack_map(pairs);
      key("type");
      str(kStoredTag);
      key("block_hashes");
      hashes(e.block_hashes);
      key("parent_block_hash");
      optional_hash(e.parent_block_hash);
      key("token_ids");
      tokens(e.token_ids);
      key("block_size");
      pk_.pack_uint32(e.block_size);
      key("lora_id");
      optional_i64(e.lora_id);
      key("medium");
      optional_str(e.medium);
      key("lora_name");
      optional_str(e.lora_name);
      if (write_salt) {
        key("cache_salt");
        str(*e.cache_salt);
      }
      if (e.extra_keys_msgpack) {
        key("extra_keys");
        raw(*e.extra_keys_msgpack);
      }
      if (e.group_idx) {
        key("group_idx");
        pk_.pack_int64(*e.group_idx);
      }
      if (e.kv_cache_spec_kind) {
        key("kv_cache_spec_kind");
        str(*e.kv_cache_spec_kind);
      }
      if (e.kv_cache_spec_sliding_window) {
        key("kv_cache_spec_sliding_window");
        pk_.pack_int64(*e.kv_cache_spec_sliding_window);
      }
      return;
    }
    // SGLang's BlockStoredWithMetadata puts the salt where lora_name would be.
    const bool salt_in_slot7 = write_salt && !e.lora_name;
    uint8_t last = kSlotBlockSize;
    if (e.lora_id) last = kSlotLoraId;
    if (e.medium) last = kSlotMedium;
    if (e.lora_name || salt_in_slot7) last = kSlotLoraName;
    if (e.extra_keys_msgpack) last = kSlotExtraKeys;
    if (e.group_idx) last = kSlotGroupIdx;
    if (e.kv_cache_spec_kind) last = kSlotSpecKind;
    if (e.kv_cache_spec_sliding_window) last = kSlotSpecWindow;
    const uint8_t wanted = e.positional_fields == 0 ? kStoredDefaultFields : e.positional_fields;
    const uint8_t fields = std::min(std::max(last, wanted), kStoredSlots);
    pk_.pack_array(1u + fields);
    str(kStoredTag);
    for (uint8_t slot = 1; slot <= fields; ++slot) {
      switch (slot) {
        case kSlotBlockHashes:
          hashes(e.block_hashes);
          break;
        case kSlotParent:
          optional_hash(e.parent_block_hash);
          break;
        case kSlotTokenIds:
          tokens(e.token_ids);
          break;
        case kSlotBlockSize:
          pk_.pack_uint32(e.block_size);
          break;
        case kSlotLoraId:
          optional_i64(e.lora_id);
          break;
        case kSlotMedium:
          optional_str(e.medium);
          break;
        case kSlotLoraName:
          if (salt_in_slot7) {
            pk_.pack_map(1);
            key("cache_salt");
            str(*e.cache_salt);
          } else {
            optional_str(e.lora_name);
          }
          break;
        case kSlotExtraKeys:
          if (e.extra_keys_msgpack) {
            raw(*e.extra_keys_msgpack);
          } else {
            pk_.pack_nil();
          }
          break;
        case kSlotGroupIdx:
          optional_i64(e.group_idx);
          break;
        case kSlotSpecKind:
          optional_str(e.kv_cache_spec_kind);
          break;
        case kSlotSpecWindow:
          optional_i64(e.kv_cache_spec_sliding_window);
          break;
        default:
          break;
      }
    }
  }

  void event(const EngineBlockRemoved& e) {
    if (map_mode()) {
      pk_.pack_map(3 + e.group_idx.has_value());
      key("type");
      str(kRemovedTag);
      key("block_hashes");
      hashes(e.block_hashes);
      key("medium");
      optional_str(e.medium);
      if (e.group_idx) {
        key("group_idx");
        pk_.pack_int64(*e.group_idx);
      }
      return;
    }
    uint8_t last = 1;
    if (e.medium) last = 2;
    if (e.group_idx) last = 3;
    const uint8_t wanted = e.positional_fields == 0 ? kRemovedDefaultFields : e.positional_fields;
    const uint8_t fields = std::min(std::max(last, wanted), kRemovedSlots);
    pk_.pack_array(1u + fields);
    str(kRemovedTag);
    hashes(e.block_hashes);
    if (fields >= 2) optional_str(e.medium);
    if (fields >= 3) optional_i64(e.group_idx);
  }

  void event(const EngineAllBlocksCleared&) {
    if (map_mode()) {
      pk_.pack_map(1);
      key("type");
    } else {
      pk_.pack_array(1);
    }
    str(kClearedTag);
  }

  const EngineEncodeOptions& options_;
  std::vector<uint8_t>& out_;
  VectorSink sink_;
  msgpack::packer<VectorSink> pk_;
};

// A rough upper bound of the encoded size, to reserve once.
size_t estimate_size(const EngineBatch& batch) {
  size_t n = 32;
  for (const EngineEvent& ev : batch.events) {
    n += 160;
    if (const auto* s = std::get_if<EngineBlockStored>(&ev)) {
      n += s->block_hashes.size() * 33 + s->token_ids.size() * 5;
      if (s->extra_keys_msgpack) n += s->extra_keys_msgpack->size();
    } else if (const auto* r = std::get_if<EngineBlockRemoved>(&ev)) {
      n += r->block_hashes.size() * 33;
    }
  }
  return n;
}

}  // namespace

Result<EngineBatch> decode_engine_payload(std::span<const uint8_t> payload) {
  return PayloadDecoder(payload).run();
}

void encode_engine_payload(const EngineBatch& batch, const EngineEncodeOptions& options,
                           std::vector<uint8_t>& out) {
  out.reserve(out.size() + estimate_size(batch));
  PayloadEncoder(options, out).batch(batch);
}

std::vector<uint8_t> encode_engine_payload(const EngineBatch& batch,
                                           const EngineEncodeOptions& options) {
  std::vector<uint8_t> out;
  encode_engine_payload(batch, options, out);
  return out;
}

std::vector<uint8_t> reencode_engine_payload(const EngineBatch& batch) {
  return encode_engine_payload(batch, EngineEncodeOptions{batch.encoding, batch.hash_encoding});
}

}  // namespace kvmock
