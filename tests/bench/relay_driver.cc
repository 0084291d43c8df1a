// Relay load driver: a vLLM-format engine publisher on ZMQ → kvmockd's relay, pipeline
// and publisher → a real local nats-server → a router-side subscriber. Prints
//   1. throughput (events/s, and events per CPU-second of this process) for both planes,
//   2. engine→subscriber latency p50/p99 at a fixed rate on the core-NATS plane.
// Usage: relay_driver [events=200000] [latency_rate=10000] [latency_seconds=5]
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <numeric>
#include <thread>

#include "core/events/engine_payload_codec.h"
#include "core/events/envelope_codec.h"
#include "core/events/router_event_codec.h"
#include "core/events/subjects.h"
#include "daemon/engine_relay.h"
#include "tests/support/nats_server.h"
#include "transport/log/logger.h"
#include "transport/nats/kv_event_pipeline.h"
#include "transport/nats/nats_publisher.h"
#include "transport/zmq/engine_publisher.h"

namespace kvmock {
namespace {

using Clock = std::chrono::steady_clock;
constexpr uint32_t kBlockSize = 16;
constexpr size_t kEventsPerBatch = 16;

double cpu_seconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
         static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
}

// Batch `b`: kEventsPerBatch stores, each one 16-token block chained after the previous.
std::vector<uint8_t> batch_payload(uint64_t b, size_t events) {
  EngineBatch batch;
  batch.ts = 1.0;
  batch.dp_rank = 0;
  for (size_t e = 0; e < events; ++e) {
    const uint64_t i = b * events + e;
    auto& s = std::get<EngineBlockStored>(batch.events.emplace_back(EngineBlockStored{}));
    s.block_hashes = {i + 1};
    if (i > 0) s.parent_block_hash = i;
    s.token_ids.resize(kBlockSize);
    std::iota(s.token_ids.begin(), s.token_ids.end(), static_cast<TokenId>(i * 7));
    s.block_size = kBlockSize;
    s.medium = "GPU";
  }
  return encode_engine_payload(batch, {EngineEventEncoding::kMap, EngineHashEncoding::kUint64});
}

struct Rig {
  explicit Rig(bool jetstream) {
    if (!server.start()) std::abort();
    NatsClientOptions o;
    o.urls = {server.url()};
    client = std::move(NatsClient::connect(o)).value();
    client->wait_connected(5000);
    NatsPublisherOptions p;
    p.jetstream = jetstream;
    p.stream.stream = jetstream_stream_name("dynamo", "backend");
    p.stream.subjects = {p.stream.stream + ".*"};
    publisher = std::make_unique<NatsPublisher>(*client, outbox, p);
    KvEventPipelineOptions options;
    options.jetstream = jetstream;
    pipeline = std::make_unique<KvEventPipeline>(*client, outbox, options, metrics);
    publisher->start();
    pipeline->start();
    EnginePublisherOptions engine_options;
    engine_options.bind_host = "127.0.0.1";
    engine = std::move(EnginePublisher::start(zmq, engine_options)).value();
    RelayConfig config;
    config.endpoint = engine->endpoint();
    config.worker_id = 1;
    config.block_size = kBlockSize;
    relay = std::make_unique<EngineRelay>(config, zmq, *pipeline, outbox, metrics);
    if (!relay->start().ok()) std::abort();
    std::this_thread::sleep_for(std::chrono::milliseconds(300));  // SUB joins the PUB
  }
  ~Rig() {
    relay->stop();
    engine->stop();
    pipeline->stop();
    publisher->stop(Clock::now() + std::chrono::seconds(5));
  }
  testing::NatsServer server;
  std::unique_ptr<NatsClient> client;
  MetricsRegistry metrics;
  Outbox outbox{100000};
  std::unique_ptr<NatsPublisher> publisher;
  std::unique_ptr<KvEventPipeline> pipeline;
  zmq::context_t zmq{1};
  std::unique_ptr<EnginePublisher> engine;
  std::unique_ptr<EngineRelay> relay;
};

void throughput(bool jetstream, uint64_t events) {
  Rig rig(jetstream);
  const uint64_t batches = events / kEventsPerBatch;
  std::vector<std::vector<uint8_t>> payloads;
  payloads.reserve(batches);
  for (uint64_t b = 0; b < batches; ++b) payloads.push_back(batch_payload(b, kEventsPerBatch));
  std::atomic<uint64_t> received{0};
  natsSubscription* sub = nullptr;
  if (!jetstream) {
    natsConnection_Subscribe(
        &sub, rig.client->connection(), kv_events_subject("dynamo", "backend", "kv_events").c_str(),
        [](natsConnection*, natsSubscription*, natsMsg* msg, void* counter) {
          static_cast<std::atomic<uint64_t>*>(counter)->fetch_add(1);
          natsMsg_Destroy(msg);
        },
        &received);
    natsSubscription_SetPendingLimits(sub, -1, -1);
    natsConnection_Flush(rig.client->connection());
  }
  auto delivered = [&] { return jetstream ? rig.publisher->acked() : received.load(); };
  const double cpu0 = cpu_seconds();
  const auto t0 = Clock::now();
  for (uint64_t b = 0; b < batches; ++b) {
    // Keep the engine's PUB below its HWM: the relay is what is measured, not ZMQ drops.
    while (rig.engine->counters().published.load() + 20000 < b) std::this_thread::yield();
    (void)rig.engine->publish(payloads[b]);
    while (b * kEventsPerBatch > delivered() + 50000)
      std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  const uint64_t target = batches * kEventsPerBatch;
  const auto deadline = Clock::now() + std::chrono::seconds(120);
  while (delivered() < target && Clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  const double wall = std::chrono::duration<double>(Clock::now() - t0).count();
  const double cpu = cpu_seconds() - cpu0;
  std::printf(
      "throughput plane=%-9s events=%llu delivered=%llu wall=%.2fs events/s=%.0f "
      "process_cpu=%.2fs events_per_cpu_second=%.0f\n",
      jetstream ? "jetstream" : "nats", static_cast<unsigned long long>(target),
      static_cast<unsigned long long>(delivered()), wall, static_cast<double>(delivered()) / wall,
      cpu, static_cast<double>(delivered()) / cpu);
  if (sub) natsSubscription_Destroy(sub);
}

void latency(uint64_t rate, uint64_t seconds) {
  Rig rig(false);
  const uint64_t count = rate * seconds;
  std::vector<Clock::time_point> sent(count);
  std::vector<double> latency_us(count, -1);
  struct Context {
    std::vector<Clock::time_point>* sent;
    std::vector<double>* latency;
  } context{&sent, &latency_us};
  natsSubscription* sub = nullptr;
  natsConnection_Subscribe(
      &sub, rig.client->connection(), kv_events_subject("dynamo", "backend", "kv_events").c_str(),
      [](natsConnection*, natsSubscription*, natsMsg* msg, void* closure) {
        const auto now = Clock::now();
        auto* c = static_cast<Context*>(closure);
        auto envelope = decode_event_envelope_msgpack(
            std::span(reinterpret_cast<const uint8_t*>(natsMsg_GetData(msg)),
                      static_cast<size_t>(natsMsg_GetDataLength(msg))));
        if (envelope) {
          auto event = decode_router_event_msgpack(envelope->payload);
          if (event && is_store(event->event.data)) {
            const uint64_t i = std::get<StoreData>(event->event.data).blocks[0].block_hash - 1;
            if (i < c->sent->size()) {
              (*c->latency)[i] =
                  std::chrono::duration<double, std::micro>(now - (*c->sent)[i]).count();
            }
          }
        }
        natsMsg_Destroy(msg);
      },
      &context);
  natsSubscription_SetPendingLimits(sub, -1, -1);
  natsConnection_Flush(rig.client->connection());
  std::vector<std::vector<uint8_t>> payloads;
  for (uint64_t i = 0; i < count; ++i) payloads.push_back(batch_payload(i, 1));
  const auto start = Clock::now();
  for (uint64_t i = 0; i < count; ++i) {
    // Sleep, not spin: on a small machine a spinning sender takes the core the relay needs.
    std::this_thread::sleep_until(start + std::chrono::nanoseconds(i * 1'000'000'000ull / rate));
    sent[i] = Clock::now();
    (void)rig.engine->publish(payloads[i]);
  }
  std::this_thread::sleep_for(std::chrono::seconds(1));
  natsSubscription_Unsubscribe(sub);
  std::vector<double> observed;
  for (double v : latency_us) {
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
      "latency plane=nats rate=%llu/s sent=%llu received=%zu p50=%.0fus p99=%.0fus p99.9=%.0fus "
      "max=%.0fus\n",
      static_cast<unsigned long long>(rate), static_cast<unsigned long long>(count),
      observed.size(), pct(0.5), pct(0.99), pct(0.999), observed.empty() ? 0.0 : observed.back());
  natsSubscription_Destroy(sub);
}

}  // namespace
}  // namespace kvmock

int main(int argc, char** argv) {
  const uint64_t events = argc > 1 ? std::stoull(argv[1]) : 200000;
  const uint64_t rate = argc > 2 ? std::stoull(argv[2]) : 10000;
  const uint64_t seconds = argc > 3 ? std::stoull(argv[3]) : 5;
  kvmock::Logger::instance().configure(kvmock::LogSeverity::kError, false);
  std::printf("relay_driver: %u cores; events of one 16-token block, %zu per engine batch\n",
              std::thread::hardware_concurrency(), kvmock::kEventsPerBatch);
  kvmock::throughput(false, events);
  kvmock::throughput(true, events / 4);
  kvmock::latency(rate, seconds);
  return 0;
}
