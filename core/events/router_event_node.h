// RouterEvent readers over an already parsed document tree and a writer into an open
// JSON document, for codecs that embed router events in a larger document (the indexer
// query response). Internal to core/events; everyone else uses router_event_codec.h.
#pragma once

#include "core/events/codec_support.h"
#include "core/events/router_event.h"

namespace kvmock::codec {

Result<RouterEvent> read_router_event(const JsonNode& node, const Path& path);
Result<RouterEvent> read_router_event(const MsgNode& node, const Path& path);

// Writes `event` as the next value of `w`, exactly as encode_router_event_json would.
void write_router_event(const RouterEvent& event, const RouterEventFieldSet& fields, JsonWriter& w);

}  // namespace kvmock::codec
