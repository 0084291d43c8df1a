#include "tests/support/chaos_harness.h"

#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/events/router_event_codec.h"
#include "tests/support/daemon_harness.h"
#include "tests/support/http_client.h"
#include "transport/nats/nats_client.h"

namespace kvmock::testing {
namespace {

constexpr std::chrono::seconds kFullSoak{600};
constexpr std::chrono::seconds kShortSoak{60};

long env_seconds(const char* name) {
  const char* text = std::getenv(name);
  if (text == nullptr || *text == '\0') return -1;
  char* end = nullptr;
  const long value = std::strtol(text, &end, 10);
  return (*end == '\0' && value > 0) ? value : -1;
}

std::string yaml_plane(bool jetstream) { return jetstream ? "jetstream" : "nats"; }

}  // namespace

bool chaos_short() {
  const char* flag = std::getenv("KVMOCK_CHAOS_SHORT");
  if (flag != nullptr && std::string(flag) == "1") return true;
  const long soak = env_seconds("KVMOCK_SOAK_SECONDS");
  return soak > 0 && soak < kFullSoak.count();
}

std::chrono::seconds soak_duration() {
  const long soak = env_seconds("KVMOCK_SOAK_SECONDS");
  if (soak > 0) return std::chrono::seconds(soak);
  return chaos_short() ? kShortSoak : kFullSoak;
}

double metric_sum(const std::string& page, const std::string& metric, const std::string& label) {
  double sum = 0;
  bool found = false;
  std::istringstream lines(page);
  for (std::string line; std::getline(lines, line);) {
    const bool named = line.rfind(metric + "{", 0) == 0 || line.rfind(metric + " ", 0) == 0;
    if (!named || (!label.empty() && line.find(label) == std::string::npos)) continue;
    sum += std::stod(line.substr(line.rfind(' ') + 1));
    found = true;
  }
  return found ? sum : -1;
}

double admin_metric(uint16_t admin_port, const std::string& metric, const std::string& label) {
  const HttpResult page = http_request(admin_port, "GET", "/metrics", {}, std::chrono::seconds(3));
  return page.status == 200 ? metric_sum(page.body, metric, label) : -1;
}

long rss_kib(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(status, line);) {
    if (line.rfind("VmRSS:", 0) == 0) return std::strtol(line.c_str() + 6, nullptr, 10);
  }
  return -1;
}

ChaosDaemon::ChaosDaemon(const NatsServer& nats, ChaosDaemonOptions options)
    : options_(std::move(options)),
      admin_port_(static_cast<uint16_t>(free_loopback_port())),
      http_base_port_(free_loopback_port_range(static_cast<int>(options_.workers))) {
  config_path_ = write_temp_file(
      "nats:\n  url: " + nats.url() + "\n  event_plane: " + yaml_plane(options_.jetstream) +
      "\nadmin:\n  listen: 127.0.0.1:" + std::to_string(admin_port_) +
      "\nshutdown:\n  grace_s: " + std::to_string(options_.grace_s) +
      "\n  flush_deadline_s: " + std::to_string(options_.flush_deadline_s) +
      // A heartbeat every second, so load reports flow even while the load is unchanged.
      "\nload_metrics:\n  heartbeat_s: 1\nworkers:\n  count: " + std::to_string(options_.workers) +
      "\n  worker_id_base: " + std::to_string(kFirstWorker) + "\n  http_base_port: " +
      std::to_string(http_base_port_) + "\n  engine:\n    block_size: 16\n    num_gpu_blocks: " +
      std::to_string(options_.num_gpu_blocks) +
      "\n    speedup_ratio: 20.0\n  load:\n    enabled: true\n    requests_per_s: " +
      std::to_string(options_.requests_per_s) +
      "\n    input_tokens: 200\n    output_tokens: 8\n    prefix_groups: 4\n");
  // kvmockd refuses unknown KVMOCK_* variables, so the suite's own knobs are not passed on.
  const std::string command = "exec /usr/bin/env -u KVMOCK_CHAOS_SHORT -u KVMOCK_SOAK_SECONDS " +
                              kvmockd_path() + " run --config " + config_path_;
  const std::vector<std::string> argv{
      "/bin/sh", "-c",
      options_.nofile_limit > 0
          ? "ulimit -n " + std::to_string(options_.nofile_limit) + " && " + command
          : command};
  process_ = std::make_unique<ChildProcess>(argv);
}

