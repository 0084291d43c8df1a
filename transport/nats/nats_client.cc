#include "transport/nats/nats_client.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>

namespace kvmock {
namespace {

constexpr int64_t kFirstReconnectDelayMs = 10;
constexpr int64_t kMaxReconnectDelayMs = 5000;

std::string trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return std::string(s);
}

}  // namespace

Error nats_error(std::string_view what, natsStatus status) {
  return make_error("nats", std::string(what) + ": " + natsStatus_GetText(status));
}

const char* nats_state_name(NatsState state) {
  switch (state) {
    case NatsState::kConnecting:
      return "connecting";
    case NatsState::kConnected:
      return "connected";
    case NatsState::kReconnecting:
      return "reconnecting";
    case NatsState::kClosed:
      return "closed";
  }
  return "unknown";
}

int64_t nats_reconnect_delay_ms(int attempts) {
  const int exponent = std::clamp(attempts - 1, 0, 20);
  return std::min(kMaxReconnectDelayMs, kFirstReconnectDelayMs << exponent);
}

std::vector<std::string> split_nats_urls(std::string_view list) {
  std::vector<std::string> urls;
  while (!list.empty()) {
    const size_t comma = list.find(',');
    std::string url = trim(list.substr(0, comma));
    if (!url.empty()) urls.push_back(std::move(url));
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return urls;
}

Result<std::unique_ptr<NatsClient>> NatsClient::connect(const NatsClientOptions& options) {
  std::unique_ptr<NatsClient> client(new NatsClient());
  natsOptions* opts = nullptr;
  natsStatus s = natsOptions_Create(&opts);
  if (s != NATS_OK) return nats_error("creating options", s);
  client->options_ = opts;
  client->client_options_ = options;

  std::vector<const char*> servers;
  for (const std::string& url : options.urls) servers.push_back(url.c_str());
  if (servers.empty()) return make_error("config", "no NATS server URL");
  s = natsOptions_SetServers(opts, servers.data(), static_cast<int>(servers.size()));
  if (s != NATS_OK) return nats_error("server URLs", s);
  natsOptions_SetName(opts, options.name.c_str());
  if (!options.user.empty())
    natsOptions_SetUserInfo(opts, options.user.c_str(), options.password.c_str());
  if (!options.token.empty()) natsOptions_SetToken(opts, options.token.c_str());
  // nats.c reads credentials and seed files only when it connects, and a connection that
  // retries forever would hide an unreadable file behind "no server available".
  for (const std::string* file : {&options.credentials_file, &options.nkey_seed_file}) {
    if (!file->empty() && ::access(file->c_str(), R_OK) != 0) {
      return make_error("config", "cannot read " + *file + ": " + std::strerror(errno));
    }
  }
  if (!options.credentials_file.empty()) {
    s = natsOptions_SetUserCredentialsFromFiles(opts, options.credentials_file.c_str(), nullptr);
    if (s != NATS_OK) return nats_error("credentials file " + options.credentials_file, s);
  }
  if (!options.nkey_seed_file.empty()) {
    s = natsOptions_SetNKeyFromSeed(opts, nullptr, options.nkey_seed_file.c_str());
    if (s != NATS_OK) return nats_error("nkey seed file " + options.nkey_seed_file, s);
  }
  if (!options.tls_ca_file.empty() || !options.tls_cert_file.empty()) {
    natsOptions_SetSecure(opts, true);
    if (!options.tls_ca_file.empty()) {
      s = natsOptions_LoadCATrustedCertificates(opts, options.tls_ca_file.c_str());
      if (s != NATS_OK) return nats_error("TLS CA file " + options.tls_ca_file, s);
    }
    if (!options.tls_cert_file.empty()) {
      s = natsOptions_LoadCertificatesChain(opts, options.tls_cert_file.c_str(),
                                            options.tls_key_file.c_str());
      if (s != NATS_OK) return nats_error("TLS certificate " + options.tls_cert_file, s);
    }
  }
  natsOptions_SetDisconnectedCB(opts, &NatsClient::on_disconnected, client.get());
  natsOptions_SetClosedCB(opts, &NatsClient::on_closed, client.get());
  if (options.reconnect) {
    natsOptions_SetAllowReconnect(opts, true);
    natsOptions_SetMaxReconnect(opts, -1);
    natsOptions_SetCustomReconnectDelay(opts, &NatsClient::on_reconnect_delay, client.get());
    natsOptions_SetReconnectedCB(opts, &NatsClient::on_reconnected, client.get());
    natsOptions_SetRetryOnFailedConnect(opts, true, &NatsClient::on_connected, client.get());
    // Publishers hold events in their own outbox while disconnected; nats.c's buffer
    // only has to absorb what was in flight when the link dropped.
    natsOptions_SetReconnectBufSize(opts, 64 * 1024 * 1024);
  } else {
    natsOptions_SetAllowReconnect(opts, false);
  }
  natsOptions_SetPingInterval(opts, 2000);
  natsOptions_SetMaxPingsOut(opts, 2);
  natsOptions_SetTimeout(opts, 2000);
  // nats.c gives each async subscription its own delivery thread by default: two per
  // mock worker (generate intake, indexer queries), 2,000 threads for 1,000 workers.
  // Our handlers never block (they post to engines or answer from memory), so one
  // shared delivery thread serves them all.
  natsOptions_UseGlobalMessageDelivery(opts, true);

  s = natsConnection_Connect(&client->connection_, opts);
  if (s == NATS_OK) {
    client->set_state(NatsState::kConnected);
  } else if (s == NATS_NOT_YET_CONNECTED) {
    client->set_state(NatsState::kConnecting);
  } else {
    return nats_error("connecting", s);
  }
  return client;
}

NatsClient::~NatsClient() {
  {
    std::lock_guard lock(mutex_);
    callback_ = nullptr;
  }
  if (connection_) {
    natsConnection_Close(connection_);
    // nats.c delivers connection callbacks on its own thread, after Close returns; the
    // closed callback is the last one it queues, so once it has run nothing refers to us.
    std::unique_lock lock(mutex_);
    state_changed_.wait_for(lock, std::chrono::seconds(10),
                            [this] { return closed_callback_ran_; });
    lock.unlock();
    natsConnection_Destroy(connection_);
  }
  if (options_) natsOptions_Destroy(options_);
}

void NatsClient::close() {
  if (connection_ && !natsConnection_IsClosed(connection_)) natsConnection_Close(connection_);
  set_state(NatsState::kClosed);
}

bool NatsClient::wait_connected(int64_t timeout_ms) {
  std::unique_lock lock(mutex_);
  state_changed_.wait_for(lock, std::chrono::milliseconds(timeout_ms), [this] {
    return state() == NatsState::kConnected || state() == NatsState::kClosed;
  });
  return connected();
}

std::string NatsClient::close_reason() const {
  std::lock_guard lock(mutex_);
  return close_reason_;
}

void NatsClient::on_state_change(std::function<void(NatsState)> callback) {
  std::lock_guard lock(mutex_);
  callback_ = std::move(callback);
}

void NatsClient::set_state(NatsState state) {
  std::function<void(NatsState)> callback;
  {
    std::lock_guard lock(mutex_);
    if (state_.load() == NatsState::kClosed) return;  // closed is final
    state_.store(state, std::memory_order_release);
    callback = callback_;
  }
  state_changed_.notify_all();
  if (callback) callback(state);
}

Result<bool> NatsClient::publish(const std::string& subject, std::span<const uint8_t> data) {
  const natsStatus s = natsConnection_Publish(connection_, subject.c_str(), data.data(),
                                              static_cast<int>(data.size()));
  if (s != NATS_OK) return nats_error("publish to " + subject, s);
  return true;
}

Result<bool> NatsClient::publish_reply(const char* reply, std::span<const uint8_t> data) {
  const natsStatus s =
      natsConnection_Publish(connection_, reply, data.data(), static_cast<int>(data.size()));
  if (s != NATS_OK) return nats_error("reply", s);
  return true;
}

Result<bool> NatsClient::flush(int64_t timeout_ms) {
  const natsStatus s = natsConnection_FlushTimeout(connection_, timeout_ms);
  if (s != NATS_OK) return nats_error("flush", s);
  return true;
}

void NatsClient::on_disconnected(natsConnection*, void* self) {
  auto* client = static_cast<NatsClient*>(self);
  client->disconnects_.fetch_add(1, std::memory_order_relaxed);
  client->set_state(NatsState::kReconnecting);
}

void NatsClient::on_reconnected(natsConnection*, void* self) {
  auto* client = static_cast<NatsClient*>(self);
  client->reconnects_.fetch_add(1, std::memory_order_relaxed);
  client->set_state(NatsState::kConnected);
}

void NatsClient::on_connected(natsConnection*, void* self) {
  static_cast<NatsClient*>(self)->set_state(NatsState::kConnected);
}

void NatsClient::on_closed(natsConnection* connection, void* self) {
  auto* client = static_cast<NatsClient*>(self);
  const char* text = nullptr;
  if (client->state() != NatsState::kClosed &&
      natsConnection_GetLastError(connection, &text) != NATS_OK && text != nullptr) {
    std::lock_guard lock(client->mutex_);
    client->close_reason_ = text;
  }
  client->set_state(NatsState::kClosed);
  // Notified under the lock: the destructor may free the condition variable as soon as
  // it sees the flag.
  std::lock_guard lock(client->mutex_);
  client->closed_callback_ran_ = true;
  client->state_changed_.notify_all();
}

int64_t NatsClient::on_reconnect_delay(natsConnection*, int attempts, void*) {
  return nats_reconnect_delay_ms(attempts);
}

}  // namespace kvmock
