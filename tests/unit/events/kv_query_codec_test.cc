#include "core/events/kv_query_codec.h"

#include <gtest/gtest.h>

#include "core/events/router_event_codec.h"
#include "tests/unit/events/codec_test_util.h"

namespace kvmock {
namespace {

using testing_util::golden_router_event;
using testing_util::kAllFields;

RouterEvent removed(EventId id) {
  RouterEvent e;
  e.worker_id = 7;
  e.event.event_id = id;
  e.event.dp_rank = 1;
  e.event.data = RemoveData{{UINT64_MAX}};
  return e;
}

// --- Request ---------------------------------------------------------------------------

TEST(KvQueryCodec, RequestEncodesAllFourFieldsWithNulls) {
  EXPECT_EQ(encode_worker_kv_query_request_json({42, 1, std::nullopt, std::nullopt}),
            R"({"worker_id":42,"dp_rank":1,"start_event_id":null,"end_event_id":null})");
  EXPECT_EQ(encode_worker_kv_query_request_json({42, 0, 5, 9}),
            R"({"worker_id":42,"dp_rank":0,"start_event_id":5,"end_event_id":9})");
}

TEST(KvQueryCodec, RequestRoundTrips) {
  for (const WorkerKvQueryRequest& req :
       {WorkerKvQueryRequest{42, 1, std::nullopt, std::nullopt},
        WorkerKvQueryRequest{UINT64_MAX, 7, 1ull << 63, UINT64_MAX},
        WorkerKvQueryRequest{1, 0, 3, std::nullopt}}) {
    auto decoded = decode_worker_kv_query_request_json(encode_worker_kv_query_request_json(req));
    ASSERT_TRUE(decoded.ok()) << decoded.error().message;
    EXPECT_EQ(*decoded, req);
  }
}

TEST(KvQueryCodec, RequestFromOlderOrNewerRoutersDecodes) {
  auto older = decode_worker_kv_query_request_json(R"({"worker_id":42,"start_event_id":3})");
  ASSERT_TRUE(older.ok()) << older.error().message;
  EXPECT_EQ(*older, (WorkerKvQueryRequest{42, 0, 3, std::nullopt}));
  auto newer = decode_worker_kv_query_request_json(
      R"({"worker_id":42,"dp_rank":2,"start_event_id":null,"end_event_id":null,)"
      R"("supports_tree_dump_failed":true,"kind":{"status":{}}})");
  ASSERT_TRUE(newer.ok()) << newer.error().message;
  EXPECT_EQ(*newer, (WorkerKvQueryRequest{42, 2, std::nullopt, std::nullopt}));
}

TEST(KvQueryCodec, RequestWithoutWorkerIdOrWithBadIdIsRejected) {
  auto missing = decode_worker_kv_query_request_json(R"({"dp_rank":0})");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().reason, "missing_field");
  EXPECT_EQ(missing.error().message, "worker_id: required field is missing");
  auto bad = decode_worker_kv_query_request_json(R"({"worker_id":1,"start_event_id":"3"})");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().reason, "bad_type");
  EXPECT_EQ(bad.error().message, "start_event_id: expected unsigned integer, got string");
}

// --- Response ----------------------------------------------------------------------------

TEST(KvQueryCodec, EveryResponseVariantRoundTrips) {
  const std::vector<WorkerKvQueryResponse> responses = {
      QueryEvents{{removed(5), removed(6)}, 6},
      QueryEvents{{}, 0},
      QueryTreeDump{{golden_router_event()}, 1ull << 63},
      QueryTooNew{10, 20, 8},
      QueryInvalidRange{9, 3},
      QueryError{"buffer \"busy\"\n\x01 \xc3\xa9"},
  };
  for (const auto& response : responses) {
    for (const RouterEventFieldSet& fields : {RouterEventFieldSet{}, kAllFields}) {
      const std::string json = encode_worker_kv_query_response_json(response, fields);
      auto decoded = decode_worker_kv_query_response_json(json);
      ASSERT_TRUE(decoded.ok()) << json << ": " << decoded.error().message;
      EXPECT_EQ(*decoded, response) << json;
    }
  }
}

TEST(KvQueryCodec, EventsResponseHasTheExactJsonText) {
  const WorkerKvQueryResponse response = QueryEvents{{removed(5)}, 5};
  EXPECT_EQ(
      encode_worker_kv_query_response_json(response),
      R"({"Events":{"events":[{"worker_id":7,"storage_tier":"device","event":{"event_id":5,)"
      R"("data":{"removed":{"block_hashes":[18446744073709551615]}},"dp_rank":1}}],"last_event_id":5}})");
}