ChaosDaemon::~ChaosDaemon() {
  process_.reset();
  ::unlink(config_path_.c_str());
}

bool ChaosDaemon::wait_ready(std::chrono::milliseconds timeout) {
  return wait_for_status(admin_port_, "/ready", 200, timeout);
}

std::string ChaosDaemon::generate_subject(uint32_t i) const {
  return "namespace.dynamo.component.backend.generate." + std::to_string(kFirstWorker + i);
}

int ChaosDaemon::terminate(std::chrono::milliseconds limit, std::chrono::duration<double>& took) {
  const auto signalled = std::chrono::steady_clock::now();
  process_->signal(SIGTERM);
  const int status = process_->wait(limit);
  took = std::chrono::steady_clock::now() - signalled;
  return status;
}

ChaosRig::ChaosRig(const ChaosDaemonOptions& options, std::vector<std::string> nats_args)
    : server(std::move(nats_args)) {
  if (!server.start()) return;
  recorder = std::make_unique<RouterEventRecorder>(server.url(),
                                                   "namespace.dynamo.component.backend.kv-events");
  if (!recorder->subscribed()) return;
  daemon = std::make_unique<ChaosDaemon>(server, options);
  ready_ = daemon->wait_ready();
}

namespace {

std::string channel_name(const std::pair<uint64_t, uint32_t>& channel) {
  return "worker " + std::to_string(channel.first) + " dp_rank " + std::to_string(channel.second);
}

}  // namespace

std::string first_gap(const ChannelIds& channels) {
  for (const auto& [channel, ids] : channels) {
    for (size_t i = 0; i < ids.size(); ++i) {
      if (ids[i] != i + 1) {
        return channel_name(channel) + ": id " + std::to_string(ids[i]) + " at position " +
               std::to_string(i);
      }
    }
  }
  return {};
}

std::string first_reset(const ChannelIds& channels) {
  for (const auto& [channel, ids] : channels) {
    if (ids.empty() || ids.front() != 1) return channel_name(channel) + ": does not start at 1";
    for (size_t i = 1; i < ids.size(); ++i) {
      if (ids[i] <= ids[i - 1]) {
        return channel_name(channel) + ": id " + std::to_string(ids[i]) + " after " +
               std::to_string(ids[i - 1]) + " at position " + std::to_string(i);
      }
    }
  }
  return {};
}

std::string nats_generate(NatsClient& client, const std::string& subject, uint32_t max_tokens,
                          std::chrono::milliseconds timeout) {
  natsConnection* connection = client.connection();
  natsInbox* inbox = nullptr;
  natsSubscription* replies = nullptr;
  if (natsInbox_Create(&inbox) != NATS_OK) return "error: no inbox";
  std::string outcome = "error: no final reply";
  if (natsConnection_SubscribeSync(&replies, connection, inbox) != NATS_OK) {
    natsInbox_Destroy(inbox);
    return "error: cannot subscribe";
  }
  std::vector<uint32_t> prompt;
  for (uint32_t i = 0; i < 64; ++i) prompt.push_back(5000 + i);
  const std::string body = nlohmann::json{{"token_ids", prompt},
                                          {"stop_conditions", {{"max_tokens", max_tokens}}},
                                          {"routing", {{"dp_rank", 0}}},
                                          {"sampling_options", nlohmann::json::object()}}
                               .dump();
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  if (natsConnection_PublishRequest(connection, subject.c_str(), inbox, body.data(),
                                    static_cast<int>(body.size())) != NATS_OK) {
    outcome = "error: publish failed";
  } else {
    while (std::chrono::steady_clock::now() < deadline) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      natsMsg* msg = nullptr;
      if (natsSubscription_NextMsg(&msg, replies, std::max<int64_t>(1, left.count())) != NATS_OK) {
        break;
      }
      const auto reply = nlohmann::json::parse(
          std::string_view(natsMsg_GetData(msg), static_cast<size_t>(natsMsg_GetDataLength(msg))),
          nullptr, false);
      natsMsg_Destroy(msg);
      if (reply.is_discarded()) {
        outcome = "error: undecodable reply";
        break;
      }
      if (reply.contains("finish_reason") && !reply["finish_reason"].is_null()) {
        outcome = reply["finish_reason"].is_string() ? reply["finish_reason"].get<std::string>()
                                                     : "error: " + reply["finish_reason"].dump();
        break;
      }
    }
  }
  natsSubscription_Destroy(replies);
  natsInbox_Destroy(inbox);
  return outcome;
}

