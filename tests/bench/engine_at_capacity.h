// The event stream of one vLLM engine whose KV cache is full, as msgpack payloads: the
// load of the relay benchmarks (relay_driver over real sockets, relay_path_bench in
// process). Each request stores a chain of kBlocksPerRequest blocks (1,024 tokens); once
// kCapacityBlocks are held, every store is followed by the eviction of the oldest
// request's deepest remaining block (vLLM frees a finished request's blocks leaf first).
// So the relay's dedup table and indexer stay at a steady size, as behind a real engine,
// and half of the events are stores, half removes. Event i (counting from 0, stores and
// removes alike) is the store of block hash i + 1 or a remove, which lets a latency probe
// find any store's batch from its hash.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <numeric>
#include <vector>

#include "core/events/engine_payload_codec.h"

namespace kvmock::bench {

class EngineAtCapacity {
 public:
  static constexpr uint32_t kBlockSize = 16;
  static constexpr size_t kBlocksPerRequest = 64;
  static constexpr size_t kCapacityBlocks = 32768;

  // The next `events` events as one engine batch, in msgspec's map form.
  std::vector<uint8_t> next_batch(size_t events) {
    EngineBatch batch;
    batch.ts = 1.0;
    batch.dp_rank = 0;
    while (batch.events.size() < events) {
      if (held_ > kCapacityBlocks) {
        evict(batch);
      } else {
        store(batch);
      }
    }
    return encode_engine_payload(batch, {EngineEventEncoding::kMap, EngineHashEncoding::kUint64});
  }

 private:
  void store(EngineBatch& batch) {
    const uint64_t hash = ++next_index_;
    if (requests_.empty() || requests_.back().size() == kBlocksPerRequest) requests_.emplace_back();
    auto& s = std::get<EngineBlockStored>(batch.events.emplace_back(EngineBlockStored{}));
    s.block_hashes = {hash};
    if (!requests_.back().empty()) s.parent_block_hash = requests_.back().back();
    s.token_ids.resize(kBlockSize);
    std::iota(s.token_ids.begin(), s.token_ids.end(), static_cast<TokenId>(hash * 7));
    s.block_size = kBlockSize;
    s.medium = "GPU";
    requests_.back().push_back(hash);
    ++held_;
  }
  void evict(EngineBatch& batch) {
    ++next_index_;
    std::vector<uint64_t>& oldest = requests_.front();
    auto& r = std::get<EngineBlockRemoved>(batch.events.emplace_back(EngineBlockRemoved{}));
    r.block_hashes = {oldest.back()};
    r.medium = "GPU";
    oldest.pop_back();
    if (oldest.empty()) requests_.pop_front();
    --held_;
  }

  uint64_t next_index_ = 0;
  size_t held_ = 0;
  std::deque<std::vector<uint64_t>> requests_;
};

}  // namespace kvmock::bench
