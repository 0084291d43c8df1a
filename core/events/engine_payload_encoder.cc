// The encoder half of engine_payload_codec.h: writes msgspec's bytes for an EngineBatch.
#include <algorithm>
#include <bit>
#include <variant>

#include "core/events/engine_extra_keys.h"
#include "core/events/engine_payload_codec.h"
#include "core/events/engine_payload_format.h"
#include "core/events/msgpack_writer.h"

namespace kvmock {
namespace {

using namespace engine_payload;

class PayloadEncoder {
 public:
  PayloadEncoder(const EngineEncodeOptions& options, std::vector<uint8_t>& out)
      : options_(options), sink_(out), pk_(sink_) {}

  void batch(const EngineBatch& b) {
    pk_.pack_array(3);
    float64(b.ts);
    pk_.pack_array(static_cast<uint32_t>(b.events.size()));
    for (const EngineEvent& ev : b.events) {
      std::visit([this](const auto& e) { event(e); }, ev);
    }
    optional_i64(b.dp_rank);
    sink_.flush();
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
    sink_.write(reinterpret_cast<const char*>(buf), sizeof buf);
  }

  void str(std::string_view s) { codec::pack_str(pk_, s); }
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

  void optional_raw(const std::optional<std::vector<uint8_t>>& bytes) {
    if (bytes) {
      sink_.write(reinterpret_cast<const char*>(bytes->data()), bytes->size());
    } else {
      pk_.pack_nil();
    }
  }

  // The salt must be written explicitly unless extra_keys already yields it on decode.
  static bool salt_needs_field(const EngineBlockStored& e) {
    if (!e.cache_salt) return false;
    if (!e.extra_keys_msgpack) return true;
    ExtraKeysScan scan;
    if (!scan_extra_keys(*e.extra_keys_msgpack, e.lora_name, scan, nullptr)) return true;
    return !scan.cache_salt || *scan.cache_salt != *e.cache_salt;
  }

  // Whether `slot` holds a value worth writing. The fields through block_size are
  // required; slot 7 counts as set when it will carry the salt (positional) and the
  // cache_salt key when the salt needs its own field (map).
  static bool stored_slot_set(const EngineBlockStored& e, StoredSlot slot, bool write_salt) {
    switch (slot) {
      case kSlotLoraId:
        return e.lora_id.has_value();
      case kSlotMedium:
        return e.medium.has_value();
      case kSlotLoraName:
        return e.lora_name.has_value() || write_salt;
      case kSlotExtraKeys:
        return e.extra_keys_msgpack.has_value();
      case kSlotGroupIdx:
        return e.group_idx.has_value();
      case kSlotSpecKind:
        return e.kv_cache_spec_kind.has_value();
      case kSlotSpecWindow:
        return e.kv_cache_spec_sliding_window.has_value();
      case kSlotCacheSalt:
        return write_salt;
      default:
        return true;
    }
  }

  // Writes the value of `slot` (nil when unset).
  void stored_value(const EngineBlockStored& e, StoredSlot slot) {
    switch (slot) {
      case kSlotBlockHashes:
        return hashes(e.block_hashes);
      case kSlotParent:
        return optional_hash(e.parent_block_hash);
      case kSlotTokenIds:
        return tokens(e.token_ids);
      case kSlotBlockSize:
        return static_cast<void>(pk_.pack_uint32(e.block_size));
      case kSlotLoraId:
        return optional_i64(e.lora_id);
      case kSlotMedium:
        return optional_str(e.medium);
      case kSlotLoraName:
        return optional_str(e.lora_name);
      case kSlotExtraKeys:
        return optional_raw(e.extra_keys_msgpack);
      case kSlotGroupIdx:
        return optional_i64(e.group_idx);
      case kSlotSpecKind:
        return optional_str(e.kv_cache_spec_kind);
      case kSlotSpecWindow:
        return optional_i64(e.kv_cache_spec_sliding_window);
      case kSlotCacheSalt:
        return optional_str(e.cache_salt);
      case kSlotIgnored:
        return static_cast<void>(pk_.pack_nil());
    }
  }

