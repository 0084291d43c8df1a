// Throughput of the index a worker keeps for itself and a router keeps for many workers.
// Target: a worker holding ~16k blocks applies 200k events/s. Items are events (or
// queries for find_matches); run with --benchmark_counters_tabular=true.
#include <benchmark/benchmark.h>
#include <malloc.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "core/indexer/local_indexer.h"
#include "core/indexer/radix_tree.h"
#include "core/pipeline/worker_event_stream.h"
#include "core/tokens/block_hash.h"

namespace kvmock {
namespace {

constexpr size_t kBlocksPerEvent = 16;
constexpr size_t kChains = 1024;  // 1024 chains x 16 blocks = the 16k blocks of a worker
constexpr size_t kPrefixBlocks = 4;

// A shared 4-block prefix (system prompt) and kChains distinct 16-block continuations,
// with realistic (xxh3) hashes.
struct Workload {
  std::vector<uint64_t> prefix_tokens;
  std::vector<uint64_t> prefix_blocks;
  std::vector<std::vector<uint64_t>> tokens;  // per chain
  std::vector<std::vector<uint64_t>> blocks;  // per chain

  Workload() {
    for (size_t i = 0; i < kPrefixBlocks; ++i) prefix_tokens.push_back(next_sequence_hash(7, i));
    prefix_blocks = sequence_hashes(prefix_tokens);
    for (size_t c = 0; c < kChains; ++c) {
      std::vector<uint64_t> content;
      std::vector<uint64_t> chain;
      uint64_t parent = prefix_blocks.back();
      for (size_t b = 0; b < kBlocksPerEvent; ++b) {
        content.push_back(next_sequence_hash(c + 1000, b));
        parent = next_sequence_hash(parent, content.back());
        chain.push_back(parent);
      }
      tokens.push_back(std::move(content));
      blocks.push_back(std::move(chain));
    }
  }

  RouterEvent prefix_event(WorkerId worker) const {
    StoreData data;
    for (size_t i = 0; i < kPrefixBlocks; ++i) {
      data.blocks.push_back({prefix_blocks[i], prefix_tokens[i], std::nullopt});
    }
    return event(worker, std::move(data));
  }
  RouterEvent store_event(WorkerId worker, size_t chain) const {
    StoreData data;
    data.parent_hash = prefix_blocks.back();
    for (size_t b = 0; b < kBlocksPerEvent; ++b) {
      data.blocks.push_back({blocks[chain][b], tokens[chain][b], std::nullopt});
    }
    return event(worker, std::move(data));
  }
  RouterEvent remove_event(WorkerId worker, size_t chain) const {
    // Leaf first, as engines evict.
    RemoveData data;
    for (size_t b = kBlocksPerEvent; b-- > 0;) data.block_hashes.push_back(blocks[chain][b]);
    return event(worker, std::move(data));
  }
  std::vector<uint64_t> request(size_t chain) const {
    std::vector<uint64_t> hashes = prefix_tokens;
    hashes.insert(hashes.end(), tokens[chain].begin(), tokens[chain].end());
    return hashes;
  }

