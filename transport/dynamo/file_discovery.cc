#include "transport/dynamo/file_discovery.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace kvmock::dynamo {
namespace {

constexpr const char* kBackendLabel = "file";
constexpr const char* kWrite = "write";
constexpr const char* kRefresh = "refresh";
constexpr const char* kRemove = "remove";
// Readers skip files with this prefix (Dynamo's file store names its temporary files so).
constexpr std::string_view kTempPrefix = ".tmp_";
constexpr int kTempNameAttempts = 16;
constexpr uint64_t kIdMask = (uint64_t{1} << 63) - 1;

bool is_alphanumeric(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

std::string errno_text() { return std::strerror(errno); }

}  // namespace

std::string percent_encode_key(std::string_view key) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(key.size() * 2);
  for (const char c : key) {
    const auto byte = static_cast<unsigned char>(c);
    if (is_alphanumeric(byte)) {
      out += c;
    } else {
      out += '%';
      out += kHex[byte >> 4];
      out += kHex[byte & 0xf];
    }
  }
  return out;
}

FileDiscovery::FileDiscovery(MetricsRegistry& metrics, FileDiscoveryOptions options)
    : options_(std::move(options)),
      ids_(options_.seed),
      temp_names_(std::random_device{}()),
      instances_gauge_(metrics.gauge(kDiscoveryInstancesMetric, kDiscoveryInstancesHelp,
                                     {{"backend", kBackendLabel}})) {
  for (const char* operation : {kWrite, kRefresh, kRemove}) {
    errors_[operation] = &metrics.counter(kDiscoveryErrorsMetric, kDiscoveryErrorsHelp,
                                          {{"backend", kBackendLabel}, {"operation", operation}});
  }
}

FileDiscovery::~FileDiscovery() = default;

void FileDiscovery::count_error(const char* operation) { errors_.at(operation)->inc(); }

std::chrono::milliseconds FileDiscovery::refresh_interval() const {
  return std::max<std::chrono::milliseconds>(
      std::chrono::duration_cast<std::chrono::milliseconds>(options_.ttl) / 3,
      std::chrono::seconds(1));
}

Result<std::filesystem::path> FileDiscovery::path_for(std::string_view key) const {
  // The bucket is the first two segments ("v1/instances", "v1/mdc", "v1/event_channels");
  // the rest of the key is the file name.
  const size_t first = key.find('/');
  const size_t second = first == std::string_view::npos ? first : key.find('/', first + 1);
  if (second == std::string_view::npos || first == 0 || second == first + 1 ||
      second + 1 == key.size()) {
    return make_error("bad_key", "discovery key '" + std::string(key) +
                                     "' is not bucket/bucket/key (v1/instances/...)");
  }
  return options_.root / std::string(key.substr(0, second)) /
         percent_encode_key(key.substr(second + 1));
}

Result<uint64_t> FileDiscovery::allocate_instance_id(Clock::SteadyTime now) {
  if (shut_down_) return make_error("shut_down", "file discovery is shut down");
  std::error_code error;
  std::filesystem::create_directories(options_.root, error);
  if (error) {
    count_error(kWrite);
    return make_error("io_error", "cannot create the discovery root " + options_.root.string() +
                                      ": " + error.message());
  }
  uint64_t id = 0;
  while (id == 0 || instances_.contains(id)) id = ids_() & kIdMask;
  instances_[id] = Instance{{}, now + refresh_interval()};
  instances_gauge_.set(double(instances_.size()));
  return id;
}

