// Turns a decoded engine batch into router events with Dynamo's relay semantics
// (docs/wire-formats.md#relay-conversion): tokens_hash is recomputed from token_ids at the
// relay's block size, the engine's block hashes become block_hash/parent_hash, medium
// becomes the storage tier, and the relay's worker id is attached. Event ids are left 0:
// the publishing pipeline numbers events per (worker, dp rank).
//
// Nothing here fails: a store that cannot be converted faithfully is dropped and
// reported as a ConversionIssue, so one bad event never poisons the stream.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/events/engine_event.h"
#include "core/events/router_event.h"

namespace kvmock {

struct ConversionOptions {
  WorkerId worker_id = 0;
  uint32_t block_size = 16;    // the router's kv_block_size; must match the engine's
  DpRank default_dp_rank = 0;  // used when the batch carries no (or a negative) rank
};

// Why an engine event was not converted as sent. Each reason is a metric label.
enum class ConversionIssueKind : uint8_t {
  kBlockSizeMismatch,     // ends the batch: later events are not converted
  kSkippedAfterMismatch,  // an event dropped because an earlier one ended the batch
  kTokenCountMismatch,    // token_ids.size() != blocks * block_size: store dropped
  kDuplicateHash,         // a block hash repeats inside one store: store dropped
  kSelfParent,            // a block claims to be its own parent: store dropped
  kEmptyEvent,            // a store/remove with no hashes: dropped
  kUnknownMedium,         // converted as device tier
  kBadDpRank,             // negative or > u32 rank: the default rank is used
  kCount_,
};
inline constexpr size_t kConversionIssueKinds = static_cast<size_t>(ConversionIssueKind::kCount_);

std::string_view conversion_issue_reason(ConversionIssueKind kind);

struct ConversionIssue {
  ConversionIssueKind kind;
  size_t event_index;  // position in EngineBatch::events
  std::string message;
};

struct ConvertedBatch {
  DpRank dp_rank = 0;
  std::vector<RouterEvent> events;
  std::vector<ConversionIssue> issues;
};

// Maps an engine medium string to a router storage tier: nil/GPU/DEVICE → device,
// CPU* → host_pinned, DISK/NVME/SSD/STORAGE → disk, EXTERNAL* → external.
// Returns nullopt for anything else (the converter then uses device and reports it).
std::optional<StorageTier> storage_tier_for_medium(std::string_view medium);

// Converts `batch`; appends nothing to any shared state.
ConvertedBatch convert_engine_batch(const EngineBatch& batch, const ConversionOptions& options);

// Running totals of conversions for metrics, indexed by ConversionIssueKind.
struct ConversionCounters {
  uint64_t events_in = 0;
  uint64_t events_out = 0;
  std::array<uint64_t, kConversionIssueKinds> issues{};

  void add(const EngineBatch& batch, const ConvertedBatch& converted);
};

}  // namespace kvmock
