// Relay load driver: a vLLM-format engine publisher on ZMQ → a real `kvmockd run` process
// following it (`relays:`) → a real local nats-server → a router-side subscriber. Prints
//   1. throughput for both event planes: events/s end to end, and events per CPU-second
//      of the kvmockd process alone (utime+stime from /proc, so the fake engine, the
//      subscriber and the nats-server, which share the machine, are not counted),
//   2. engine→subscriber latency p50/p99 on the core-NATS plane at a fixed rate, sent as
//      batches of `latency_events_per_batch` events (vLLM sends one batch per scheduler
//      step; 1 is the worst case, a wake-up of every stage per event).
// Usage: relay_driver [events=200000] [latency_rate=10000] [latency_seconds=5]
//                     [latency_events_per_batch=1]
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <optional>
#include <stdexcept>
#include <thread>

#include "core/events/engine_payload_codec.h"
#include "core/events/envelope_codec.h"
#include "core/events/router_event_codec.h"
#include "core/events/subjects.h"
#include "tests/bench/driver_support.h"
#include "tests/bench/engine_at_capacity.h"
#include "tests/support/http_client.h"
#include "tests/support/nats_server.h"
#include "tests/support/subprocess.h"
#include "transport/nats/nats_client.h"
#include "transport/zmq/vllm_zmq_event_publisher.h"

