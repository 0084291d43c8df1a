#include "transport/dynamo/etcd_discovery.h"

#include <algorithm>
#include <utility>

namespace kvmock::dynamo {
namespace {

constexpr const char* kBackendLabel = "etcd";
constexpr const char* kRegrantsMetric = "kvmock_dynamo_discovery_lease_regrants_total";
constexpr const char* kRequestsMetric = "kvmock_dynamo_discovery_etcd_requests_total";

constexpr const char* kGrant = "grant";
constexpr const char* kRegister = "register";
constexpr const char* kKeepAlive = "keepalive";
constexpr const char* kRevoke = "revoke";

}  // namespace

EtcdDiscovery::EtcdDiscovery(std::unique_ptr<etcd::EtcdClient> client, MetricsRegistry& metrics,
                             EtcdDiscoveryOptions options, const Clock& clock)
    : client_(std::move(client)),

      options_(options),
      clock_(clock),
      instances_gauge_(metrics.gauge(kDiscoveryInstancesMetric, kDiscoveryInstancesHelp,
                                     {{"backend", kBackendLabel}})),
      regrants_(metrics.counter(kRegrantsMetric,
                                "etcd leases granted again (same id) after etcd lost them; "
                                "the instance's records were written again",
                                {{"backend", kBackendLabel}})) {
  for (const char* operation : {kGrant, kRegister, kKeepAlive, kRevoke}) {
    errors_[operation] = &metrics.counter(kDiscoveryErrorsMetric, kDiscoveryErrorsHelp,
                                          {{"backend", kBackendLabel}, {"operation", operation}});
    requests_[operation] = &metrics.counter(
        kRequestsMetric, "etcd calls, by operation (a keep-alive call renews a batch of leases)",
        {{"operation", operation}});
  }
}

EtcdDiscovery::~EtcdDiscovery() = default;

void EtcdDiscovery::count_error(const char* operation) { errors_.at(operation)->inc(); }
void EtcdDiscovery::count_request(const char* operation) { requests_.at(operation)->inc(); }

void EtcdDiscovery::update_instances_gauge() { instances_gauge_.set(double(live_instances())); }

size_t EtcdDiscovery::live_instances() const {
  return static_cast<size_t>(std::count_if(instances_.begin(), instances_.end(),
                                           [](const auto& entry) { return !entry.second.lost; }));
}

Clock::SteadyTime EtcdDiscovery::renewal_time(Clock::SteadyTime now, int64_t ttl_seconds) const {
  // Renew when half the TTL etcd granted has passed, as Dynamo's keep-alive does: one lost
  // or slow round still leaves the other half.
  const auto half_ttl = std::chrono::milliseconds(std::max<int64_t>(ttl_seconds, 1) * 500);
  return now + half_ttl;
}

Result<uint64_t> EtcdDiscovery::allocate_instance_id(Clock::SteadyTime now) {
  if (shut_down_) return make_error("shut_down", "etcd discovery is shut down");
  count_request(kGrant);
  auto grant = client_->grant_lease(options_.lease_ttl);
  if (!grant.ok()) {
    count_error(kGrant);
    return grant.error();
  }
  const auto id = static_cast<uint64_t>(grant->id);
  instances_[id] = Instance{{}, renewal_time(now, grant->ttl_seconds), false};
  update_instances_gauge();
  return id;
}

Result<bool> EtcdDiscovery::write_records(uint64_t id,
                                          const std::vector<DiscoveryRecord>& records) {
  for (const DiscoveryRecord& record : records) {
    count_request(kRegister);
    // Create-if-absent, as Dynamo registers: a key that exists is not overwritten and
    // still counts as written (docs/dynamo-discovery-backends.md#etcd).
    auto written = client_->create_if_absent(record.key, record.value, static_cast<int64_t>(id));
    if (!written.ok()) {
      count_error(kRegister);
      return make_error(written.error().reason,
                        "writing " + record.key + ": " + written.error().message);
    }
  }
  return true;
}

Result<bool> EtcdDiscovery::register_records(uint64_t instance_id,
                                             std::vector<DiscoveryRecord> records) {
  const auto found = instances_.find(instance_id);
  if (found == instances_.end()) {
    return make_error("unknown_instance",
                      "instance " + std::to_string(instance_id) + " has no etcd lease here");
  }
  Instance& instance = found->second;
  // Keep the union, newest value per key: a later call may add records (Dynamo writes the
  // model card before the endpoint instances), and all are written again after a re-grant.
  for (DiscoveryRecord& record : records) {
    auto same_key =
        std::find_if(instance.records.begin(), instance.records.end(),
                     [&](const DiscoveryRecord& kept) { return kept.key == record.key; });
    if (same_key != instance.records.end()) {
      *same_key = record;
    } else {
      instance.records.push_back(record);
    }
  }
  if (instance.lost) return true;  // the repair writes them with the new lease
  return write_records(instance_id, records);
}

void EtcdDiscovery::repair(uint64_t id, Instance& instance, Clock::SteadyTime now) {
  count_request(kGrant);
  auto grant = client_->grant_lease(options_.lease_ttl, static_cast<int64_t>(id));
  int64_t ttl = options_.lease_ttl.count();
  if (grant.ok()) {
    ttl = grant->ttl_seconds;
  } else if (grant.error().reason != "failed_precondition") {
    // "failed_precondition": the lease exists after all (an earlier repair granted it but
    // could not write every record), so only the records are missing.
    count_error(kGrant);
    instance.renew_at = now + options_.retry_delay;
    return;
  }
  if (!write_records(id, instance.records).ok()) {
    instance.renew_at = now + options_.retry_delay;
    return;
  }
  instance.lost = false;
  instance.renew_at = renewal_time(now, ttl);
  regrants_.inc();
}

void EtcdDiscovery::keep_alive_due(Clock::SteadyTime now) {
  std::vector<std::pair<Clock::SteadyTime, uint64_t>> due;
  for (const auto& [id, instance] : instances_) {
    if (!instance.lost && instance.renew_at <= now) due.emplace_back(instance.renew_at, id);
  }
  if (due.empty()) return;
  if (due.size() > options_.max_keep_alives_per_tick) {
    // The longest overdue first, so a backlog drains fairly over the next ticks.
    std::nth_element(due.begin(), due.begin() + options_.max_keep_alives_per_tick, due.end());
    due.resize(options_.max_keep_alives_per_tick);
  }
  std::vector<int64_t> ids;
  ids.reserve(due.size());
  for (const auto& entry : due) ids.push_back(static_cast<int64_t>(entry.second));

  count_request(kKeepAlive);
  auto ttls = client_->keep_alive(ids);
  if (!ttls.ok()) {
    count_error(kKeepAlive);
    for (const auto& entry : due) instances_[entry.second].renew_at = now + options_.retry_delay;
    return;
  }
  for (size_t i = 0; i < due.size(); ++i) {
    Instance& instance = instances_[due[i].second];
    if ((*ttls)[i] > 0) {
      instance.renew_at = renewal_time(now, (*ttls)[i]);
    } else {
      instance.lost = true;  // etcd deleted the lease and with it every record
      instance.renew_at = now;
    }
  }
}

void EtcdDiscovery::tick(Clock::SteadyTime now) {
  if (shut_down_) return;
  keep_alive_due(now);
  size_t repairs = 0;
  for (auto& [id, instance] : instances_) {
    if (repairs == options_.max_repairs_per_tick) break;
    if (!instance.lost || instance.renew_at > now) continue;
    repair(id, instance, now);
    ++repairs;
  }
  update_instances_gauge();
}

void EtcdDiscovery::remove(uint64_t instance_id) {
  if (instances_.erase(instance_id) == 0) return;
  count_request(kRevoke);
  auto revoked = client_->revoke_lease(static_cast<int64_t>(instance_id));
  // A lease etcd no longer has is gone already; anything else leaves the records to expire
  // with the lease's TTL.
  if (!revoked.ok() && revoked.error().reason != "not_found") count_error(kRevoke);
  update_instances_gauge();
}

void EtcdDiscovery::shutdown() {
  if (shut_down_) return;
  shut_down_ = true;
  const auto deadline = clock_.steady_now() + options_.shutdown_budget;
  for (const auto& [id, instance] : instances_) {
    if (clock_.steady_now() >= deadline) {
      count_error(kRevoke);
      break;
    }
    count_request(kRevoke);
    auto revoked = client_->revoke_lease(static_cast<int64_t>(id));
    if (revoked.ok() || revoked.error().reason == "not_found") continue;
    count_error(kRevoke);
    // etcd did not answer: every other revoke would wait out the same timeout.
    if (revoked.error().reason == "unreachable") break;
  }
  instances_.clear();
  update_instances_gauge();
}

}  // namespace kvmock::dynamo
