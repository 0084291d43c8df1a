#include "core/events/engine_event_converter.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <limits>
#include <span>
#include <unordered_set>

namespace kvmock {
namespace {

bool starts_with_ci(std::string_view text, std::string_view prefix) {
  if (text.size() < prefix.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i) {
    if (std::toupper(static_cast<unsigned char>(text[i])) != prefix[i]) return false;
  }
  return true;
}

bool equals_ci(std::string_view text, std::string_view upper) {
  return text.size() == upper.size() && starts_with_ci(text, upper);
}

// True when `hashes` lists one value twice. Up to 32 hashes (every store a vLLM pass
// makes) go through an open-addressing table on the stack, a few instructions a hash; the
// pairwise comparison it replaced was a tenth of the relay's conversion cost.
bool has_duplicate(std::span<const uint64_t> hashes) {
  constexpr size_t kSlots = 64;
  if (hashes.size() <= kSlots / 2) {
    std::array<uint64_t, kSlots> slots;
    uint64_t occupied = 0;
    for (uint64_t h : hashes) {
      size_t i = static_cast<size_t>((h * 0x9e3779b97f4a7c15ull) >> 58);  // top 6 bits
      while (occupied >> i & 1) {
        if (slots[i] == h) return true;
        i = (i + 1) % kSlots;
      }
      occupied |= uint64_t{1} << i;
      slots[i] = h;
    }
    return false;
  }
  std::unordered_set<uint64_t> seen(hashes.size() * 2);
  for (uint64_t h : hashes) {
    if (!seen.insert(h).second) return true;
  }
  return false;
}

// True when a store would link a block to itself or list one block twice; routers
// reject such events (InvalidBlockSequence), so they must never be published.
std::optional<ConversionIssueKind> chain_problem(const EngineBlockStored& store) {
  if (store.parent_block_hash && std::find(store.block_hashes.begin(), store.block_hashes.end(),
                                           *store.parent_block_hash) != store.block_hashes.end()) {
    return ConversionIssueKind::kSelfParent;
  }
  if (has_duplicate(store.block_hashes)) return ConversionIssueKind::kDuplicateHash;
  return std::nullopt;
}

class BatchConverter {
 public:
  BatchConverter(const EngineBatch& batch, const ConversionOptions& options)
      : batch_(batch), options_(options) {}

  ConvertedBatch run() {
    out_.dp_rank = resolve_dp_rank();
    out_.events.reserve(batch_.events.size());
    for (index_ = 0; index_ < batch_.events.size(); ++index_) {
      if (ended_) {
        issue(ConversionIssueKind::kSkippedAfterMismatch,
              "dropped: an earlier block size mismatch ended the batch");
        continue;
      }
      std::visit([this](const auto& event) { convert(event); }, batch_.events[index_]);
    }
    return std::move(out_);
  }

 private:
  DpRank resolve_dp_rank() {
    if (!batch_.dp_rank) return options_.default_dp_rank;
    const int64_t rank = *batch_.dp_rank;
    if (rank < 0 || rank > std::numeric_limits<DpRank>::max()) {
      index_ = 0;
      issue(ConversionIssueKind::kBadDpRank, "dp_rank " + std::to_string(rank) +
                                                 " out of range; using " +
                                                 std::to_string(options_.default_dp_rank));
      return options_.default_dp_rank;
    }
    return static_cast<DpRank>(rank);
  }

  void convert(const EngineBlockStored& store) {
    if (store.block_size != options_.block_size) {
      issue(ConversionIssueKind::kBlockSizeMismatch,
            "BlockStored block_size " + std::to_string(store.block_size) + " != relay block_size " +
                std::to_string(options_.block_size) + "; rest of batch dropped");
      ended_ = true;
      return;
    }
    if (store.block_hashes.empty()) {
      issue(ConversionIssueKind::kEmptyEvent, "BlockStored without block hashes");
      return;
    }
    const size_t blocks = store.block_hashes.size();
    if (store.token_ids.size() != blocks * options_.block_size) {
      issue(ConversionIssueKind::kTokenCountMismatch,
            "BlockStored has " + std::to_string(store.token_ids.size()) + " token ids for " +
                std::to_string(blocks) + " blocks of " + std::to_string(options_.block_size));
      return;
    }
    if (auto problem = chain_problem(store)) {
      issue(*problem, *problem == ConversionIssueKind::kSelfParent
                          ? "BlockStored lists its parent hash among its blocks"
                          : "BlockStored repeats a block hash");
      return;
    }
    const uint64_t seed =
        block_hash_seed(store.lora_name.value_or(""), store.cache_salt.value_or(""));
    StoreData data;
    data.parent_hash = store.parent_block_hash;
    data.blocks.resize(blocks);
    const std::span<const TokenId> tokens(store.token_ids);
    for (size_t i = 0; i < blocks; ++i) {
      StoredBlock& block = data.blocks[i];
      block.block_hash = store.block_hashes[i];
      const auto window = tokens.subspan(i * options_.block_size, options_.block_size);
      if (i < store.mm_hashes.size() && !store.mm_hashes[i].empty()) {
        block.tokens_hash = tokens_hash(window, seed, store.mm_hashes[i]);
        MultimodalExtraInfo info;
        for (uint64_t mm : store.mm_hashes[i]) info.mm_objects.push_back({mm, {}});
        block.mm_extra_info = std::move(info);
      } else {
        block.tokens_hash = tokens_hash(window, seed);
      }
    }
    emit(tier_of(store.medium), std::move(data));
  }