namespace kvmock {
namespace {

using Clock = std::chrono::steady_clock;
using bench::EngineAtCapacity;
constexpr uint32_t kBlockSize = EngineAtCapacity::kBlockSize;
constexpr size_t kThroughputEventsPerBatch = 16;
constexpr auto kDeliveryLimit = std::chrono::seconds(120);

// nats-server, the fake engine, and kvmockd relaying one to the other.
class Rig {
 public:
  explicit Rig(bool jetstream) {
    if (!nats_.start()) fail("nats-server did not start");
    VllmZmqEventPublisherOptions engine_options;
    engine_options.bind_host = "127.0.0.1";
    engine_ = std::move(VllmZmqEventPublisher::start(zmq_, engine_options)).value();
    admin_port_ = static_cast<uint16_t>(testing::free_loopback_port());
    config_path_ = testing::write_temp_file(
        "nats:\n  url: " + nats_.url() +
        "\n  outbox_capacity: 100000\n  event_plane: " + (jetstream ? "jetstream" : "nats") +
        "\nadmin:\n  listen: 127.0.0.1:" + std::to_string(admin_port_) +
        "\nworkers:\n  count: 0\nrelays:\n  - endpoint: " + engine_->endpoint() +
        "\n    worker_id: 1\n    block_size: " + std::to_string(kBlockSize) + "\n");
    daemon_ = std::make_unique<testing::ChildProcess>(std::vector<std::string>{
        testing::kvmockd_path(), "run", "--config", config_path_, "--log-level", "warn"});
    if (!bench::wait_ready(admin_port_, *daemon_, std::chrono::seconds(30)))
      fail("kvmockd not ready: " + daemon_->output());
    NatsClientOptions router_options;
    router_options.urls = {nats_.url()};
    auto router = NatsClient::connect(router_options);
    if (!router || !(*router)->wait_connected(5000))
      fail("the router's NATS client did not connect");
    router_ = std::move(*router);
    // /ready does not cover the SUB socket's subscription reaching the engine's PUB.
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  ~Rig() {
    daemon_->signal(SIGTERM);
    daemon_->wait(std::chrono::seconds(15));
    engine_->stop();
    ::unlink(config_path_.c_str());
  }
  Rig(const Rig&) = delete;
  Rig& operator=(const Rig&) = delete;

  VllmZmqEventPublisher& engine() { return *engine_; }
  NatsClient& router() { return *router_; }
  double daemon_cpu_seconds() const { return bench::cpu_seconds(daemon_->pid()); }
  double nats_cpu_seconds() const { return bench::cpu_seconds(nats_.pid()); }
  double metric(const std::string& name) const {
    const auto scrape =
        testing::http_request(admin_port_, "GET", "/metrics", "", std::chrono::milliseconds(5000));
    const size_t at = scrape.body.find("\n" + name + " ");
    return at == std::string::npos
               ? NAN
               : std::strtod(scrape.body.c_str() + at + name.size() + 2, nullptr);
  }

 private:
  // Thrown, not exit()ed, so the servers and the daemon started so far are stopped.
  [[noreturn]] static void fail(const std::string& why) { throw std::runtime_error(why); }

  testing::NatsServer nats_;
  zmq::context_t zmq_{1};
  std::unique_ptr<VllmZmqEventPublisher> engine_;
  uint16_t admin_port_ = 0;
  std::string config_path_;
  std::unique_ptr<testing::ChildProcess> daemon_;
  std::unique_ptr<NatsClient> router_;
};

std::string events_subject(bool jetstream) {
  return jetstream ? jetstream_subject(jetstream_stream_name("dynamo", "backend"), "kv-events")
                   : kv_events_subject("dynamo", "backend", "kv-events");
}

void throughput(bool jetstream, uint64_t events) {
  Rig rig(jetstream);
  const uint64_t batches = events / kThroughputEventsPerBatch;
  EngineAtCapacity engine;
  std::vector<std::vector<uint8_t>> payloads;
  payloads.reserve(batches);
  for (uint64_t b = 0; b < batches; ++b)
    payloads.push_back(engine.next_batch(kThroughputEventsPerBatch));
  // Counts, without decoding, what reaches the plane's subject (for JetStream, the one the
  // stream captures).
  std::atomic<uint64_t> received{0};
  natsSubscription* sub = nullptr;
  natsConnection_Subscribe(
      &sub, rig.router().connection(), events_subject(jetstream).c_str(),
      [](natsConnection*, natsSubscription*, natsMsg* msg, void* counter) {
        static_cast<std::atomic<uint64_t>*>(counter)->fetch_add(1);
        natsMsg_Destroy(msg);
      },
      &received);
  natsSubscription_SetPendingLimits(sub, -1, -1);
  natsConnection_Flush(rig.router().connection());

  const double cpu0 = rig.daemon_cpu_seconds();
  const double nats_cpu0 = rig.nats_cpu_seconds();
  const auto t0 = Clock::now();
  for (uint64_t b = 0; b < batches; ++b) {
    // Keep the engine's PUB below its HWM: the relay is what is measured, not ZMQ drops.
    while (rig.engine().counters().published.load() + 20000 < b) std::this_thread::yield();
    (void)rig.engine().publish(payloads[b]);
    while (b * kThroughputEventsPerBatch > received.load() + 50000)
      std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  const uint64_t target = batches * kThroughputEventsPerBatch;
  const auto deadline = Clock::now() + kDeliveryLimit;
  while (received.load() < target && Clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  const double wall = std::chrono::duration<double>(Clock::now() - t0).count();
  const double cpu = rig.daemon_cpu_seconds() - cpu0;
  const double nats_cpu = rig.nats_cpu_seconds() - nats_cpu0;
  const auto delivered = static_cast<double>(received.load());
  std::printf(
      "throughput plane=%-9s events=%llu delivered=%.0f acked=%.0f wall=%.2fs events/s=%.0f "
      "kvmockd_cpu=%.2fs events_per_kvmockd_cpu_second=%.0f nats_server_cpu=%.2fs\n",
      jetstream ? "jetstream" : "nats", static_cast<unsigned long long>(target), delivered,
      jetstream ? rig.metric("kvmock_jetstream_acked_total") : NAN, wall, delivered / wall, cpu,
      delivered / cpu, nats_cpu);
  natsSubscription_Destroy(sub);
}

// `rate` events/s sent as batches of `per_batch` events; every store's latency is
// measured from its batch's send to its arrival at the subscriber, decoded.
void latency(uint64_t rate, uint64_t seconds, uint64_t per_batch) {
  Rig rig(false);
  const uint64_t batches = std::max<uint64_t>(1, rate * seconds / per_batch);
  const uint64_t count = batches * per_batch;
  struct Context {
    std::vector<Clock::time_point> sent;  // per batch
    std::vector<double> latency_us;       // per event; -1 until it arrives
    uint64_t per_batch;
  } context{std::vector<Clock::time_point>(batches), std::vector<double>(count, -1), per_batch};
  natsSubscription* sub = nullptr;
  natsConnection_Subscribe(
      &sub, rig.router().connection(), events_subject(false).c_str(),
      [](natsConnection*, natsSubscription*, natsMsg* msg, void* closure) {
        const auto now = Clock::now();
        auto* c = static_cast<Context*>(closure);
        auto envelope = decode_event_envelope_msgpack(
            std::span(reinterpret_cast<const uint8_t*>(natsMsg_GetData(msg)),
                      static_cast<size_t>(natsMsg_GetDataLength(msg))));
        auto event = envelope ? decode_router_event_msgpack(envelope->payload)
                              : Result<RouterEvent>(make_error("envelope", "undecodable"));
        if (event && is_store(event->event.data)) {
          const uint64_t i = std::get<StoreData>(event->event.data).blocks[0].block_hash - 1;
          if (i < c->latency_us.size()) {
            c->latency_us[i] =
                std::chrono::duration<double, std::micro>(now - c->sent[i / c->per_batch]).count();
          }
        }
        natsMsg_Destroy(msg);
      },
      &context);
  natsSubscription_SetPendingLimits(sub, -1, -1);
  natsConnection_Flush(rig.router().connection());
  EngineAtCapacity engine;
  std::vector<std::vector<uint8_t>> payloads;
  for (uint64_t b = 0; b < batches; ++b) payloads.push_back(engine.next_batch(per_batch));
  const double cpu0 = rig.daemon_cpu_seconds();
  const auto start = Clock::now();
  const uint64_t batch_interval_ns = 1'000'000'000ull * per_batch / rate;
  for (uint64_t b = 0; b < batches; ++b) {
    // Sleep, not spin: on a small machine a spinning sender takes the core the relay needs.
    std::this_thread::sleep_until(start + std::chrono::nanoseconds(b * batch_interval_ns));
    context.sent[b] = Clock::now();
    (void)rig.engine().publish(payloads[b]);
  }
  const double send_wall = std::chrono::duration<double>(Clock::now() - start).count();
  std::this_thread::sleep_for(std::chrono::seconds(1));
  natsSubscription_Unsubscribe(sub);
  const double cpu = rig.daemon_cpu_seconds() - cpu0;
  std::vector<double> observed;  // stores only: a remove's latency is not recorded
  for (double v : context.latency_us) {
    if (v >= 0) observed.push_back(v);
  }
  std::sort(observed.begin(), observed.end());
  auto pct = [&](double p) {
    return observed.empty()
               ? 0.0
               : observed[std::min(observed.size() - 1,
                                   static_cast<size_t>(p * static_cast<double>(observed.size())))];
  };
  std::printf(
      "latency plane=nats rate=%llu/s events_per_batch=%llu events=%llu stores_timed=%zu "
      "p50=%.0fus "
      "p99=%.0fus p99.9=%.0fus max=%.0fus kvmockd_cores=%.2f\n",
      static_cast<unsigned long long>(rate), static_cast<unsigned long long>(per_batch),
      static_cast<unsigned long long>(count), observed.size(), pct(0.5), pct(0.99), pct(0.999),
      observed.empty() ? 0.0 : observed.back(), cpu / (send_wall + 1));
  natsSubscription_Destroy(sub);
}

}  // namespace
}  // namespace kvmock

namespace {

constexpr const char* kUsage =
    "usage: relay_driver [EVENTS [RATE [SECONDS [PER_BATCH]]]]\n"
    "  Starts nats-server, a fake vLLM engine and a real kvmockd relaying it, then measures\n"
    "  core-NATS and JetStream throughput over EVENTS events (default 200000; JetStream a\n"
    "  quarter of them) and engine-to-router latency at RATE events/s (default 10000) for\n"
    "  SECONDS (default 5) with PER_BATCH events per engine batch (default 1).\n";

// A whole decimal number, or nullopt.
std::optional<uint64_t> number_arg(const char* text) {
  uint64_t value = 0;
  const char* end = text + std::strlen(text);
  const auto [stop, ec] = std::from_chars(text, end, value);
  if (ec != std::errc() || stop != end || stop == text) return std::nullopt;
  return value;
}

}  // namespace

int main(int argc, char** argv) {
  const uint64_t defaults[] = {200000, 10000, 5, 1};
  uint64_t values[4] = {defaults[0], defaults[1], defaults[2], defaults[3]};
  for (int i = 1; i < argc; ++i) {
    const auto value = i <= 4 ? number_arg(argv[i]) : std::nullopt;
    if (!value) {
      const bool help = std::strcmp(argv[i], "--help") == 0 || std::strcmp(argv[i], "-h") == 0;
      std::fputs(kUsage, help ? stdout : stderr);
      return help ? 0 : 2;
    }
    values[i - 1] = *value;
  }
  const uint64_t events = values[0];
  const uint64_t rate = values[1];
  const uint64_t seconds = values[2];
  const uint64_t per_batch = std::max<uint64_t>(1, values[3]);
  std::printf(
      "relay_driver: %u cores, load average %s; events of one 16-token block, %zu per "
      "engine batch for throughput\n",
      std::thread::hardware_concurrency(), kvmock::bench::load_average().c_str(),
      kvmock::kThroughputEventsPerBatch);
  try {
    kvmock::throughput(false, events);
    kvmock::throughput(true, events / 4);
    kvmock::latency(rate, seconds, per_batch);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "relay_driver: %s\n", e.what());
    return 1;
  }
  return 0;
}
