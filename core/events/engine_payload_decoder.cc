// The decoder half of engine_payload_codec.h: reads a payload value by value with
// MsgpackReader, so nothing is allocated from a claimed length before its bytes exist.
#include <algorithm>
#include <array>
#include <limits>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>

#include "core/events/engine_extra_keys.h"
#include "core/events/engine_payload_codec.h"
#include "core/events/engine_payload_format.h"
#include "core/events/msgpack_reader.h"

namespace kvmock {
namespace {

using namespace engine_payload;

// Never reserve more than this many events up front: an EngineEvent is a few hundred
// bytes, and an events header may claim as many entries as there are payload bytes.
constexpr uint32_t kMaxEventReserve = 1024;

uint64_t hash_from_bin(std::span<const uint8_t> bin) {
  const size_t take = std::min<size_t>(bin.size(), 8);
  uint64_t v = 0;
  for (size_t i = bin.size() - take; i < bin.size(); ++i) v = (v << 8) | bin[i];
  return v;
}

// Sets `value` to T{} except the `kept` members, which keep what they hold, capacity
// included. Whatever members are added to T later go back to their defaults too.
template <typename T, typename... Members>
void reset_except(T& value, Members T::*... kept) {
  std::tuple<Members...> saved{std::move(value.*kept)...};
  value = T{};
  std::apply([&](Members&... held) { ((value.*kept = std::move(held)), ...); }, saved);
}

// Empties a decoded event for reuse, keeping the capacity of the vectors a steady stream
// refills every time (hashes, tokens), so a reused batch allocates nothing per event.
void recycle(EngineBlockStored& ev) {
  reset_except(ev, &EngineBlockStored::block_hashes, &EngineBlockStored::token_ids);
  ev.block_hashes.clear();
  ev.token_ids.clear();
}
void recycle(EngineBlockRemoved& ev) {
  reset_except(ev, &EngineBlockRemoved::block_hashes);
  ev.block_hashes.clear();
}
void recycle(EngineAllBlocksCleared&) {}

class PayloadDecoder {
 public:
  // Decodes into `batch`, whose events are overwritten in place where their kind matches.
  PayloadDecoder(std::span<const uint8_t> payload, EngineBatch& batch)
      : r_(payload), batch_(batch) {
    reset_except(batch_, &EngineBatch::events);  // next_event() reuses or replaces these
  }