  static RouterEvent event(WorkerId worker, KvEventData data) {
    RouterEvent e;
    e.worker_id = worker;
    e.event.data = std::move(data);
    return e;
  }
};

const Workload& workload() {
  static const Workload w;
  return w;
}

// New 16-block chains until the worker holds 16k blocks, then a Cleared (counted) and again.
void BM_RadixTreeStore16(benchmark::State& state) {
  const Workload& w = workload();
  std::vector<RouterEvent> stores;
  for (size_t c = 0; c < kChains; ++c) stores.push_back(w.store_event(1, c));
  const RouterEvent prefix = w.prefix_event(1);
  RouterEvent clear = Workload::event(1, ClearData{});
  RadixTree tree(kChains * kBlocksPerEvent + kPrefixBlocks);
  (void)tree.apply(prefix);
  size_t next = 0;
  int64_t events = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(tree.apply(stores[next]));
    ++events;
    if (++next == kChains) {
      next = 0;
      (void)tree.apply(clear);
      (void)tree.apply(prefix);
      events += 2;
    }
  }
  state.SetItemsProcessed(events);
  state.counters["blocks"] = static_cast<double>(tree.block_count({1, 0}));
}
BENCHMARK(BM_RadixTreeStore16);

// Steady state at 16k blocks: each iteration stores one chain and removes the oldest.
void BM_RadixTreeStoreEvict16(benchmark::State& state) {
  const Workload& w = workload();
  std::vector<RouterEvent> stores;
  std::vector<RouterEvent> removes;
  for (size_t c = 0; c < kChains; ++c) {
    stores.push_back(w.store_event(1, c));
    removes.push_back(w.remove_event(1, c));
  }
  RadixTree tree(kChains * kBlocksPerEvent + kPrefixBlocks);
  (void)tree.apply(w.prefix_event(1));
  for (size_t c = 0; c + 1 < kChains; ++c) (void)tree.apply(stores[c]);
  size_t next = kChains - 1;
  for (auto _ : state) {
    benchmark::DoNotOptimize(tree.apply(stores[next]));
    next = (next + 1) % kChains;
    benchmark::DoNotOptimize(tree.apply(removes[next]));
  }
  state.SetItemsProcessed(state.iterations() * 2);
  state.counters["blocks"] = static_cast<double>(tree.block_count({1, 0}));
}
BENCHMARK(BM_RadixTreeStoreEvict16);

// Re-stores of chains already held (vLLM repeats stores): the idempotent path.
void BM_RadixTreeRestore16(benchmark::State& state) {
  const Workload& w = workload();
  std::vector<RouterEvent> stores;
  RadixTree tree;
  (void)tree.apply(w.prefix_event(1));
  for (size_t c = 0; c < kChains; ++c) {
    stores.push_back(w.store_event(1, c));
    (void)tree.apply(stores.back());
  }
  size_t next = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(tree.apply(stores[next]));
    next = (next + 1) % kChains;
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_RadixTreeRestore16);

// A router's tree with `range(0)` workers each holding all 16k blocks; one 20-block
// request (4 prefix + 16) per iteration.
void BM_RadixTreeFindMatches(benchmark::State& state) {
  const Workload& w = workload();
  const auto workers = static_cast<WorkerId>(state.range(0));
  RadixTree tree;
  for (WorkerId worker = 1; worker <= workers; ++worker) {
    (void)tree.apply(w.prefix_event(worker));
    for (size_t c = 0; c < kChains; ++c) (void)tree.apply(w.store_event(worker, c));
  }
  std::vector<std::vector<uint64_t>> requests;
  for (size_t c = 0; c < kChains; ++c) requests.push_back(w.request(c));
  size_t next = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(tree.find_matches(requests[next]));
    next = (next + 1) % kChains;
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_RadixTreeFindMatches)->Arg(1)->Arg(8)->Arg(64);

// The whole per-event publishing path of a worker: stream (dedup + numbering) then the
// local indexer (tree + ring buffer copy), store and evict at 16k blocks.
void BM_WorkerPipelineStoreEvict16(benchmark::State& state) {
  const Workload& w = workload();
  WorkerEventStream stream(1, 0);
  LocalIndexer indexer(1, 0, kDefaultIndexerBufferSize, kChains * kBlocksPerEvent);
  auto publish = [&](const RouterEvent& event) {
    for (const RouterEvent& out : stream.push(event, 0)) (void)indexer.apply(out);
  };
  publish(w.prefix_event(1));
  for (size_t c = 0; c + 1 < kChains; ++c) publish(w.store_event(1, c));
  size_t next = kChains - 1;
  std::vector<RouterEvent> stores;
  std::vector<RouterEvent> removes;
  for (size_t c = 0; c < kChains; ++c) {
    stores.push_back(w.store_event(1, c));
    removes.push_back(w.remove_event(1, c));
  }
  for (auto _ : state) {
    publish(stores[next]);
    next = (next + 1) % kChains;
    publish(removes[next]);
  }
  state.SetItemsProcessed(state.iterations() * 2);
  state.counters["blocks"] = static_cast<double>(indexer.block_count());
}
BENCHMARK(BM_WorkerPipelineStoreEvict16);

// What a worker's own event path holds per cached block once its pool is full: the
// stream's dedup table, the local indexer's tree and its recovery buffer of the last
// 1,024 events (here 1,024 stores of 16 blocks), in heap bytes per held block.
void BM_WorkerPipelineHeapPerBlock(benchmark::State& state) {
  const Workload& w = workload();
  double bytes_per_block = 0;
  for (auto _ : state) {
    const size_t before = mallinfo2().uordblks;
    auto stream = std::make_unique<WorkerEventStream>(1, 0);
    auto indexer =
        std::make_unique<LocalIndexer>(1, 0, kDefaultIndexerBufferSize, kChains * kBlocksPerEvent);
    auto publish = [&](const RouterEvent& event) {
      for (const RouterEvent& out : stream->push(event, 0)) (void)indexer->apply(out);
    };
    publish(w.prefix_event(1));
    for (size_t c = 0; c < kChains; ++c) publish(w.store_event(1, c));
    bytes_per_block = static_cast<double>(mallinfo2().uordblks - before) /
                      static_cast<double>(indexer->block_count());
    benchmark::DoNotOptimize(indexer.get());
  }
  state.counters["heap_bytes_per_block"] = bytes_per_block;
}
BENCHMARK(BM_WorkerPipelineHeapPerBlock)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace kvmock
