// RouterEvent readers over an already parsed document tree, for codecs that embed
// router events in a larger document (the indexer query response). Internal to
// core/events; everyone else uses router_event_codec.h.
#pragma once

#include "core/events/codec_support.h"
#include "core/events/router_event.h"

namespace kvmock::codec {

Result<RouterEvent> read_router_event(const JsonNode& node, const Path& path);
Result<RouterEvent> read_router_event(const MsgNode& node, const Path& path);

}  // namespace kvmock::codec
