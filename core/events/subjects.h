// NATS subject and JetStream stream names for router-facing traffic
// (docs/wire-formats.md#subjects-and-streams).
//
// Event-plane subjects are dot-separated tokens; every token built from a name is
// percent-encoded (bytes outside [A-Za-z0-9_-] become %XX, uppercase hex), so ordinary
// names pass unchanged and a name containing '.' cannot split into extra tokens
// ("my.ns" → "my%2Ens"). Callers must pass non-empty names (config validation's job):
// an empty name yields an empty token, which NATS rejects.
#pragma once

#include <string>
#include <string_view>

#include "core/events/router_event.h"

namespace kvmock {

// One subject token: `name` with every byte outside [A-Za-z0-9_-] written as %XX.
std::string encode_subject_token(std::string_view name);

// namespace.{ns}.component.{component}.{kv_subject}: KV events on the NATS event plane.
std::string kv_events_subject(std::string_view ns, std::string_view component,
                              std::string_view kv_subject);

// namespace.{ns}.kv_metrics: ActiveLoad on the NATS event plane (namespace scope).
std::string kv_metrics_subject(std::string_view ns);

// namespace.{ns}.worker_kv_indexer_query.{worker_id}: local-indexer query service.
std::string kv_indexer_query_subject(std::string_view ns, WorkerId worker_id);

// Dynamo's Slug rules (lib/runtime/src/slug.rs, §2.7): lowercase, keep [a-z0-9_-], any
// other character (a Unicode scalar, not a byte) becomes '_', then leading '_' are
// stripped. Invalid UTF-8 bytes count as one character each.
std::string slugify(std::string_view s);

// The durable stream of a component's KV events:
// slugify("namespace.{ns}.component.{component}.kv_events") with '_' turned into '-',
// e.g. ("dynamo", "backend") → "namespace-dynamo-component-backend-kv-events".
std::string jetstream_stream_name(std::string_view ns, std::string_view component);

// {stream}.{kv_subject}: the subject events are published to inside that stream (the
// stream captures `{stream}.*`). `kv_subject` is encoded like any other token.
std::string jetstream_subject(std::string_view stream, std::string_view kv_subject);

}  // namespace kvmock
