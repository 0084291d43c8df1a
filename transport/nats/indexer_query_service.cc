#include "transport/nats/indexer_query_service.h"

#include <variant>

#include "core/events/kv_query_codec.h"
#include "core/events/subjects.h"
#include "transport/log/logger.h"

namespace kvmock {
namespace {

constexpr const char* kHelp = "Local indexer queries answered.";

const char* answer_kind(const WorkerKvQueryResponse& response) {
  return std::visit(
      [](const auto& answer) -> const char* {
        using T = std::decay_t<decltype(answer)>;
        if constexpr (std::is_same_v<T, QueryEvents>) return "Events";
        if constexpr (std::is_same_v<T, QueryTreeDump>) return "TreeDump";
        if constexpr (std::is_same_v<T, QueryTooNew>) return "TooNew";
        if constexpr (std::is_same_v<T, QueryInvalidRange>) return "InvalidRange";
        return "Error";
      },
      response);
}

}  // namespace

IndexerQueryService::IndexerQueryService(NatsClient& client, Query query,
                                         IndexerQueryServiceOptions options,
                                         MetricsRegistry& metrics)
    : client_(client),
      query_(std::move(query)),
      options_(std::move(options)),
      ok_(&metrics.counter("kvmock_indexer_queries_total", kHelp, {{"result", "ok"}})),
      errors_(&metrics.counter("kvmock_indexer_queries_total", kHelp, {{"result", "error"}})),
      too_large_(
          &metrics.counter("kvmock_indexer_queries_total", kHelp, {{"result", "too_large"}})),
      unsent_(&metrics.counter("kvmock_indexer_queries_total", kHelp, {{"result", "unsent"}})) {}

IndexerQueryService::~IndexerQueryService() { stop(); }

Result<bool> IndexerQueryService::serve(WorkerId worker) {
  std::lock_guard lock(subscriptions_mutex_);
  if (subscriptions_.count(worker)) return true;
  const std::string subject = kv_indexer_query_subject(options_.ns, worker);
  natsSubscription* subscription = nullptr;
  const natsStatus s = natsConnection_Subscribe(&subscription, client_.connection(),
                                                subject.c_str(), &on_message, this);
  if (s != NATS_OK) return nats_error("serving indexer queries on " + subject, s);
  subscriptions_[worker] = subscription;
  return true;
}

void IndexerQueryService::wait_until_registered(std::chrono::milliseconds timeout) {
  if (!client_.connected()) return;
  const natsStatus s =
      natsConnection_FlushTimeout(client_.connection(), static_cast<int64_t>(timeout.count()));
  if (s != NATS_OK) {
    log_warn("indexer", std::string("query subscriptions not confirmed by the server: ") +
                            natsStatus_GetText(s));
  }
}

void IndexerQueryService::stop() {
  {
    std::lock_guard lock(subscriptions_mutex_);
    for (auto& [worker, subscription] : subscriptions_) {
      natsSubscription_Unsubscribe(subscription);
      natsSubscription_Destroy(subscription);
    }
    subscriptions_.clear();
  }
  std::unique_lock wait_for_replies(replying_);
  stopped_ = true;
}

void IndexerQueryService::on_message(natsConnection*, natsSubscription*, natsMsg* msg, void* self) {
  static_cast<IndexerQueryService*>(self)->reply(msg);
  natsMsg_Destroy(msg);
}

void IndexerQueryService::reply(natsMsg* msg) {
  std::shared_lock running(replying_);
  if (stopped_) return;
  const char* reply_to = natsMsg_GetReply(msg);
  if (!reply_to || !*reply_to) {
    errors_->inc();
    Logger::instance().log_limited(LogSeverity::kWarn, "query-no-reply", "indexer",
                                   "indexer query without a reply subject ignored");
    return;
  }
  // The server's limit, learnt when connecting (0 while never connected: no limit known).
  const int64_t max_payload = natsConnection_GetMaxPayload(client_.connection());
  const std::string json = answer(
      std::string_view(natsMsg_GetData(msg), static_cast<size_t>(natsMsg_GetDataLength(msg))),
      max_payload > 0 ? static_cast<size_t>(max_payload) : std::numeric_limits<size_t>::max());
  auto sent = client_.publish_reply(
      reply_to, std::span(reinterpret_cast<const uint8_t*>(json.data()), json.size()));
  if (!sent) {
    unsent_->inc();
    Logger::instance().log_limited(LogSeverity::kWarn, "query-unsent", "indexer",
                                   "indexer query reply not sent: " + sent.error().message);
  }
}

std::string IndexerQueryService::answer(std::string_view request, size_t max_reply_bytes) {
  auto decoded = decode_worker_kv_query_request_json(request);
  WorkerKvQueryResponse response;
  Counter* outcome = ok_;
  if (!decoded) {
    Logger::instance().log_limited(LogSeverity::kWarn, "bad-query", "indexer",
                                   "bad indexer query: " + decoded.error().message);
    response = QueryError{"bad request: " + decoded.error().message};
    outcome = errors_;
  } else {
    response = query_(*decoded);
    if (std::holds_alternative<QueryError>(response)) outcome = errors_;
  }
  std::string json;
  encode_worker_kv_query_response_json(response, options_.field_set, json);
  if (json.size() <= max_reply_bytes) {
    outcome->inc();
    return json;
  }
  too_large_->inc();
  const std::string about = decoded ? " for worker " + std::to_string(decoded->worker_id) +
                                          " dp_rank " + std::to_string(decoded->dp_rank)
                                    : std::string();
  const std::string message =
      std::string("answer too large: the ") + answer_kind(response) + about + " is " +
      std::to_string(json.size()) + " bytes, over the transport's limit of " +
      std::to_string(max_reply_bytes) +
      " bytes (NATS max_payload); ask for a shorter event range or raise max_payload";
  Logger::instance().log_limited(LogSeverity::kWarn, "query-too-large", "indexer", message);
  json.clear();
  encode_worker_kv_query_response_json(QueryError{message}, options_.field_set, json);
  return json;
}

}  // namespace kvmock
