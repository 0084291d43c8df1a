#include "core/common/ports.h"

#include <gtest/gtest.h>

namespace kvmock {
namespace {

TEST(Ports, WorkerRanksAreNumberedWorkerByWorker) {
  EXPECT_EQ(dp_slot(0, 2, 0), 0u);
  EXPECT_EQ(dp_slot(0, 2, 1), 1u);
  EXPECT_EQ(dp_slot(1, 2, 0), 2u);
  EXPECT_EQ(dp_slot(3, 2, 0), 6u);  // the slot count of 3 workers
  EXPECT_EQ(*port_for_index(5557, dp_slot(1, 2, 1)), 5560);
}

TEST(Ports, ARangePastTheLastPortIsAnError) {
  EXPECT_EQ(*port_for_index(65535, 0), 65535);
  EXPECT_EQ(*port_for_index(0, 1u << 20), 0);  // ephemeral stays ephemeral
  const auto past = port_for_index(65000, dp_slot(1000, 64, 0));
  ASSERT_FALSE(past.ok());
  EXPECT_EQ(past.error().reason, "bad_port");
}

}  // namespace
}  // namespace kvmock