IntakeLoad::IntakeLoad(const ChaosDaemon& daemon, const std::string& nats_url) {
  threads_.emplace_back([this, &daemon] { http_loop(daemon); });
  threads_.emplace_back([this, &daemon, nats_url] { nats_loop(daemon, nats_url); });
}

IntakeLoad::~IntakeLoad() { stop(); }

void IntakeLoad::stop() {
  stop_ = true;
  for (std::thread& thread : threads_) {
    if (thread.joinable()) thread.join();
  }
}

void IntakeLoad::http_loop(const ChaosDaemon& daemon) {
  const std::string body = R"({"prompt":"chaos keeps the intake busy","max_tokens":8})";
  for (uint32_t i = 0; !stop_.load(); ++i) {
    const auto started = std::chrono::steady_clock::now();
    const HttpResult answer = http_request(daemon.worker_port(i % daemon.options().workers), "POST",
                                           "/v1/completions", body, std::chrono::seconds(5));
    const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::steady_clock::now() - started);
    if (answer.status == 200) {
      http_ok_.fetch_add(1);
      int64_t slowest = slowest_http_ms_.load();
      while (took.count() > slowest &&
             !slowest_http_ms_.compare_exchange_weak(slowest, took.count())) {
      }
    } else {
      http_failed_.fetch_add(1);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

void IntakeLoad::nats_loop(const ChaosDaemon& daemon, const std::string& nats_url) {
  auto client = connect_test_client(nats_url);
  for (uint32_t i = 0; !stop_.load(); ++i) {
    const bool ok =
        client && nats_generate(*client, daemon.generate_subject(i % daemon.options().workers), 4,
                                std::chrono::seconds(3)) == "length";
    (ok ? nats_ok_ : nats_failed_).fetch_add(1);
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  if (client) client->close();
}

MessageCounter::MessageCounter(const std::string& nats_url, const std::string& subject) {
  client_ = connect_test_client(nats_url);
  if (!client_) return;
  const auto on_message = [](natsConnection*, natsSubscription*, natsMsg* msg, void* self) {
    natsMsg_Destroy(msg);
    static_cast<MessageCounter*>(self)->count_.fetch_add(1);
  };
  subscription_ = subscribe_async(client_->connection(), subject, on_message, this, completed_);
}

MessageCounter::~MessageCounter() {
  unsubscribe_and_wait(subscription_, completed_);
  if (client_) client_->close();
}

ChannelIds jetstream_event_ids(NatsClient& client, const std::string& stream,
                               uint64_t& undecodable) {
  ChannelIds ids;
  undecodable = 0;
  jsCtx* js = nullptr;
  if (natsConnection_JetStream(&js, client.connection(), nullptr) != NATS_OK) return ids;
  jsStreamInfo* info = nullptr;
  uint64_t last = 0;
  if (js_GetStreamInfo(&info, js, stream.c_str(), nullptr, nullptr) == NATS_OK) {
    last = info->State.LastSeq;
    jsStreamInfo_Destroy(info);
  }
  for (uint64_t seq = 1; seq <= last; ++seq) {
    natsMsg* msg = nullptr;
    if (js_GetMsg(&msg, js, stream.c_str(), seq, nullptr, nullptr) != NATS_OK) continue;
    auto event = decode_router_event_json(
        std::string_view(natsMsg_GetData(msg), static_cast<size_t>(natsMsg_GetDataLength(msg))));
    natsMsg_Destroy(msg);
    if (!event) {
      ++undecodable;
      continue;
    }
    ids[{event->worker_id, event->event.dp_rank}].push_back(event->event.event_id);
  }
  jsCtx_Destroy(js);
  return ids;
}

}  // namespace kvmock::testing