  // msgspec writes the fields through lora_name always and the later ones only when set.
  void stored_map(const EngineBlockStored& e, bool write_salt) {
    auto written = [&](StoredSlot slot) {
      return slot <= kSlotLoraName || stored_slot_set(e, slot, write_salt);
    };
    const auto pairs = std::count_if(kStoredFields.begin(), kStoredFields.end(),
                                     [&](const auto& f) { return written(f.slot); });
    pk_.pack_map(1u + static_cast<uint32_t>(pairs));
    key(kTypeKey);
    str(kStoredTag);
    for (const auto& [slot, name] : kStoredFields) {
      if (!written(slot)) continue;
      key(name);
      stored_value(e, slot);
    }
  }

  void stored_positional(const EngineBlockStored& e, bool write_salt) {
    uint8_t last = kSlotBlockSize;
    for (uint8_t slot = kSlotLoraId; slot <= kStoredSlots; ++slot) {
      if (stored_slot_set(e, static_cast<StoredSlot>(slot), write_salt)) last = slot;
    }
    const uint8_t wanted = e.positional_fields == 0 ? kStoredDefaultFields : e.positional_fields;
    const uint8_t fields = std::min(std::max(last, wanted), kStoredSlots);
    pk_.pack_array(1u + fields);
    str(kStoredTag);
    // SGLang's BlockStoredWithMetadata puts the salt where lora_name would be.
    const bool salt_in_slot7 = write_salt && !e.lora_name;
    for (uint8_t slot = 1; slot <= fields; ++slot) {
      if (slot == kSlotLoraName && salt_in_slot7) {
        pk_.pack_map(1);
        key(key_for_slot(kStoredFields, kSlotCacheSalt));
        str(*e.cache_salt);
      } else {
        stored_value(e, static_cast<StoredSlot>(slot));
      }
    }
  }

  void event(const EngineBlockStored& e) {
    const bool write_salt = salt_needs_field(e);
    if (map_mode()) {
      stored_map(e, write_salt);
    } else {
      stored_positional(e, write_salt);
    }
  }

  void removed_value(const EngineBlockRemoved& e, RemovedSlot slot) {
    switch (slot) {
      case kRemovedSlotBlockHashes:
        return hashes(e.block_hashes);
      case kRemovedSlotMedium:
        return optional_str(e.medium);
      case kRemovedSlotGroupIdx:
        return optional_i64(e.group_idx);
      case kRemovedSlotIgnored:
        return static_cast<void>(pk_.pack_nil());
    }
  }

  void event(const EngineBlockRemoved& e) {
    if (map_mode()) {
      // medium is always written, group_idx only when set.
      auto written = [&](RemovedSlot slot) {
        return slot != kRemovedSlotGroupIdx || e.group_idx.has_value();
      };
      pk_.pack_map(3 + e.group_idx.has_value());
      key(kTypeKey);
      str(kRemovedTag);
      for (const auto& [slot, name] : kRemovedFields) {
        if (!written(slot)) continue;
        key(name);
        removed_value(e, slot);
      }
      return;
    }
    uint8_t last = kRemovedSlotBlockHashes;
    if (e.medium) last = kRemovedSlotMedium;
    if (e.group_idx) last = kRemovedSlotGroupIdx;
    const uint8_t wanted = e.positional_fields == 0 ? kRemovedDefaultFields : e.positional_fields;
    const uint8_t fields = std::min(std::max(last, wanted), kRemovedSlots);
    pk_.pack_array(1u + fields);
    str(kRemovedTag);
    for (uint8_t slot = 1; slot <= fields; ++slot) removed_value(e, static_cast<RemovedSlot>(slot));
  }

  void event(const EngineAllBlocksCleared&) {
    if (map_mode()) {
      pk_.pack_map(1);
      key(kTypeKey);
    } else {
      pk_.pack_array(1);
    }
    str(kClearedTag);
  }

  const EngineEncodeOptions& options_;
  // Every byte goes through the stage, so the output keeps its order; batch() flushes.
  codec::StagedVectorSink sink_;
  codec::Packer pk_;
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
