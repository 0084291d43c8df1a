#include "core/events/engine_event_builder.h"

#include "core/tokens/block_hash.h"

namespace kvmock {

EngineEventBuilder::EngineEventBuilder(EngineEventBuilderOptions options) : options_(options) {
  if (options_.block_size == 0) options_.block_size = 1;
}

void EngineEventBuilder::add_request(uint64_t id, const std::vector<TokenId>& prompt,
                                     const std::string& lora_name, const std::string& cache_salt,
                                     uint32_t lora_id) {
  Tracked& tracked = requests_[id];
  tracked.tokens = prompt;
  tracked.seed = block_hash_seed(lora_name, cache_salt);
  tracked.lora_name = lora_name;
  tracked.lora_id = lora_id;
  extend_hashes(id, tracked);
}

void EngineEventBuilder::append_tokens(uint64_t id, const std::vector<TokenId>& tokens) {
  auto it = requests_.find(id);
  if (it == requests_.end()) return;
  it->second.tokens.insert(it->second.tokens.end(), tokens.begin(), tokens.end());
  extend_hashes(id, it->second);
}

void EngineEventBuilder::remove_request(uint64_t id) {
  auto it = requests_.find(id);
  if (it == requests_.end()) return;
  for (uint64_t hash : it->second.sequence_hashes) {
    auto [first, last] = blocks_.equal_range(hash);
    for (auto b = first; b != last; ++b) {
      if (b->second.request == id) {
        blocks_.erase(b);
        break;
      }
    }
  }
  requests_.erase(it);
}

void EngineEventBuilder::extend_hashes(uint64_t id, Tracked& tracked) {
  const size_t full_blocks = tracked.tokens.size() / options_.block_size;
  const std::span<const TokenId> tokens(tracked.tokens);
  while (tracked.sequence_hashes.size() < full_blocks) {
    const size_t i = tracked.sequence_hashes.size();
    const uint64_t content =
        tokens_hash(tokens.subspan(i * options_.block_size, options_.block_size), tracked.seed);
    const uint64_t sequence =
        i == 0 ? content : next_sequence_hash(tracked.sequence_hashes.back(), content);
    tracked.sequence_hashes.push_back(sequence);
    blocks_.emplace(sequence, Location{id, static_cast<uint32_t>(i)});
  }
}

std::string EngineEventBuilder::medium_for(StorageTier tier) {
  switch (tier) {
    case StorageTier::kDevice:
      return "GPU";
    case StorageTier::kHostPinned:
      return "CPU_PINNED";
    case StorageTier::kDisk:
      return "DISK";
    case StorageTier::kExternal:
      return "EXTERNAL";
  }
  return "GPU";
}

EngineBatch EngineEventBuilder::build(const std::vector<RouterEvent>& events, double ts,
                                      DpRank rank) {
  EngineBatch batch;
  batch.ts = ts;
  batch.dp_rank = rank;
  batch.encoding = options_.encoding;
  for (const RouterEvent& event : events) {
    if (const auto* store = std::get_if<StoreData>(&event.event.data)) {
      if (store->blocks.empty()) continue;
      auto found = blocks_.find(store->blocks.front().block_hash);
      if (found == blocks_.end()) {
        ++untraced_stores_;
        continue;
      }
      const Tracked& tracked = requests_.at(found->second.request);
      const size_t first = found->second.block;
      if ((first + store->blocks.size()) * options_.block_size > tracked.tokens.size()) {
        ++untraced_stores_;
        continue;
      }
      auto& out = std::get<EngineBlockStored>(batch.events.emplace_back(EngineBlockStored{}));
      out.parent_block_hash = store->parent_hash;
      out.block_size = options_.block_size;
      out.medium = medium_for(event.storage_tier);
      if (!tracked.lora_name.empty()) out.lora_name = tracked.lora_name;
      if (tracked.lora_id != 0) out.lora_id = tracked.lora_id;
      out.block_hashes.reserve(store->blocks.size());
      for (const StoredBlock& block : store->blocks) out.block_hashes.push_back(block.block_hash);
      const auto begin =
          tracked.tokens.begin() + static_cast<std::ptrdiff_t>(first * options_.block_size);
      out.token_ids.assign(
          begin, begin + static_cast<std::ptrdiff_t>(store->blocks.size() * options_.block_size));
      if (options_.encoding == EngineEventEncoding::kMap) {
        // vLLM >= 0.26 shape: one nil extra key per block, KV-cache group 0, full attention.
        std::vector<uint8_t> nils;
        const size_t n = out.block_hashes.size();
        if (n < 16) {
          nils.push_back(static_cast<uint8_t>(0x90 | n));
        } else if (n <= 0xffff) {
          nils.push_back(0xdc);
          nils.push_back(static_cast<uint8_t>(n >> 8));
          nils.push_back(static_cast<uint8_t>(n));
        } else {
          nils.push_back(0xdd);
          for (int shift = 24; shift >= 0; shift -= 8)
            nils.push_back(static_cast<uint8_t>(n >> shift));
        }
        nils.insert(nils.end(), n, 0xc0);
        out.extra_keys_msgpack = std::move(nils);
        out.group_idx = 0;
        out.kv_cache_spec_kind = "full_attention";
      }
    } else if (const auto* removed = std::get_if<RemoveData>(&event.event.data)) {
      auto& out = std::get<EngineBlockRemoved>(batch.events.emplace_back(EngineBlockRemoved{}));
      out.block_hashes = removed->block_hashes;
      out.medium = medium_for(event.storage_tier);
      if (options_.encoding == EngineEventEncoding::kMap) out.group_idx = 0;
    } else {
      batch.events.emplace_back(EngineAllBlocksCleared{});
    }
  }
  return batch;
}

}  // namespace kvmock
