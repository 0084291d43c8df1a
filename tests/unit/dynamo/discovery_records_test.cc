#include "core/dynamo/discovery_records.h"

#include <gtest/gtest.h>

namespace kvmock::dynamo {
namespace {

// The worker of docs/dynamo-discovery.md's examples: lease 7587890000000000001, which is
// 0x694d99c0acbd2001, listening on 10.0.0.5:41235.
WorkerDiscoverySpec example_worker() {
  WorkerDiscoverySpec spec;
  spec.dynamo_namespace = "dynamo";
  spec.component = "backend";
  spec.instance_id = 7587890000000000001ULL;
  spec.request_plane = RequestPlane::kTcp;
  spec.tcp_address = "10.0.0.5:41235";
  spec.data_parallel_size = 1;
  spec.card_json = R"({"display_name":"tiny"})";
  return spec;
}

TEST(DynamoDiscoveryRecords, TcpWorkerRecordsAreByteExact) {
  const std::vector<DiscoveryRecord> expected = {
      {"v1/mdc/dynamo/backend/generate/694d99c0acbd2001",
       R"({"type":"Model","namespace":"dynamo","component":"backend","endpoint":"generate",)"
       R"("instance_id":7587890000000000001,"card_json":{"display_name":"tiny"}})"},
      {"v1/instances/dynamo/backend/generate/694d99c0acbd2001",
       R"({"type":"Endpoint","component":"backend","endpoint":"generate","namespace":"dynamo",)"
       R"("instance_id":7587890000000000001,)"
       R"("transport":{"tcp":"10.0.0.5:41235/694d99c0acbd2001/generate"}})"},
      {"v1/instances/dynamo/backend/worker_kv_indexer_query_dp0/694d99c0acbd2001",
       R"({"type":"Endpoint","component":"backend","endpoint":"worker_kv_indexer_query_dp0",)"
       R"("namespace":"dynamo","instance_id":7587890000000000001,)"
       R"("transport":{"tcp":"10.0.0.5:41235/694d99c0acbd2001/worker_kv_indexer_query_dp0"}})"},
      {"v1/event_channels/dynamo/backend/kv-events/694d99c0acbd2001",
       R"({"type":"EventChannel","namespace":"dynamo","component":"backend","topic":"kv-events",)"
       R"("instance_id":7587890000000000001,)"
       R"("transport":{"kind":"Nats","config":{"subject_prefix":"namespace.dynamo.component.backend"}}})"},
      {"v1/event_channels/dynamo//kv_metrics/694d99c0acbd2001",
       R"({"type":"EventChannel","namespace":"dynamo","component":"","topic":"kv_metrics",)"
       R"("instance_id":7587890000000000001,)"
       R"("transport":{"kind":"Nats","config":{"subject_prefix":"namespace.dynamo"}}})"},
  };
  EXPECT_EQ(worker_discovery_records(example_worker()), expected);
}

TEST(DynamoDiscoveryRecords, EachDpRankGetsItsOwnIndexerQueryInstance) {
  WorkerDiscoverySpec spec = example_worker();
  spec.data_parallel_size = 3;
  std::vector<std::string> query_keys;
  for (const DiscoveryRecord& record : worker_discovery_records(spec)) {
    if (record.key.find("worker_kv_indexer_query") != std::string::npos) {
      query_keys.push_back(record.key);
    }
  }
  EXPECT_EQ(query_keys,
            (std::vector<std::string>{
                "v1/instances/dynamo/backend/worker_kv_indexer_query_dp0/694d99c0acbd2001",
                "v1/instances/dynamo/backend/worker_kv_indexer_query_dp1/694d99c0acbd2001",
                "v1/instances/dynamo/backend/worker_kv_indexer_query_dp2/694d99c0acbd2001"}));
}

TEST(DynamoDiscoveryRecords, NatsRequestPlaneAdvertisesTheInstanceSubject) {
  WorkerDiscoverySpec spec = example_worker();
  spec.request_plane = RequestPlane::kNats;
  spec.tcp_address.clear();
  const std::vector<DiscoveryRecord> records = worker_discovery_records(spec);
  ASSERT_GE(records.size(), 3u);
  EXPECT_EQ(
      records[1].value,
      R"({"type":"Endpoint","component":"backend","endpoint":"generate","namespace":"dynamo",)"
      R"("instance_id":7587890000000000001,)"
      R"("transport":{"nats_tcp":"dynamo_backend.generate-694d99c0acbd2001"}})");
  EXPECT_NE(
      records[2].value.find(
          R"("transport":{"nats_tcp":"dynamo_backend.worker_kv_indexer_query_dp0-694d99c0acbd2001"})"),
      std::string::npos)
      << records[2].value;
}

TEST(DynamoDiscoveryRecords, ZmqEventPlaneAdvertisesOneEndpointInBothChannels) {
  WorkerDiscoverySpec spec = example_worker();
  spec.zmq_event_endpoint = "tcp://10.0.0.5:45123";
  const std::vector<DiscoveryRecord> records = worker_discovery_records(spec);
  ASSERT_EQ(records.size(), 5u);
  const std::string zmq_transport =
      R"("transport":{"kind":"Zmq","config":{"endpoint":"tcp://10.0.0.5:45123"}}})";
  for (size_t i : {3u, 4u}) {
    const std::string& value = records[i].value;
    ASSERT_GE(value.size(), zmq_transport.size());
    EXPECT_EQ(value.substr(value.size() - zmq_transport.size()), zmq_transport) << value;
  }
}

TEST(DynamoDiscoveryRecords, Release11NamesTheEventChannelKeySegments) {
  WorkerDiscoverySpec spec = example_worker();
  spec.release = DynamoRelease::k1_1;
  const std::vector<DiscoveryRecord> records = worker_discovery_records(spec);
  ASSERT_EQ(records.size(), 5u);
  EXPECT_EQ(records[3].key,
            "v1/event_channels/namespace/dynamo/component/backend/topic/kv-events/"
            "694d99c0acbd2001");
  EXPECT_EQ(records[4].key, "v1/event_channels/namespace/dynamo/topic/kv_metrics/694d99c0acbd2001");
  // Only the event-channel keys differ between the releases.
  const std::vector<DiscoveryRecord> release_1_0 = worker_discovery_records(example_worker());
  for (size_t i = 0; i < 3; ++i) EXPECT_EQ(records[i], release_1_0[i]);
}

TEST(DynamoDiscoveryRecords, KvEventsTopicFollowsTheSpec) {
  WorkerDiscoverySpec spec = example_worker();
  spec.kv_events_topic = "kv_events";
  const std::vector<DiscoveryRecord> records = worker_discovery_records(spec);
  ASSERT_EQ(records.size(), 5u);
  EXPECT_EQ(records[3].key, "v1/event_channels/dynamo/backend/kv_events/694d99c0acbd2001");
  EXPECT_NE(records[3].value.find(R"("topic":"kv_events")"), std::string::npos);
}

TEST(DynamoDiscoveryRecords, InstanceIdsPrintAllDigitsInValuesAndLowerHexInKeys) {
  WorkerDiscoverySpec spec = example_worker();
  spec.instance_id = 18446744073709551615ULL;  // beyond a double's 53-bit mantissa
  const std::vector<DiscoveryRecord> records = worker_discovery_records(spec);
  ASSERT_EQ(records.size(), 5u);
  EXPECT_EQ(records[1].key, "v1/instances/dynamo/backend/generate/ffffffffffffffff");
  EXPECT_NE(records[1].value.find(R"("instance_id":18446744073709551615,)"), std::string::npos)
      << records[1].value;
}

TEST(DynamoDiscoveryRecords, InstanceIdHexHasNoPaddingAndNoPrefix) {
  EXPECT_EQ(instance_id_hex(0), "0");
  EXPECT_EQ(instance_id_hex(0x1a2b3c), "1a2b3c");
  EXPECT_EQ(instance_id_hex(7587890000000000001ULL), "694d99c0acbd2001");
}

}  // namespace
}  // namespace kvmock::dynamo
