// One record a Dynamo worker publishes in discovery (docs/dynamo-discovery.md): a key under
// the store's root ("v1/instances/...", "v1/mdc/...", "v1/event_channels/...") and the
// compact JSON value Dynamo's frontend reads. Built by core/dynamo/discovery_records.h,
// written by a transport/dynamo discovery backend (etcd or files).
#pragma once

#include <string>

namespace kvmock::dynamo {

struct DiscoveryRecord {
  std::string key;
  std::string value;

  bool operator==(const DiscoveryRecord&) const = default;
};

}  // namespace kvmock::dynamo
