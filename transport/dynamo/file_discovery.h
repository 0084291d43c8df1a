// Dynamo discovery on a shared filesystem, as Dynamo's file store keeps it
// (docs/dynamo-discovery-backends.md#files): a record "v1/instances/rest/of/key" is the file
// {root}/v1/instances/{rest/of/key percent-encoded}, written whole under a temporary name
// and renamed into place, so a watcher never reads half a record; a file that exists is
// replaced. Liveness is the file's
// modification time: readers delete files older than the TTL, so the owner touches its
// files every max(TTL / 3, 1 s) and deletes them when the instance goes away.
//
// Instance ids are random (Dynamo draws one per process); here they come from a seeded
// generator so a test, or a deployment that wants stable ids, can fix them.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "transport/dynamo/discovery_backend.h"
#include "transport/metrics/metrics_registry.h"

namespace kvmock::dynamo {

struct FileDiscoveryOptions {
  // Dynamo's DYN_FILE_KV; Dynamo defaults it to $TMPDIR/dynamo_store_kv. Created if missing.
  std::filesystem::path root;
  // How old a file may get before readers treat it as dead (Dynamo: 10 s).
  std::chrono::seconds ttl{10};
  // Seeds the instance ids: the same seed gives the same ids in the same order.
  uint64_t seed = 0;
  // Bounds one tick's work: instances whose files are touched per tick.
  size_t max_refreshes_per_tick = 1000;
};

class FileDiscovery final : public DiscoveryBackend {
 public:
  FileDiscovery(MetricsRegistry& metrics, FileDiscoveryOptions options);
  ~FileDiscovery() override;
  FileDiscovery(const FileDiscovery&) = delete;
  FileDiscovery& operator=(const FileDiscovery&) = delete;

  // A random id below 2^63 (so it is also a valid etcd lease id), never 0 and never one
  // this backend already uses. Fails when the root directory cannot be created.
  Result<uint64_t> allocate_instance_id(Clock::SteadyTime now) override;
  Result<bool> register_records(uint64_t instance_id,
                                std::vector<DiscoveryRecord> records) override;
  // Touches the files of instances whose refresh is due; a file someone deleted (a reader
  // that found it stale) is written again.
  void tick(Clock::SteadyTime now) override;
  void remove(uint64_t instance_id) override;
  void shutdown() override;

  // The interval at which files are touched: max(ttl / 3, 1 s), as Dynamo's store does.
  std::chrono::milliseconds refresh_interval() const;
  // Where `key` ("v1/instances/ns/comp/ep/id") lives: {root}/{first two segments}/{the rest,
  // percent-encoded}. Fails for a key with fewer than three segments.
  Result<std::filesystem::path> path_for(std::string_view key) const;

 private:
  struct Instance {
    std::map<std::string, std::string> records;  // key -> value, to write again if deleted
    Clock::SteadyTime refresh_at;
  };

  Result<bool> write_atomically(const std::filesystem::path& target, std::string_view value);
  void delete_files(const Instance& instance);
  void count_error(const char* operation);

  const FileDiscoveryOptions options_;
  std::mt19937_64 ids_;
  std::mt19937_64 temp_names_;  // unseeded: two processes must not draw the same names
  std::map<uint64_t, Instance> instances_;
  bool shut_down_ = false;

  Gauge& instances_gauge_;
  std::map<std::string, Counter*> errors_;  // by operation
};

// Dynamo's file name for a key: every byte outside [A-Za-z0-9] as %XX, upper-case hex.
std::string percent_encode_key(std::string_view key);

}  // namespace kvmock::dynamo