  Result<bool> run() {
    const bool ok = decode_batch();
    // Events left over from a longer earlier batch (or after a failure) are not part of
    // this one.
    batch_.events.erase(batch_.events.begin() + static_cast<std::ptrdiff_t>(events_used_),
                        batch_.events.end());
    if (!ok) return std::move(error_);
    return true;
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

  // The wire forms of the hashes in one field. A map may repeat a key, the last value
  // winning, so a field's forms are replaced when it is read again and reach the batch's
  // hash_encoding only once its event is complete.
  struct HashForms {
    bool negative = false;
    bool bin = false;
  };
  enum HashField : uint8_t { kHashFieldBlockHashes, kHashFieldParent, kHashFieldCount };

  bool read_hash(uint64_t& out, Field f, HashForms& forms) {
    if (r_.read_uint64_word(out)) return true;
    MsgpackType type = MsgpackType::kNil;
    MsgpackStatus s = r_.peek(type);
    if (s == MsgpackStatus::kOk && type == MsgpackType::kInt) {
      MsgpackInt v;
      s = r_.read_int(v);
      if (s == MsgpackStatus::kOk) {
        forms.negative |= v.negative;
        out = v.bits;
        return true;
      }
    } else if (s == MsgpackStatus::kOk && type == MsgpackType::kBin) {
      std::span<const uint8_t> bin;
      s = r_.read_bin(bin);
      if (s == MsgpackStatus::kOk) {
        if (bin.empty()) return fail("bad_hash", where(f) + " is an empty bin");
        forms.bin = true;
        out = hash_from_bin(bin);
        return true;
      }
    } else if (s == MsgpackStatus::kOk) {
      s = MsgpackStatus::kWrongType;
    }
    return fail_status(s, f, "bad_hash", "an int or a bin");
  }

  bool read_hashes(std::vector<uint64_t>& out, Field f, HashField field) {
    uint32_t n = 0;
    const MsgpackStatus s = r_.read_array(n);
    if (s != MsgpackStatus::kOk) return fail_status(s, f, "bad_event", "an array");
    HashForms& forms = event_hash_forms_[field];
    forms = {};
    out.clear();
    out.resize(n);
    for (uint32_t i = 0; i < n; ++i) {
      if (!read_hash(out[i], Field{f.name, i}, forms)) return false;
    }
    return true;
  }

  bool read_optional_hash(std::optional<uint64_t>& out, Field f, HashField field) {
    HashForms& forms = event_hash_forms_[field];
    forms = {};
    if (r_.next_is_nil()) {
      (void)r_.read_nil();
      out.reset();
      return true;
    }
    uint64_t h = 0;
    if (!read_hash(h, f, forms)) return false;
    out = h;
    return true;
  }

  bool read_tokens(std::vector<TokenId>& out, Field f) {
    uint32_t n = 0;
    MsgpackStatus s = r_.read_array(n);
    if (s != MsgpackStatus::kOk) return fail_status(s, f, "bad_event", "an array");
    out.clear();
    out.resize(n);
    for (uint32_t i = static_cast<uint32_t>(r_.read_uint32_run(out.data(), n)); i < n; ++i) {
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

  bool read_stored_slot(StoredSlot slot, EngineBlockStored& ev) {
    const Field f{key_for_slot(kStoredFields, slot)};
    switch (slot) {
      case kSlotBlockHashes:
        return read_hashes(ev.block_hashes, f, kHashFieldBlockHashes);
      case kSlotParent:
        return read_optional_hash(ev.parent_block_hash, f, kHashFieldParent);
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
      case kSlotIgnored:
        break;
    }
    return skip(Field{"field"}, kFieldLevel);
  }

  bool read_removed_slot(RemovedSlot slot, EngineBlockRemoved& ev) {
    const Field f{key_for_slot(kRemovedFields, slot)};
    switch (slot) {
      case kRemovedSlotBlockHashes:
        return read_hashes(ev.block_hashes, f, kHashFieldBlockHashes);
      case kRemovedSlotMedium:
        return read_optional_str(ev.medium, f);
      case kRemovedSlotGroupIdx:
        return read_optional_i64(ev.group_idx, f, "bad_event");
      case kRemovedSlotIgnored:
        break;
    }
    return skip(Field{"field"}, kFieldLevel);
  }

  // The next event of the batch, as a fresh T: the slot an earlier decode left there is
  // reused when it holds the same kind.
  template <typename T>
  T& next_event() {
    if (events_used_ == batch_.events.size()) {
      ++events_used_;
      return std::get<T>(batch_.events.emplace_back(std::in_place_type<T>));
    }
    EngineEvent& slot = batch_.events[events_used_++];
    if (T* reused = std::get_if<T>(&slot)) {
      recycle(*reused);
      return *reused;
    }
    return slot.emplace<T>();
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
        auto& stored = next_event<EngineBlockStored>();
        stored.positional_fields = static_cast<uint8_t>(std::min<uint32_t>(fields, kStoredSlots));
        for (uint32_t slot = 1; slot <= fields; ++slot) {
          const auto known = slot <= kStoredSlots ? static_cast<StoredSlot>(slot) : kSlotIgnored;
          if (!read_stored_slot(known, stored)) return false;
        }
        return finish_extra_keys(stored);
      }
      case EventKind::kRemoved: {
        if (fields < kRemovedMinFields) {
          return fail("bad_event", "has no fields, expected at least block_hashes");
        }
        note_encoding(EngineEventEncoding::kPositional);
        auto& removed = next_event<EngineBlockRemoved>();
        removed.positional_fields = static_cast<uint8_t>(std::min<uint32_t>(fields, kRemovedSlots));
        for (uint32_t slot = 1; slot <= fields; ++slot) {
          const auto known =
              slot <= kRemovedSlots ? static_cast<RemovedSlot>(slot) : kRemovedSlotIgnored;
          if (!read_removed_slot(known, removed)) return false;
        }
        return true;
      }
      case EventKind::kCleared:
        note_encoding(EngineEventEncoding::kPositional);
        next_event<EngineAllBlocksCleared>();
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
    if (r_.read_fixstr(key)) return true;
    const MsgpackStatus s = r_.read_str(key);
    if (s == MsgpackStatus::kOk) return true;
    key = {};
    if (s == MsgpackStatus::kWrongType) return skip(Field{"key"}, level);
    return fail_status(s, Field{"key"}, "bad_event", "a key");
  }

  bool decode_map_event() {
    const size_t map_start = r_.offset();
    uint32_t n = 0;
    const MsgpackStatus header = r_.read_map(n);
    if (header != MsgpackStatus::kOk) return fail_status(header, Field{"event"}, "bad_event", "");
    const size_t body_start = r_.offset();
    // msgspec writes "type" first, and then the fields are read from just after it. Key
    // order is not part of the contract, though: elsewhere, the fields are read from the
    // top once the tag is found, and "type" is passed over as an ignored key.
    std::string_view tag;
    bool found = false;
    uint32_t fields_from = 0;
    for (uint32_t i = 0; i < n && !found; ++i) {
      std::string_view key;
      if (!read_key(key)) return false;
      if (key == kTypeKey) {
        const MsgpackStatus s = r_.read_str(tag);
        if (s != MsgpackStatus::kOk) return fail_status(s, Field{"type"}, "bad_event", "a string");
        found = true;
        fields_from = i == 0 ? 1 : 0;
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
      next_event<EngineAllBlocksCleared>();
      r_.seek(map_start);
      return skip(Field{"event"}, kEventLevel);
    }
    if (fields_from == 0) r_.seek(body_start);
    if (kind == EventKind::kStored) {
      auto& stored = next_event<EngineBlockStored>();
      bool have_hashes = false, have_tokens = false, have_size = false;
      KeyCursor keys(kStoredFields);
      for (uint32_t i = fields_from; i < n; ++i) {
        std::string_view key;
        if (!read_key(key)) return false;
        const StoredSlot slot = key == kTypeKey ? kSlotIgnored : keys.slot(key);
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
    auto& removed = next_event<EngineBlockRemoved>();
    bool have_hashes = false;
    KeyCursor keys(kRemovedFields);
    for (uint32_t i = fields_from; i < n; ++i) {
      std::string_view key;
      if (!read_key(key)) return false;
      const RemovedSlot slot = key == kTypeKey ? kRemovedSlotIgnored : keys.slot(key);
      have_hashes |= slot == kRemovedSlotBlockHashes;
      if (!read_removed_slot(slot, removed)) return false;
    }
    if (!have_hashes) return fail("bad_event", "missing block_hashes");
    return true;
  }

  bool decode_event(uint32_t index) {
    event_index_ = index;
    event_name_ = {};
    event_hash_forms_ = {};
    MsgpackType type = MsgpackType::kNil;
    MsgpackStatus s = r_.peek(type);
    if (s == MsgpackStatus::kOk && (type == MsgpackType::kArray || type == MsgpackType::kMap)) {
      const bool decoded =
          type == MsgpackType::kArray ? decode_positional_event() : decode_map_event();
      if (decoded) note_hash_forms();
      return decoded;
    }
    if (s == MsgpackStatus::kOk) s = MsgpackStatus::kWrongType;
    return fail_status(s, Field{"event"}, "bad_event", "an array or a map");
  }

  // Adds the forms of the hashes a decoded event holds to the batch's.
  void note_hash_forms() {
    for (const HashForms& forms : event_hash_forms_) {
      saw_negative_hash_ |= forms.negative;
      saw_bin_hash_ |= forms.bin;
    }
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
  EngineBatch& batch_;
  size_t events_used_ = 0;  // events of this payload so far, at the front of batch_.events
  Error error_;
  uint32_t event_index_ = 0;
  std::string_view event_name_;  // tag of the event being read, once known
  bool in_events_ = false;
  bool saw_event_ = false;
  // Forms of the hashes the event being read holds, by field.
  std::array<HashForms, kHashFieldCount> event_hash_forms_{};
  bool saw_negative_hash_ = false;  // in the events decoded so far
  bool saw_bin_hash_ = false;
};

}  // namespace

Result<bool> decode_engine_payload(std::span<const uint8_t> payload, EngineBatch& batch) {
  return PayloadDecoder(payload, batch).run();
}

Result<EngineBatch> decode_engine_payload(std::span<const uint8_t> payload) {
  EngineBatch batch;
  auto decoded = decode_engine_payload(payload, batch);
  if (!decoded) return decoded.error();
  return batch;
}

}  // namespace kvmock
