// Where a Dynamo worker's discovery records live (docs/dynamo-discovery-backends.md): etcd
// leases (EtcdDiscovery) or files on a shared filesystem (FileDiscovery). The daemon owns
// one backend for all its mock workers; each worker is one instance with its own id, and
// the records it registers stay visible only while the backend keeps that instance alive.
//
// Single-threaded: every call comes from one thread (the discovery tick thread). Time enters
// as an argument, so a test drives a backend with a manual clock.
#pragma once

#include <cstdint>
#include <vector>

#include "core/common/clock.h"
#include "core/common/result.h"
#include "core/dynamo/discovery_record.h"

namespace kvmock::dynamo {

// Metric families every backend reports, with label backend="etcd" or "file".
inline constexpr const char* kDiscoveryInstancesMetric = "kvmock_dynamo_discovery_instances";
inline constexpr const char* kDiscoveryErrorsMetric = "kvmock_dynamo_discovery_errors_total";
inline constexpr const char* kDiscoveryInstancesHelp =
    "Dynamo instances the discovery backend keeps registered (etcd: leases etcd confirmed last)";
inline constexpr const char* kDiscoveryErrorsHelp =
    "Discovery store operations that failed, by operation";

class DiscoveryBackend {
 public:
  virtual ~DiscoveryBackend() = default;

  // A new instance id (the etcd lease id, or a random id for files), kept alive from now
  // on by tick() until remove() or shutdown().
  virtual Result<uint64_t> allocate_instance_id(Clock::SteadyTime now) = 0;
  // Writes `records` for an instance from allocate_instance_id() (each backend's write rule
  // is in its header). The backend keeps the records, adding to those of earlier calls, to
  // write them again if the store loses them. An error means
  // some records may be missing; calling again with the same records is safe.
  virtual Result<bool> register_records(uint64_t instance_id,
                                        std::vector<DiscoveryRecord> records) = 0;
  // Keeps every instance alive and repairs lost ones; does a bounded amount of work per
  // call. Call about every 100 ms.
  virtual void tick(Clock::SteadyTime now) = 0;
  // Takes one instance out of discovery at once (its records disappear), as when a worker
  // crashes or stops. Unknown ids are ignored.
  virtual void remove(uint64_t instance_id) = 0;
  // Removes every instance, in bounded time; the backend is unused afterwards.
  virtual void shutdown() = 0;
};

}  // namespace kvmock::dynamo