TEST(KvQueryCodec, TreeDumpResponseHasTheExactJsonText) {
  const WorkerKvQueryResponse response = QueryTreeDump{{golden_router_event()}, 12};
  EXPECT_EQ(
      encode_worker_kv_query_response_json(response),
      R"({"TreeDump":{"events":[{"worker_id":7,"storage_tier":"device","event":{"event_id":1,)"
      R"("data":{"stored":{"parent_hash":null,"blocks":[{"block_hash":9143094415614847814,)"
      R"("tokens_hash":9143094415614847814,"mm_extra_info":null}]}},"dp_rank":0}}],)"
      R"("last_event_id":12}})");
}

TEST(KvQueryCodec, ScalarResponsesHaveTheExactJsonText) {
  EXPECT_EQ(encode_worker_kv_query_response_json(QueryTooNew{10, 20, 8}),
            R"({"TooNew":{"requested_start":10,"requested_end":20,"newest_available":8}})");
  EXPECT_EQ(encode_worker_kv_query_response_json(QueryInvalidRange{9, 3}),
            R"({"InvalidRange":{"start_id":9,"end_id":3}})");
  EXPECT_EQ(encode_worker_kv_query_response_json(QueryError{"a\"b\\c\n\x1f"}),
            R"({"Error":"a\"b\\c\n\u001f"})");
}

TEST(KvQueryCodec, ErrorMessageWithInvalidUtf8IsSanitisedToValidJson) {
  const std::string json = encode_worker_kv_query_response_json(QueryError{"bad\xff\xc3"});
  EXPECT_EQ(json, "{\"Error\":\"bad\xef\xbf\xbd\xef\xbf\xbd\"}");
  auto decoded = decode_worker_kv_query_response_json(json);
  ASSERT_TRUE(decoded.ok()) << decoded.error().message;
  EXPECT_EQ(std::get<QueryError>(*decoded).message, "bad\xef\xbf\xbd\xef\xbf\xbd");
}

TEST(KvQueryCodec, OldListFormsOfEventsAndTreeDumpDecode) {
  const std::string event_json = encode_router_event_json(removed(8));
  auto events = decode_worker_kv_query_response_json(R"({"Events":[)" + event_json + "]}");
  ASSERT_TRUE(events.ok()) << events.error().message;
  EXPECT_EQ(*events, WorkerKvQueryResponse(QueryEvents{{removed(8)}, 8}));
  auto dump = decode_worker_kv_query_response_json(R"({"TreeDump":[)" + event_json + "]}");
  ASSERT_TRUE(dump.ok()) << dump.error().message;
  EXPECT_EQ(*dump, WorkerKvQueryResponse(QueryTreeDump{{removed(8)}, 0}));
  auto empty = decode_worker_kv_query_response_json(R"({"Events":[]})");
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(*empty, WorkerKvQueryResponse(QueryEvents{{}, 0}));
}

TEST(KvQueryCodec, NewestTreeDumpWithResetScopeDecodes) {
  auto dump = decode_worker_kv_query_response_json(
      R"({"TreeDump":{"events":[],"last_event_id":4,"reset_scope":"all"}})");
  ASSERT_TRUE(dump.ok()) << dump.error().message;
  EXPECT_EQ(*dump, WorkerKvQueryResponse(QueryTreeDump{{}, 4}));
}

TEST(KvQueryCodec, UnknownVariantsAndBadEventsAreRejectedWithPaths) {
  auto unknown = decode_worker_kv_query_response_json(
      R"({"TreeDumpFailed":{"last_event_id":1,"message":"x"}})");
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.error().reason, "bad_value");
  auto bad_event = decode_worker_kv_query_response_json(
      R"({"Events":{"events":[{"worker_id":1,"event":{"event_id":1,"data":"cleared"}},)"
      R"({"worker_id":-1,"event":{"event_id":1,"data":"cleared"}}],"last_event_id":1}})");
  ASSERT_FALSE(bad_event.ok());
  EXPECT_EQ(bad_event.error().reason, "bad_value");
  EXPECT_EQ(bad_event.error().message,
            "Events.events[1].worker_id: expected unsigned integer, got a negative number");
  auto missing = decode_worker_kv_query_response_json(R"({"Events":{"events":[]}})");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().reason, "missing_field");
  EXPECT_EQ(missing.error().message, "Events.last_event_id: required field is missing");
  auto error_not_string = decode_worker_kv_query_response_json(R"({"Error":{"msg":"x"}})");
  ASSERT_FALSE(error_not_string.ok());
  EXPECT_EQ(error_not_string.error().reason, "bad_type");
}

}  // namespace
}  // namespace kvmock
