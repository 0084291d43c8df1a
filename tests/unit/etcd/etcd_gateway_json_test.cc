#include "transport/etcd/etcd_gateway_json.h"

#include <gtest/gtest.h>

namespace kvmock::etcd {
namespace {

TEST(EtcdBase64, MatchesTheStandardAlphabetWithPadding) {
  EXPECT_EQ(base64_encode(""), "");
  EXPECT_EQ(base64_encode("f"), "Zg==");
  EXPECT_EQ(base64_encode("fo"), "Zm8=");
  EXPECT_EQ(base64_encode("foo"), "Zm9v");
  EXPECT_EQ(base64_encode("v1/instances/dynamo/backend/generate/694d99c0acbd2001"),
            "djEvaW5zdGFuY2VzL2R5bmFtby9iYWNrZW5kL2dlbmVyYXRlLzY5NGQ5OWMwYWNiZDIwMDE=");
  EXPECT_EQ(base64_encode(std::string("\xfb\xff", 2)), "+/8=");
}

TEST(EtcdBase64, DecodesPaddedUnpaddedAndUrlSafeTextAndRefusesOtherBytes) {
  EXPECT_EQ(*base64_decode("Zm8="), "fo");
  EXPECT_EQ(*base64_decode("Zm8"), "fo");
  EXPECT_EQ(*base64_decode("-_8="), std::string("\xfb\xff", 2));
  EXPECT_EQ(base64_decode("Zm9v!").error().reason, "bad_base64");
  EXPECT_EQ(base64_decode("Z").error().reason, "bad_base64");
}

TEST(EtcdPrefixRangeEnd, IncrementsTheLastByteThatCanBeIncremented) {
  EXPECT_EQ(prefix_range_end("v1/instances/"), "v1/instances0");
  EXPECT_EQ(prefix_range_end(std::string("a\xff", 2)), "b");
  EXPECT_EQ(prefix_range_end(""), std::string(1, '\0'));
  EXPECT_EQ(prefix_range_end(std::string("\xff", 1)), std::string(1, '\0'));
}

TEST(EtcdGatewayRequests, WriteInt64FieldsAsStringsAndBytesAsBase64) {
  EXPECT_EQ(lease_grant_request(std::chrono::seconds(10), 0), R"({"TTL":"10"})");
  EXPECT_EQ(lease_grant_request(std::chrono::seconds(10), 7587890000000000001),
            R"({"ID":"7587890000000000001","TTL":"10"})");
  EXPECT_EQ(lease_id_request(42), R"({"ID":"42"})");
  EXPECT_EQ(create_if_absent_request("a", "b", 12),
            R"({"compare":[{"key":"YQ==","result":"EQUAL","target":"VERSION","version":"0"}],)"
            R"("failure":[{"request_range":{"key":"YQ=="}}],)"
            R"("success":[{"request_put":{"key":"YQ==","lease":"12","value":"Yg=="}}]})");
  EXPECT_EQ(range_request("a", "b"), R"({"key":"YQ==","range_end":"Yg=="})");
}

TEST(EtcdGatewayResponses, LeaseGrantReadsStringIdsBeyondDoublePrecision) {
  auto grant = parse_lease_grant_response(
      R"({"header":{"revision":"1"},"ID":"7587890000000000001","TTL":"10"})");
  ASSERT_TRUE(grant.ok()) << grant.error().message;
  EXPECT_EQ(grant->id, 7587890000000000001);
  EXPECT_EQ(grant->ttl_seconds, 10);
  EXPECT_EQ(parse_lease_grant_response(R"({"ID":12,"TTL":3})")->id, 12);
  EXPECT_EQ(parse_lease_grant_response(R"({"ID":"x","TTL":"10"})").error().reason, "bad_response");
  EXPECT_EQ(parse_lease_grant_response(R"({"TTL":"10"})").error().reason, "bad_response");
  EXPECT_EQ(parse_lease_grant_response("not json").error().reason, "bad_json");
  EXPECT_EQ(parse_lease_grant_response(R"({"ID":"99999999999999999999","TTL":"1"})").error().reason,
            "bad_response");
}

TEST(EtcdGatewayResponses, KeepAliveReadsOneResultPerLineAndAMissingTtlAsGone) {
  auto ttls = parse_keep_alive_response(
      "{\"result\":{\"header\":{},\"ID\":\"1\",\"TTL\":\"10\"}}\n"
      "{\"result\":{\"header\":{},\"ID\":\"2\"}}\n"
      "{\"result\":{\"ID\":\"3\",\"TTL\":\"-1\"}}\n");
  ASSERT_TRUE(ttls.ok()) << ttls.error().message;
  EXPECT_EQ(*ttls, (std::vector<LeaseGrant>{{1, 10}, {2, 0}, {3, -1}}));
  EXPECT_TRUE(parse_keep_alive_response("")->empty());
  EXPECT_EQ(parse_keep_alive_response(R"({"ID":"1"})").error().reason, "bad_response");
  EXPECT_EQ(parse_keep_alive_response(R"({"result":{"ID":"one"}})").error().reason, "bad_response");
}

TEST(EtcdGatewayResponses, StreamingErrorsCarryEtcdsMessage) {
  auto ttls = parse_keep_alive_response(
      R"({"error":{"grpc_code":14,"http_code":503,"message":"etcdserver: no leader",)"
      R"("http_status":"Service Unavailable"}})");
  ASSERT_FALSE(ttls.ok());
  EXPECT_EQ(ttls.error().reason, "gateway_error");
  EXPECT_NE(ttls.error().message.find("etcdserver: no leader"), std::string::npos);
}

TEST(EtcdGatewayResponses, UnaryErrorsOfBothGatewayVersionsAreRecognised) {
  const GatewayError v34 =
      parse_gateway_error(R"({"error":"etcdserver: requested lease not found",)"
                          R"("message":"etcdserver: requested lease not found","code":5})");
  EXPECT_EQ(v34.grpc_code, kGrpcNotFound);
  EXPECT_EQ(v34.message, "etcdserver: requested lease not found");
  const GatewayError v35 = parse_gateway_error(
      R"({"code":9,"message":"etcdserver: lease already exists","details":[]})");
  EXPECT_EQ(v35.grpc_code, kGrpcFailedPrecondition);
  EXPECT_EQ(parse_gateway_error(R"({"header":{},"ID":"1","TTL":"10","error":""})").grpc_code, 0);
  EXPECT_EQ(parse_gateway_error("[]").grpc_code, 0);
}

TEST(EtcdGatewayResponses, TxnRangeAndDeleteRangeBodies) {
  EXPECT_TRUE(*parse_txn_succeeded(R"({"header":{},"succeeded":true,"responses":[]})"));
  EXPECT_FALSE(*parse_txn_succeeded(R"({"header":{},"responses":[]})"));
  EXPECT_EQ(parse_txn_succeeded(R"({"succeeded":"yes"})").error().reason, "bad_response");

  auto listed = parse_range_response(
      R"({"header":{},"kvs":[{"key":"YQ==","create_revision":"2","mod_revision":"2",)"
      R"("version":"1","value":"Yg==","lease":"12345"}],"count":"1"})");
  ASSERT_TRUE(listed.ok()) << listed.error().message;
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ((*listed)[0], (KeyValue{"a", "b", 12345, 1}));
  EXPECT_TRUE(parse_range_response(R"({"header":{}})")->empty());
  EXPECT_EQ(parse_range_response(R"({"kvs":[{"key":"!!"}]})").error().reason, "bad_response");

  EXPECT_EQ(*parse_delete_range_response(R"({"header":{},"deleted":"2"})"), 2);
  EXPECT_EQ(*parse_delete_range_response(R"({"header":{}})"), 0);
}

}  // namespace
}  // namespace kvmock::etcd