Result<bool> FileDiscovery::write_atomically(const std::filesystem::path& target,
                                             std::string_view value) {
  const std::filesystem::path dir = target.parent_path();
  std::error_code error;
  std::filesystem::create_directories(dir, error);
  if (error) {
    return make_error("io_error", "cannot create " + dir.string() + ": " + error.message());
  }
  std::filesystem::path temp;
  int fd = -1;
  // Another writer in the same directory may draw the same name; O_EXCL tells, so draw again.
  for (int attempt = 0; attempt < kTempNameAttempts && fd < 0; ++attempt) {
    char suffix[17];
    std::snprintf(suffix, sizeof suffix, "%016llx", static_cast<unsigned long long>(temp_names_()));
    temp = dir / (std::string(kTempPrefix) + suffix);
    fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0 && errno != EEXIST) break;
  }
  if (fd < 0) return make_error("io_error", "cannot create " + temp.string() + ": " + errno_text());
  size_t written = 0;
  while (written < value.size()) {
    const ssize_t n = ::write(fd, value.data() + written, value.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    written += static_cast<size_t>(n);
  }
  const bool complete = written == value.size();
  const std::string write_error = complete ? "" : errno_text();
  if (::close(fd) != 0 || !complete) {
    ::unlink(temp.c_str());
    return make_error("io_error", "cannot write " + temp.string() + ": " + write_error);
  }
  // rename() replaces the target in one step: a reader sees the old file or the new one.
  if (::rename(temp.c_str(), target.c_str()) != 0) {
    const std::string rename_error = errno_text();
    ::unlink(temp.c_str());
    return make_error("io_error", "cannot rename to " + target.string() + ": " + rename_error);
  }
  return true;
}

Result<bool> FileDiscovery::register_records(uint64_t instance_id,
                                             std::vector<DiscoveryRecord> records) {
  const auto found = instances_.find(instance_id);
  if (found == instances_.end()) {
    return make_error("unknown_instance",
                      "instance " + std::to_string(instance_id) + " was not allocated here");
  }
  for (DiscoveryRecord& record : records) {
    auto path = path_for(record.key);
    if (!path.ok()) {
      count_error(kWrite);
      return path.error();
    }
    // Replaces a file that exists: its name carries this instance's id, so it can only be
    // a stale copy from an earlier run with the same seed (unlike etcd, whose
    // create-if-absent write leaves it; docs/dynamo-discovery-backends.md#files).
    auto written = write_atomically(*path, record.value);
    if (!written.ok()) {
      count_error(kWrite);
      return written.error();
    }
    found->second.records.insert_or_assign(std::move(record.key), std::move(record.value));
  }
  return true;
}

void FileDiscovery::tick(Clock::SteadyTime now) {
  if (shut_down_) return;
  size_t refreshed = 0;
  for (auto& [id, instance] : instances_) {
    if (refreshed == options_.max_refreshes_per_tick) break;
    if (instance.refresh_at > now) continue;
    ++refreshed;
    instance.refresh_at = now + refresh_interval();
    for (const auto& [key, value] : instance.records) {
      auto path = path_for(key);
      if (!path.ok()) continue;  // refused at registration, never kept
      // A null time list sets the modification time to the file system's "now", which is
      // what readers compare against.
      if (::utimensat(AT_FDCWD, path->c_str(), nullptr, 0) == 0) continue;
      if (errno == ENOENT && write_atomically(*path, value).ok()) continue;
      count_error(kRefresh);
    }
  }
}

void FileDiscovery::delete_files(const Instance& instance) {
  for (const auto& [key, value] : instance.records) {
    auto path = path_for(key);
    if (!path.ok()) continue;
    if (::unlink(path->c_str()) != 0 && errno != ENOENT) count_error(kRemove);
  }
}

void FileDiscovery::remove(uint64_t instance_id) {
  const auto found = instances_.find(instance_id);
  if (found == instances_.end()) return;
  delete_files(found->second);
  instances_.erase(found);
  instances_gauge_.set(double(instances_.size()));
}

void FileDiscovery::shutdown() {
  if (shut_down_) return;
  shut_down_ = true;
  for (const auto& [id, instance] : instances_) delete_files(instance);
  instances_.clear();
  instances_gauge_.set(0);
}

}  // namespace kvmock::dynamo
