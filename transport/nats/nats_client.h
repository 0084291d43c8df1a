// One connection to NATS (nats.c), shared by every publisher and query service of the
// process (the JetStream publisher adds its own, see NatsClientOptions::reconnect). It connects in
// the background (a daemon may start before its NATS server), reconnects forever with exponential
// backoff (10 ms doubling, capped at 5 s), and reports its state so publishers can hold events
// instead of losing them.
#pragma once

#include <nats/nats.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "core/common/result.h"

namespace kvmock {

struct NatsClientOptions {
  std::vector<std::string> urls{"nats://127.0.0.1:4222"};
  std::string name = "kvmockd";
  std::string user;
  std::string password;
  std::string token;
  std::string nkey_seed_file;
  std::string credentials_file;
  std::string tls_ca_file;
  std::string tls_cert_file;
  std::string tls_key_file;
  // false: one connection attempt, no reconnecting and no reconnect buffer; a dropped
  // connection closes for good. The JetStream publisher uses such connections so nats.c
  // never replays buffered messages behind its back (docs/ARCHITECTURE.md, publishing
  // pipeline).
  bool reconnect = true;
};

enum class NatsState : uint8_t { kConnecting, kConnected, kReconnecting, kClosed };

const char* nats_state_name(NatsState state);

// Reconnect delay after `attempts` failed tries: 10 ms · 2^(attempts-1), at most 5 s.
int64_t nats_reconnect_delay_ms(int attempts);

// Splits "nats://a:4222, nats://b:4222" into URLs.
std::vector<std::string> split_nats_urls(std::string_view list);

class NatsClient {
 public:
  // Creates the connection. Fails only on bad options (unreadable credentials, bad URL);
  // an unreachable server is not an error: the client keeps trying in the background.
  static Result<std::unique_ptr<NatsClient>> connect(const NatsClientOptions& options);
  ~NatsClient();
  NatsClient(const NatsClient&) = delete;
  NatsClient& operator=(const NatsClient&) = delete;

  NatsState state() const { return state_.load(std::memory_order_acquire); }
  bool connected() const { return state() == NatsState::kConnected; }
  // Blocks until connected or until `timeout_ms` passes; returns connected().
  bool wait_connected(int64_t timeout_ms);
  uint64_t reconnects() const { return reconnects_.load(std::memory_order_relaxed); }
  uint64_t disconnects() const { return disconnects_.load(std::memory_order_relaxed); }
  // nats.c's last error when it closed the connection for good without being asked to
  // (it gives up after repeated authentication failures, and then says only "No server
  // available for connection"); empty otherwise.
  std::string close_reason() const;

  // Called on nats.c's thread at every state change; must not block.
  void on_state_change(std::function<void(NatsState)> callback);

  // Core publish. Fails (without blocking) when nats.c refuses the message.
  Result<bool> publish(const std::string& subject, std::span<const uint8_t> data);
  Result<bool> publish_reply(const char* reply, std::span<const uint8_t> data);

  // The raw handles, for JetStream and subscriptions.
  natsConnection* connection() { return connection_; }

  // Flushes buffered publishes, waiting up to `timeout_ms`.
  Result<bool> flush(int64_t timeout_ms);

  // Closes the connection (idempotent); later publishes fail.
  void close();

  // The options this client was made with.
  const NatsClientOptions& options() const { return client_options_; }

 private:
  NatsClient() = default;
  void set_state(NatsState state);
  static void on_disconnected(natsConnection*, void* self);
  static void on_reconnected(natsConnection*, void* self);
  static void on_closed(natsConnection*, void* self);
  static void on_connected(natsConnection*, void* self);
  static int64_t on_reconnect_delay(natsConnection*, int attempts, void* self);

  NatsClientOptions client_options_;
  natsOptions* options_ = nullptr;
  natsConnection* connection_ = nullptr;
  std::atomic<NatsState> state_{NatsState::kConnecting};
  std::atomic<uint64_t> reconnects_{0};
  std::atomic<uint64_t> disconnects_{0};
  mutable std::mutex mutex_;
  std::condition_variable state_changed_;
  std::function<void(NatsState)> callback_;
  bool closed_callback_ran_ = false;  // guarded by mutex_
  std::string close_reason_;          // guarded by mutex_
};

Error nats_error(std::string_view what, natsStatus status);

}  // namespace kvmock
