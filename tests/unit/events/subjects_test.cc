#include "core/events/subjects.h"

#include <gtest/gtest.h>

namespace kvmock {
namespace {

TEST(Subjects, KvEventsSubjectFollowsComponentScope) {
  EXPECT_EQ(kv_events_subject("dynamo", "backend", "kv_events"),
            "namespace.dynamo.component.backend.kv_events");
  EXPECT_EQ(kv_events_subject("dynamo", "backend", "kv-events"),
            "namespace.dynamo.component.backend.kv-events");
}

TEST(Subjects, MetricsAndQuerySubjectsFollowNamespaceScope) {
  EXPECT_EQ(kv_metrics_subject("dynamo"), "namespace.dynamo.kv_metrics");
  EXPECT_EQ(kv_indexer_query_subject("dynamo", 1000),
            "namespace.dynamo.worker_kv_indexer_query.1000");
  EXPECT_EQ(kv_indexer_query_subject("dynamo", UINT64_MAX),
            "namespace.dynamo.worker_kv_indexer_query.18446744073709551615");
}

TEST(Subjects, NamesWithDotsOrOtherBytesArePercentEncoded) {
  EXPECT_EQ(kv_events_subject("my.ns", "back end", "kv_events"),
            "namespace.my%2Ens.component.back%20end.kv_events");
  EXPECT_EQ(kv_metrics_subject("a*b>c"), "namespace.a%2Ab%3Ec.kv_metrics");
  EXPECT_EQ(kv_indexer_query_subject("x.y", 1), "namespace.x%2Ey.worker_kv_indexer_query.1");
  EXPECT_EQ(encode_subject_token("Az09_-"), "Az09_-");
  EXPECT_EQ(encode_subject_token("%"), "%25");
  EXPECT_EQ(encode_subject_token("\xc3\xa9"), "%C3%A9");
}

TEST(Subjects, StreamNameIsSlugifiedWithDashes) {
  EXPECT_EQ(jetstream_stream_name("dynamo", "backend"),
            "namespace-dynamo-component-backend-kv-events");
  EXPECT_EQ(jetstream_stream_name("My.NS", "vllm_worker"),
            "namespace-my-ns-component-vllm-worker-kv-events");
  EXPECT_EQ(jetstream_subject("namespace-dynamo-component-backend-kv-events", "kv_events"),
            "namespace-dynamo-component-backend-kv-events.kv_events");
}

TEST(Subjects, SlugifyLowercasesReplacesAndStripsLeadingUnderscores) {
  EXPECT_EQ(slugify("namespace.dynamo.component.backend.kv_events"),
            "namespace_dynamo_component_backend_kv_events");
  EXPECT_EQ(slugify("Hello World-1"), "hello_world-1");
  EXPECT_EQ(slugify("..__x.y"), "x_y");
  EXPECT_EQ(slugify("___"), "");
  EXPECT_EQ(slugify(""), "");
}

TEST(Subjects, SlugifyReplacesEachUnicodeCharacterOnce) {
  EXPECT_EQ(slugify("a\xc3\xa9"
                    "b"),
            "a_b");  // é: one character, one '_'
  EXPECT_EQ(slugify("a\xf0\x9f\x98\x80"
                    "b"),
            "a_b");                           // emoji
  EXPECT_EQ(slugify("a\xe2\x84\xaa"), "ak");  // KELVIN SIGN lowercases to 'k'
  EXPECT_EQ(slugify("\xc4\xb0x"), "i_x");     // İ → "i" + combining dot
  EXPECT_EQ(slugify("a\xff\xfe"
                    "b"),
            "a__b");  // invalid bytes count one each
}

}  // namespace
}  // namespace kvmock
