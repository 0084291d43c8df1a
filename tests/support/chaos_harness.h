// Helpers for the chaos and soak suite (tests/chaos): one `kvmockd run` with load-driven
// mock workers against a real nats-server, clients that keep both intakes busy (OpenAI
// HTTP and NATS generate), the probes the tests assert on (admin metrics, RSS, the
// JetStream stream), and the suite's duration knobs.
#pragma once

#include <nats/nats.h>
#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/daemon_harness.h"
#include "tests/support/nats_server.h"
#include "tests/support/subprocess.h"

namespace kvmock {
class NatsClient;
}

namespace kvmock::testing {

// KVMOCK_CHAOS_SHORT=1 (or a KVMOCK_SOAK_SECONDS below the default) selects the short form
// CI runs; the full form is the default.
bool chaos_short();
// The soak's length: KVMOCK_SOAK_SECONDS, else 60 s in the short form, else 600 s.
std::chrono::seconds soak_duration();

// The sum of every sample of `metric` on a Prometheus page whose label set contains
// `label` (empty: every sample); -1 when there is none.
double metric_sum(const std::string& page, const std::string& metric,
                  const std::string& label = {});
// The same, read from GET /metrics on 127.0.0.1:`admin_port` (-1 when unreachable).
double admin_metric(uint16_t admin_port, const std::string& metric, const std::string& label = {});

// Resident set size of a process in KiB (/proc/PID/status VmRSS), or -1.
long rss_kib(pid_t pid);

struct ChaosDaemonOptions {
  bool jetstream = false;
  uint32_t workers = 2;
  double requests_per_s = 20.0;  // the built-in load driver, per worker
  uint32_t grace_s = 2;
  uint32_t flush_deadline_s = 2;
  uint32_t num_gpu_blocks = 256;
  int nofile_limit = 0;  // RLIMIT_NOFILE for the daemon (`ulimit -n`); 0: inherited
};

// `kvmockd run` with `options.workers` load-driven workers (ids from kFirstWorker) on
// consecutive HTTP ports, publishing to `nats`. Killed by the destructor if still running.
class ChaosDaemon {
 public:
  static constexpr uint64_t kFirstWorker = 800;

  ChaosDaemon(const NatsServer& nats, ChaosDaemonOptions options);
  ~ChaosDaemon();
  ChaosDaemon(const ChaosDaemon&) = delete;
  ChaosDaemon& operator=(const ChaosDaemon&) = delete;

  // Waits (bounded) for /ready 200.
  bool wait_ready(std::chrono::milliseconds timeout = std::chrono::seconds(15));
  uint16_t admin_port() const { return admin_port_; }
  uint16_t worker_port(uint32_t i) const { return static_cast<uint16_t>(http_base_port_ + i); }
  std::string generate_subject(uint32_t i) const;
  const ChaosDaemonOptions& options() const { return options_; }
  ChildProcess& process() { return *process_; }
  double metric(const std::string& name, const std::string& label = {}) const {
    return admin_metric(admin_port_, name, label);
  }

  // SIGTERM, then waits up to `limit`; returns the exit status (-1: still running) and
  // sets `took`.
  int terminate(std::chrono::milliseconds limit, std::chrono::duration<double>& took);

 private:
  ChaosDaemonOptions options_;
  uint16_t admin_port_;
  int http_base_port_;
  std::string config_path_;
  std::unique_ptr<ChildProcess> process_;
};

// The common start of a chaos test: a nats-server (`nats_args` passed on), a router's
// recorder of the core-NATS KV events, then the daemon. ready() is false (and the reason
// is in the daemon's output) when a step failed.
struct ChaosRig {
  explicit ChaosRig(const ChaosDaemonOptions& options, std::vector<std::string> nats_args = {});
  bool ready() const { return ready_; }
  std::string daemon_output() const { return daemon ? daemon->process().output() : ""; }

  NatsServer server;
  std::unique_ptr<RouterEventRecorder> recorder;
  std::unique_ptr<ChaosDaemon> daemon;

 private:
  bool ready_ = false;
};

using ChannelIds = std::map<std::pair<uint64_t, uint32_t>, std::vector<uint64_t>>;
// Every channel holds exactly the ids 1..N in order: nothing lost, nothing repeated.
std::string first_gap(const ChannelIds& channels);
// Every channel starts at 1 (the process's Cleared) and only increases: a router can see
// anything it missed as a jump. Returns a description of the first violation, or "".
std::string first_reset(const ChannelIds& channels);

// One NATS generate request (Dynamo's PreprocessedRequest) to `subject`; returns the final
// reply's finish_reason ("length" on success), or a text starting with "error:".
std::string nats_generate(NatsClient& client, const std::string& subject, uint32_t max_tokens,
                          std::chrono::milliseconds timeout);

// Clients that keep a daemon's intakes busy from their own threads until stop(): one
// sends OpenAI completions round-robin to the worker HTTP ports, one sends NATS generate
// requests. Counts successes and failures, and the slowest successful HTTP answer.
class IntakeLoad {
 public:
  IntakeLoad(const ChaosDaemon& daemon, const std::string& nats_url);
  ~IntakeLoad();
  IntakeLoad(const IntakeLoad&) = delete;
  IntakeLoad& operator=(const IntakeLoad&) = delete;

  void stop();
  uint64_t http_ok() const { return http_ok_.load(); }
  uint64_t http_failed() const { return http_failed_.load(); }
  uint64_t nats_ok() const { return nats_ok_.load(); }
  uint64_t nats_failed() const { return nats_failed_.load(); }
  std::chrono::milliseconds slowest_http() const {
    return std::chrono::milliseconds(slowest_http_ms_.load());
  }
  void reset_slowest_http() { slowest_http_ms_ = 0; }

 private:
  void http_loop(const ChaosDaemon& daemon);
  void nats_loop(const ChaosDaemon& daemon, const std::string& nats_url);

  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> http_ok_{0};
  std::atomic<uint64_t> http_failed_{0};
  std::atomic<uint64_t> nats_ok_{0};
  std::atomic<uint64_t> nats_failed_{0};
  std::atomic<int64_t> slowest_http_ms_{0};
  std::vector<std::thread> threads_;
};

// Counts the messages on a subject (for example the ActiveLoad reports on kv_metrics).
class MessageCounter {
 public:
  MessageCounter(const std::string& nats_url, const std::string& subject);
  ~MessageCounter();
  MessageCounter(const MessageCounter&) = delete;
  MessageCounter& operator=(const MessageCounter&) = delete;

  bool subscribed() const { return subscription_ != nullptr; }
  uint64_t count() const { return count_.load(); }

 private:
  std::unique_ptr<NatsClient> client_;
  natsSubscription* subscription_ = nullptr;
  std::atomic<uint64_t> count_{0};
  std::atomic<bool> completed_{false};  // the handler has returned for good
};

// Every event id stored in a JetStream stream, per (worker_id, dp_rank), in stream order
// (router events as JSON, as kvmockd publishes them there). `undecodable` counts the rest.
ChannelIds jetstream_event_ids(NatsClient& client, const std::string& stream,
                               uint64_t& undecodable);

}  // namespace kvmock::testing
