// Builds vLLM-format engine batches from a mock engine's router events, so mock workers
// can publish on ZMQ exactly as a vLLM engine would (BlockStored with the blocks'
// token ids, chained parent hashes, medium per tier).
//
// Router events carry only hashes, so the builder tracks the token sequences of the
// requests in flight: each request's sequence hashes (Dynamo's chain, salted by LoRA name
// and cache salt exactly as the engine hashes them) map back to (request, block index).
// A block is always announced while the request that computed it is alive, so every
// stored block can be found.
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/events/engine_event.h"
#include "core/events/router_event.h"

namespace kvmock {

struct EngineEventBuilderOptions {
  uint32_t block_size = 64;
  EngineEventEncoding encoding = EngineEventEncoding::kMap;
};

class EngineEventBuilder {
 public:
  explicit EngineEventBuilder(EngineEventBuilderOptions options);

  // A request entered the engine with this prompt. Its stores carry `lora_name` and
  // `lora_id` (vLLM's lora_int_id) when it names a LoRA adapter.
  void add_request(uint64_t id, const std::vector<TokenId>& prompt, const std::string& lora_name,
                   const std::string& cache_salt, uint32_t lora_id = 0);
  // The request produced these output tokens (their blocks are stored in later passes).
  void append_tokens(uint64_t id, const std::vector<TokenId>& tokens);
  // The request is gone; its blocks can no longer be announced.
  void remove_request(uint64_t id);

  // One engine batch for a pass's router events. Stores whose blocks cannot be traced to a
  // live request are left out and counted in untraced_stores().
  EngineBatch build(const std::vector<RouterEvent>& events, double ts, DpRank rank);

  uint64_t untraced_stores() const { return untraced_stores_; }
  size_t tracked_requests() const { return requests_.size(); }

 private:
  struct Tracked {
    std::vector<TokenId> tokens;
    std::vector<uint64_t> sequence_hashes;
    uint64_t seed = 0;
    std::string lora_name;
    uint32_t lora_id = 0;
  };
  struct Location {
    uint64_t request = 0;
    uint32_t block = 0;
  };
  void extend_hashes(uint64_t id, Tracked& tracked);
  static std::string medium_for(StorageTier tier);

  EngineEventBuilderOptions options_;
  std::unordered_map<uint64_t, Tracked> requests_;
  std::unordered_multimap<uint64_t, Location> blocks_;  // sequence hash → where it lives
  uint64_t untraced_stores_ = 0;
};

}  // namespace kvmock
