// Dynamo discovery in etcd (docs/dynamo-discovery-backends.md#etcd): one lease per
// instance, whose id is the instance id as in Dynamo; every record is put attached to that
// lease, so etcd deletes an instance's records by itself when the lease ends.
//
// Leases are kept alive in batches: each tick() makes one keep-alive call for the
// instances whose renewal is due (half the TTL after the last renewal), at most
// `max_keep_alives_per_tick` of them. A lease etcd no longer has (expired while etcd was
// unreachable, or revoked by someone else) is granted again with the same id and its
// records written again, so the instance id never changes. Dynamo's own runtime shuts down
// in that case; a mock worker keeps serving, and the re-grant is counted in
// kvmock_dynamo_discovery_lease_regrants_total.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "transport/dynamo/discovery_backend.h"
#include "transport/etcd/etcd_client.h"
#include "transport/metrics/metrics_registry.h"
#include "transport/time/system_clock.h"

namespace kvmock::dynamo {

struct EtcdDiscoveryOptions {
  // Dynamo 1.0 grants every lease with a 10 s TTL.
  std::chrono::seconds lease_ttl{10};
  // Bounds one tick's work: renewals share one keep-alive call, and each repair (re-grant plus
  // one write per record) is several requests.
  size_t max_keep_alives_per_tick = 1000;
  size_t max_repairs_per_tick = 8;
  // After a keep-alive or repair that got no answer from etcd, wait this long to try again.
  std::chrono::milliseconds retry_delay{1000};
  // shutdown() stops revoking after this long; leases it did not revoke expire in their TTL.
  std::chrono::milliseconds shutdown_budget{3000};
};

class EtcdDiscovery final : public DiscoveryBackend {
 public:
  // `clock` bounds shutdown() only; everything else takes the time as an argument.
  EtcdDiscovery(std::unique_ptr<etcd::EtcdClient> client, MetricsRegistry& metrics,
                EtcdDiscoveryOptions options = {}, const Clock& clock = SystemClock::instance());
  ~EtcdDiscovery() override;
  EtcdDiscovery(const EtcdDiscovery&) = delete;
  EtcdDiscovery& operator=(const EtcdDiscovery&) = delete;

  Result<uint64_t> allocate_instance_id(Clock::SteadyTime now) override;
  Result<bool> register_records(uint64_t instance_id,
                                std::vector<DiscoveryRecord> records) override;
  void tick(Clock::SteadyTime now) override;
  void remove(uint64_t instance_id) override;
  void shutdown() override;

  // Instances whose lease etcd confirmed last (not waiting for a re-grant).
  size_t live_instances() const;

 private:
  struct Instance {
    std::vector<DiscoveryRecord> records;  // everything registered, to write again after a re-grant
    Clock::SteadyTime renew_at;            // next keep-alive, or next repair when lost
    bool lost = false;                     // etcd has no lease with this id any more
  };

  // Writes every record of `instance` attached to lease `id`; the first error stops it.
  Result<bool> write_records(uint64_t id, const std::vector<DiscoveryRecord>& records);
  // Grants the lease again with the same id and rewrites the records.
  void repair(uint64_t id, Instance& instance, Clock::SteadyTime now);
  void keep_alive_due(Clock::SteadyTime now);
  void count_error(const char* operation);
  void count_request(const char* operation);
  void update_instances_gauge();
  Clock::SteadyTime renewal_time(Clock::SteadyTime now, int64_t ttl_seconds) const;

  std::unique_ptr<etcd::EtcdClient> client_;
  const EtcdDiscoveryOptions options_;
  const Clock& clock_;
  std::map<uint64_t, Instance> instances_;
  bool shut_down_ = false;

  Gauge& instances_gauge_;
  Counter& regrants_;
  std::map<std::string, Counter*> errors_;    // by operation
  std::map<std::string, Counter*> requests_;  // by operation
};

}  // namespace kvmock::dynamo
