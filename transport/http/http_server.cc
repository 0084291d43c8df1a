#include "transport/http/http_server.h"

#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <cerrno>
#include <future>

#include "transport/http/http_session.h"
#include "transport/log/logger.h"
#include "transport/metrics/metrics_registry.h"
#include "transport/time/system_clock.h"

namespace kvmock {

namespace net = boost::asio;
using tcp = boost::asio::ip::tcp;
using http_detail::ListenerState;
using http_detail::Session;

namespace {

constexpr std::chrono::milliseconds kFirstBackoff{10};
constexpr std::chrono::milliseconds kMaxBackoff{1000};
// Connections answered 503 at the limit are themselves bounded: past this many at once,
// more are closed without an answer.
constexpr size_t kMaxRefusing = 64;

// Errors of one connection that died between the kernel queuing it and accept(): the
// listener is fine, so the next accept() goes on at once.
bool is_per_connection_error(const boost::system::error_code& ec) {
  return ec == net::error::connection_aborted || ec.value() == EPROTO || ec.value() == EPERM ||
         ec.value() == ECONNRESET;
}

std::string errno_name(const boost::system::error_code& ec) {
  switch (ec.value()) {
    case EMFILE:
      return "EMFILE";
    case ENFILE:
      return "ENFILE";
    case ENOBUFS:
      return "ENOBUFS";
    case ENOMEM:
      return "ENOMEM";
    case ECONNABORTED:
      return "ECONNABORTED";
    case EPROTO:
      return "EPROTO";
    case EPERM:
      return "EPERM";
    default:
      return std::to_string(ec.value());
  }
}

}  // namespace

HttpServer::HttpServer(net::io_context& io, HttpHandler handler, HttpServerOptions options)
    : io_(io),
      handler_(std::move(handler)),
      options_(std::move(options)),
      acceptor_(net::make_strand(io)),
      retry_timer_(acceptor_.get_executor()),
      state_(std::make_shared<ListenerState>()) {}

HttpServer::~HttpServer() { stop(); }

Result<uint16_t> HttpServer::listen(const std::string& host, uint16_t port) {
  boost::system::error_code ec;
  const auto address = net::ip::make_address(host, ec);
  if (ec) return make_error("address", "bad listen host '" + host + "': " + ec.message());
  const tcp::endpoint endpoint(address, port);
  acceptor_.open(endpoint.protocol(), ec);
  if (!ec) acceptor_.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_.bind(endpoint, ec);
  if (!ec) acceptor_.listen(net::socket_base::max_listen_connections, ec);
  // retry_accept() needs accept() to report "nobody waiting" rather than block.
  if (!ec) acceptor_.non_blocking(true, ec);
  if (ec) {
    return make_error(
        "listen", "cannot listen on " + host + ":" + std::to_string(port) + ": " + ec.message());
  }
  port_ = acceptor_.local_endpoint().port();
  if (options_.metrics != nullptr) {
    state_->metrics = options_.metrics;
    state_->labels = {{"listener", options_.name}, {"port", std::to_string(port_)}};
    options_.metrics->gauge_callback(
        "kvmock_http_connections_open", "Open HTTP connections of a listener.", state_->labels,
        [state = state_] { return static_cast<double>(state->open.load()); });
    state_->refused = &options_.metrics->counter(
        "kvmock_http_connections_refused_total",
        "Connections refused (503 or closed) because the listener was at its connection limit.",
        state_->labels);
  }
  accept();
  return port_;
}

bool HttpServer::accepting(std::string& reason) const {
  std::lock_guard lock(episode_mutex_);
  if (!in_episode_) return true;
  const auto for_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                          SystemClock::instance().steady_now() - episode_start_)
                          .count();
  reason = options_.name + " port " + std::to_string(port_) + ": accept failing (" +
           episode_error_ + ") for " + std::to_string(for_ms) + " ms, " +
           std::to_string(episode_errors_) + " errors; retrying";
  return false;
}

size_t HttpServer::open_connections() const { return state_->open.load(); }

void HttpServer::accept() {
  acceptor_.async_accept(net::make_strand(io_),
                         [this, state = state_](boost::system::error_code ec, tcp::socket socket) {
                           // Aborted: stop() closed the acceptor, and `this` may be gone.
                           if (ec == net::error::operation_aborted) return;
                           {
                             std::lock_guard lock(state->mutex);
                             if (state->stopped) return;
                           }
                           on_accept(ec, std::move(socket));
                         });
}

