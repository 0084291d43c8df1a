// The engine-side event model: what vLLM and SGLang publish on their KV-event ZMQ
// sockets (docs/wire-formats.md#engine-payload). A payload is one EngineBatch,
// `[ts, events, dp_rank]`; each event is a tagged positional array or a tagged map.
//
// Decoding keeps enough of the wire shape (positional slot count, raw extra_keys) that
// encoding a decoded batch reproduces the engine's bytes exactly; that is how the
// golden vectors are checked and how a user can trust `kvmockd decode`.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "core/tokens/block_hash.h"

namespace kvmock {

// How events inside a batch are encoded. The outer batch is always positional.
enum class EngineEventEncoding : uint8_t {
  kPositional,  // ["BlockStored", ...]      vLLM <= 0.23, SGLang <= Aug 2026
  kMap,         // {"type":"BlockStored",...} vLLM >= #42892, SGLang >= #37482
};

// How block hashes are written by the engine-format encoder. Decoding accepts all.
enum class EngineHashEncoding : uint8_t {
  kUint64,   // vLLM default: non-negative, minimal msgpack int
  kInt64,    // SGLang: the same 64 bits read as signed
  kBytes32,  // vLLM with VLLM_KV_EVENTS_USE_INT_BLOCK_HASHES=0: 24 zero bytes + u64 BE
};

struct EngineBlockStored {
  std::vector<uint64_t> block_hashes;
  std::optional<uint64_t> parent_block_hash;
  std::vector<TokenId> token_ids;
  uint32_t block_size = 0;
  std::optional<int64_t> lora_id;
  std::optional<std::string> medium;  // "GPU", "CPU", "CPU_PINNED", "STORAGE", "DISK", ...
  std::optional<std::string> lora_name;
  // Raw msgpack of the `extra_keys` field (one entry per block, nil or a tuple), kept
  // verbatim so re-encoding is exact. Multimodal hashes found in it are in mm_hashes.
  std::optional<std::vector<uint8_t>> extra_keys_msgpack;
  // Per block, the multimodal object hashes that overlap it (from extra_keys or the
  // late-2025 block_mm_infos slot). Empty when the batch carries none.
  std::vector<std::vector<uint64_t>> mm_hashes;
  std::optional<int64_t> group_idx;
  std::optional<std::string> kv_cache_spec_kind;
  std::optional<int64_t> kv_cache_spec_sliding_window;
  std::optional<std::string> cache_salt;  // SGLang: metadata.cache_salt or map key
  // Positional encoding only: how many fields followed the tag on the wire, capped at
  // the 11 slots the codec knows (0 when the event was not decoded from a positional
  // array). The positional encoder writes at least this many.
  uint8_t positional_fields = 0;
  bool operator==(const EngineBlockStored&) const = default;
};

struct EngineBlockRemoved {
  std::vector<uint64_t> block_hashes;
  std::optional<std::string> medium;
  std::optional<int64_t> group_idx;
  uint8_t positional_fields = 0;  // as for EngineBlockStored, capped at 3
  bool operator==(const EngineBlockRemoved&) const = default;
};

struct EngineAllBlocksCleared {
  bool operator==(const EngineAllBlocksCleared&) const = default;
};

using EngineEvent = std::variant<EngineBlockStored, EngineBlockRemoved, EngineAllBlocksCleared>;

struct EngineBatch {
  double ts = 0.0;  // engine wall clock, epoch seconds
  std::vector<EngineEvent> events;
  std::optional<int64_t> dp_rank;  // nil on single-rank engines
  // Encoding of the first decoded event (the encoder writes every event this way).
  EngineEventEncoding encoding = EngineEventEncoding::kMap;
  // How the decoder saw block hashes: kBytes32 if any was a bin, else kInt64 if any was
  // a negative int, else kUint64. Re-encoding with it reproduces the engine's form.
  EngineHashEncoding hash_encoding = EngineHashEncoding::kUint64;
  // Events whose tag was not recognised; skipped, for forward compatibility.
  uint32_t unknown_events = 0;
  bool operator==(const EngineBatch&) const = default;
};

}  // namespace kvmock
