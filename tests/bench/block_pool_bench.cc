// The G1 block pool of one engine at its default size (16,384 blocks): what a cached block
// costs in time (a full pool turning over: every new block evicts the oldest inactive
// one) and in heap (bytes per cached block, the growth a busy worker's memory shows until
// its pool is full). Items are blocks; run with --benchmark_counters_tabular=true.
#include <benchmark/benchmark.h>
#include <malloc.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "core/kv/block_pool.h"
#include "core/tokens/block_hash.h"

namespace kvmock {
namespace {

constexpr uint64_t kPoolBlocks = 16384;  // EngineArgs' default num_gpu_blocks
constexpr uint32_t kBlocksPerRequest = 16;

// One request's blocks: allocate fresh slots (evicting when the pool is full), commit them
// as a chain under fresh hashes, release them so they become inactive and evictable.
void run_request(BlockPool& pool, uint64_t request, std::vector<SlotId>& slots,
                 std::vector<BlockPool::CommitBlock>& commit) {
  slots.clear();
  commit.clear();
  if (!pool.allocate({}, kBlocksPerRequest, &slots)) std::abort();
  BlockHash parent = request;
  for (uint32_t b = 0; b < kBlocksPerRequest; ++b) {
    parent = next_sequence_hash(parent, b);
    commit.push_back({slots[b], parent, b});
  }
  pool.commit(std::nullopt, commit);
  pool.release(slots);
  (void)pool.take_events();
}

size_t heap_in_use() { return mallinfo2().uordblks; }

void BM_BlockPoolTurnover(benchmark::State& state) {
  BlockPool pool(kPoolBlocks, /*publish_events=*/true);
  std::vector<SlotId> slots;
  std::vector<BlockPool::CommitBlock> commit;
  uint64_t request = 0;
  // Fill the pool so that every later block evicts one.
  while (pool.num_free() > 0) run_request(pool, ++request, slots, commit);
  for (auto _ : state) run_request(pool, ++request, slots, commit);
  state.SetItemsProcessed(state.iterations() * kBlocksPerRequest);
}
BENCHMARK(BM_BlockPoolTurnover);

void BM_BlockPoolHeapPerCachedBlock(benchmark::State& state) {
  std::vector<SlotId> slots;
  std::vector<BlockPool::CommitBlock> commit;
  double bytes_per_block = 0;
  for (auto _ : state) {
    const size_t before = heap_in_use();
    auto pool = std::make_unique<BlockPool>(kPoolBlocks, /*publish_events=*/true);
    uint64_t request = 0;
    while (pool->num_free() > 0) run_request(*pool, ++request, slots, commit);
    bytes_per_block =
        static_cast<double>(heap_in_use() - before) / static_cast<double>(kPoolBlocks);
    benchmark::DoNotOptimize(pool.get());
  }
  state.counters["heap_bytes_per_cached_block"] = bytes_per_block;
}
BENCHMARK(BM_BlockPoolHeapPerCachedBlock)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace kvmock