void HttpServer::on_accept(boost::system::error_code ec, tcp::socket socket) {
  if (ec) return on_accept_error(ec);
  end_error_episode();
  admit(std::move(socket));
  accept();
}

// Out of descriptors or kernel memory: accepting again at once would spin, and giving up
// would leave the port dead for good while the kernel still queues connections. So retry
// with backoff; clients wait in the backlog meanwhile.
void HttpServer::on_accept_error(boost::system::error_code ec) {
  const std::string name = errno_name(ec);
  state_->count("kvmock_http_accept_errors_total", "accept() failures of a listener, by errno.",
                "errno", name);
  if (is_per_connection_error(ec)) return accept();
  bool first = false;
  {
    std::lock_guard lock(episode_mutex_);
    first = !in_episode_;
    if (first) {
      in_episode_ = true;
      episode_start_ = SystemClock::instance().steady_now();
      episode_errors_ = 0;
      backoff_ = kFirstBackoff;
    } else {
      backoff_ = std::min(backoff_ * 2, kMaxBackoff);
    }
    ++episode_errors_;
    episode_error_ = name + ": " + ec.message();
  }
  if (first) {
    log_warn("http", options_.name + " port " + std::to_string(port_) + ": accept failed (" + name +
                         ": " + ec.message() +
                         "); retrying with backoff up to 1 s, not ready meanwhile");
  }
  retry_timer_.expires_after(backoff_);
  retry_timer_.async_wait([this, state = state_](boost::system::error_code wait_ec) {
    if (wait_ec) return;  // cancelled by stop()
    {
      std::lock_guard lock(state->mutex);
      if (state->stopped) return;
    }
    retry_accept();
  });
}

// One non-blocking accept() tells "still failing" from "recovered, nobody waiting"; an
// asynchronous accept would wait for the next client before reporting either, leaving the
// listener unready until then.
void HttpServer::retry_accept() {
  boost::system::error_code ec;
  tcp::socket socket(net::make_strand(io_));
  acceptor_.accept(socket, ec);
  if (ec == net::error::would_block || ec == net::error::try_again) {
    end_error_episode();
    return accept();
  }
  on_accept(ec, std::move(socket));
}

void HttpServer::end_error_episode() {
  uint64_t errors = 0;
  {
    std::lock_guard lock(episode_mutex_);
    if (!in_episode_) return;
    in_episode_ = false;
    errors = episode_errors_;
  }
  log_info("http", options_.name + " port " + std::to_string(port_) + ": accepting again after " +
                       std::to_string(errors) + " accept errors");
}

void HttpServer::admit(tcp::socket socket) {
  std::lock_guard lock(state_->mutex);
  if (state_->stopped) return;
  const bool over = state_->open.load() >= options_.max_connections;
  if (over) {
    state_->refused->inc();
    Logger::instance().log_limited(LogSeverity::kWarn, "http-limit-" + std::to_string(port_),
                                   "http",
                                   options_.name + " port " + std::to_string(port_) + ": " +
                                       std::to_string(options_.max_connections) +
                                       " connections open (the limit); refusing more with 503",
                                   std::chrono::seconds(10));
    if (state_->refusing.load() >= kMaxRefusing) return;  // `socket` closes on return
  }
  auto session = std::make_shared<Session>(std::move(socket), handler_, options_, state_, over);
  state_->sessions.insert(session);
  if (over) {
    session->refuse();
  } else {
    session->start();
  }
}

void HttpServer::stop() {
  std::set<std::shared_ptr<void>> sessions;
  {
    std::lock_guard lock(state_->mutex);
    if (state_->stopped) return;
    state_->stopped = true;
    // Emptied here, not by each session's close(): a session and the registry own each
    // other, and the posted closes may never run if the io_context stops first.
    sessions.swap(state_->sessions);
  }
  net::post(acceptor_.get_executor(), [this] {
    boost::system::error_code ignored;
    retry_timer_.cancel();
    acceptor_.close(ignored);
  });
  for (const auto& session : sessions)
    std::static_pointer_cast<Session>(session)->close_from_server();
}

bool HttpServer::stop_and_wait(std::chrono::milliseconds timeout) {
  stop();
  // stop() posted the close to the acceptor's strand: a marker posted after it runs once
  // the close has.
  auto closed = std::make_shared<std::promise<void>>();
  std::future<void> done = closed->get_future();
  net::post(acceptor_.get_executor(), [closed] { closed->set_value(); });
  return done.wait_for(timeout) == std::future_status::ready;
}

}  // namespace kvmock