  void convert(const EngineBlockRemoved& removed) {
    if (removed.block_hashes.empty()) {
      issue(ConversionIssueKind::kEmptyEvent, "BlockRemoved without block hashes");
      return;
    }
    emit(tier_of(removed.medium), RemoveData{removed.block_hashes});
  }

  void convert(const EngineAllBlocksCleared&) { emit(StorageTier::kDevice, ClearData{}); }

  StorageTier tier_of(const std::optional<std::string>& medium) {
    if (!medium) return StorageTier::kDevice;
    if (auto tier = storage_tier_for_medium(*medium)) return *tier;
    issue(ConversionIssueKind::kUnknownMedium, "unknown medium '" + *medium + "', using device");
    return StorageTier::kDevice;
  }

  void emit(StorageTier tier, KvEventData data) {
    RouterEvent& event = out_.events.emplace_back();
    event.worker_id = options_.worker_id;
    event.storage_tier = tier;
    event.event.event_id = 0;
    event.event.dp_rank = out_.dp_rank;
    event.event.data = std::move(data);
  }

  void issue(ConversionIssueKind kind, std::string message) {
    out_.issues.push_back({kind, index_, std::move(message)});
  }

  const EngineBatch& batch_;
  const ConversionOptions& options_;
  ConvertedBatch out_;
  size_t index_ = 0;
  bool ended_ = false;
};

}  // namespace

std::string_view conversion_issue_reason(ConversionIssueKind kind) {
  switch (kind) {
    case ConversionIssueKind::kBlockSizeMismatch:
      return "block_size_mismatch";
    case ConversionIssueKind::kSkippedAfterMismatch:
      return "skipped_after_mismatch";
    case ConversionIssueKind::kTokenCountMismatch:
      return "token_count_mismatch";
    case ConversionIssueKind::kDuplicateHash:
      return "duplicate_hash";
    case ConversionIssueKind::kSelfParent:
      return "self_parent";
    case ConversionIssueKind::kEmptyEvent:
      return "empty_event";
    case ConversionIssueKind::kUnknownMedium:
      return "unknown_medium";
    case ConversionIssueKind::kBadDpRank:
      return "bad_dp_rank";
    case ConversionIssueKind::kCount_:
      break;
  }
  return "unknown";
}

std::optional<StorageTier> storage_tier_for_medium(std::string_view medium) {
  if (equals_ci(medium, "GPU") || equals_ci(medium, "DEVICE") || equals_ci(medium, "CUDA")) {
    return StorageTier::kDevice;
  }
  if (starts_with_ci(medium, "CPU") || equals_ci(medium, "HOST") ||
      equals_ci(medium, "HOST_PINNED")) {
    return StorageTier::kHostPinned;
  }
  if (equals_ci(medium, "DISK") || equals_ci(medium, "NVME") || equals_ci(medium, "SSD") ||
      equals_ci(medium, "STORAGE") || equals_ci(medium, "LOCAL_DISK")) {
    return StorageTier::kDisk;
  }
  if (starts_with_ci(medium, "EXTERNAL") || equals_ci(medium, "REMOTE"))
    return StorageTier::kExternal;
  return std::nullopt;
}

ConvertedBatch convert_engine_batch(const EngineBatch& batch, const ConversionOptions& options) {
  return BatchConverter(batch, options).run();
}

void ConversionCounters::add(const EngineBatch& batch, const ConvertedBatch& converted) {
  events_in += batch.events.size();
  events_out += converted.events.size();
  for (const ConversionIssue& issue : converted.issues) ++issues[static_cast<size_t>(issue.kind)];
}

}  // namespace kvmock
