#include "core/indexer/buffered_event.h"

#include <gtest/gtest.h>

#include "tests/support/router_event_builders.h"

namespace kvmock {
namespace {

using testing::cleared;
using testing::make_event;
using testing::removed;
using testing::stored;

constexpr WorkerRank kOwner{7, 1};

RouterEvent round_trip(const RouterEvent& event) { return BufferedEvent(event).expand(kOwner); }

TEST(BufferedEvent, AStoredChainComesBackWithItsParentPositionTierAndMultimodalBlocks) {
  RouterEvent event = stored(kOwner.worker_id, kOwner.dp_rank, 41, {{42, 1}, {43, 2}, {44, 3}}, 9);
  auto& store = std::get<StoreData>(event.event.data);
  store.start_position = 32;
  store.blocks[1].mm_extra_info =
      MultimodalExtraInfo{{MultimodalObject{0xabc, {{3, 9}, {12, 14}}}}};
  event.storage_tier = StorageTier::kHostPinned;
  EXPECT_EQ(round_trip(event), event);
}

TEST(BufferedEvent, AChainFromTheRootKeepsNoParent) {
  const RouterEvent event = stored(kOwner.worker_id, kOwner.dp_rank, std::nullopt, {{5, 6}}, 1);
  EXPECT_EQ(round_trip(event), event);
}

TEST(BufferedEvent, RemovedAndClearedComeBackUnchanged) {
  const RouterEvent remove = removed(kOwner.worker_id, kOwner.dp_rank, {3, 1, 2}, 4);
  EXPECT_EQ(round_trip(remove), remove);
  const RouterEvent clear = cleared(kOwner.worker_id, kOwner.dp_rank, 5);
  EXPECT_EQ(round_trip(clear), clear);
  EXPECT_EQ(BufferedEvent(clear).event_id(), 5u);
}

TEST(BufferedEvent, AStoredBlockWithoutMultimodalInformationTakesSixteenBytes) {
  StoreData store;
  for (uint64_t i = 0; i < 62; ++i) store.blocks.push_back(StoredBlock{100 + i, i, std::nullopt});
  const BufferedEvent event(make_event(kOwner.worker_id, kOwner.dp_rank, std::move(store), 3));
  EXPECT_EQ(event.heap_bytes(), 62u * 16u);
}

}  // namespace
}  // namespace kvmock
