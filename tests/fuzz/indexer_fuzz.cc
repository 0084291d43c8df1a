// Arbitrary event sequences (as a relay may receive from a confused engine) through the
// publishing pipeline into each rank's LocalIndexer and a router-side RadixTree. Nothing may
// crash, and afterwards every rank's tree dump must rebuild it exactly, the router's tree
// must agree with the worker's, and ids must be gap-free.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "core/indexer/local_indexer.h"
#include "core/indexer/radix_tree.h"
#include "core/pipeline/worker_event_stream.h"

namespace {

using namespace kvmock;

struct Reader {
  const uint8_t* data;
  size_t size;
  size_t at = 0;
  bool done() const { return at >= size; }
  uint8_t next() { return at < size ? data[at++] : 0; }
};

void check(bool condition) {
  if (!condition) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Reader in{data, size};
  constexpr DpRank kRanks = 3;
  const uint64_t batching = in.next() % 2 ? 5 : 0;
  std::vector<WorkerEventStream> streams;
  std::vector<LocalIndexer> indexers;
  for (DpRank rank = 0; rank < kRanks; ++rank) {
    streams.emplace_back(9, rank, WorkerEventStreamOptions{batching});
    indexers.emplace_back(9, rank, /*buffer_size=*/16);
  }
  RadixTree router;
  uint64_t now = 0;

  auto deliver = [&](DpRank rank, std::vector<RouterEvent> events) {
    for (const RouterEvent& event : events) {
      (void)indexers[rank].apply(event);
      if (event.storage_tier == StorageTier::kDevice) (void)router.apply(event);
    }
  };

  while (!in.done()) {
    const uint8_t op = in.next();
    const DpRank rank = in.next() % kRanks;
    now += in.next() % 4;
    RouterEvent event;
    event.storage_tier = in.next() % 8 == 0 ? StorageTier::kHostPinned : StorageTier::kDevice;
    switch (op % 8) {
      case 0:
      case 1:
      case 2: {
        StoreData store;
        const uint8_t parent = in.next();
        if (parent % 3 != 0) store.parent_hash = parent % 32;
        const size_t blocks = in.next() % 9;
        for (size_t i = 0; i < blocks; ++i) {
          const uint8_t hash = in.next();
          store.blocks.push_back({hash % 32u, in.next() % 8u, std::nullopt});
        }
        event.event.data = std::move(store);
        break;
      }
      case 3:
      case 4: {
        RemoveData remove;
        const size_t hashes = in.next() % 5;
        for (size_t i = 0; i < hashes; ++i) remove.block_hashes.push_back(in.next() % 32);
        event.event.data = std::move(remove);
        break;
      }
      case 5:
        event.event.data = ClearData{};
        break;
      case 6: {
        std::vector<uint64_t> request;
        const size_t blocks = in.next() % 8;
        for (size_t i = 0; i < blocks; ++i) request.push_back(in.next() % 8);
        (void)router.find_matches(request, in.next() % 2);
        continue;
      }
      default: {
        WorkerKvQueryRequest query{9, rank, std::nullopt, std::nullopt};
        if (in.next() % 4) query.start_event_id = in.next() % 40;
        if (in.next() % 4) query.end_event_id = in.next() % 40;
        (void)indexers[rank].query(query);
        deliver(rank, streams[rank].poll(now));
        continue;
      }
    }
    deliver(rank, streams[rank].push(std::move(event), now));
  }

  for (DpRank rank = 0; rank < kRanks; ++rank) {
    deliver(rank, streams[rank].flush());
    const LocalIndexer& indexer = indexers[rank];
    check(indexer.counters().id_gaps == 0);
    check(indexer.last_event_id().value_or(0) == streams[rank].last_event_id());
    const WorkerRank owner{9, rank};
    check(router.same_content(indexer.tree(), owner));
    RadixTree replica;
    for (const RouterEvent& event : indexer.tree().dump_events(9, rank)) {
      check(replica.apply(event).ok());
    }
    check(replica.same_content(indexer.tree(), owner));
    check(replica.block_count(owner) == indexer.block_count());
  }
  return 0;
}
