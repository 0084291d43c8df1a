#include "transport/nats/generate_intake.h"

#include <algorithm>
#include <charconv>
#include <nlohmann/json.hpp>

#include "core/events/codec_support.h"
#include "core/events/subjects.h"
#include "transport/log/logger.h"

namespace kvmock {
namespace {

using nlohmann::json;

Result<uint32_t> read_u32(const json& object, const char* key, const char* path,
                          uint32_t fallback) {
  auto it = object.find(key);
  if (it == object.end() || it->is_null()) return fallback;
  if (!it->is_number_unsigned() || it->get<uint64_t>() > UINT32_MAX) {
    return make_error("bad_request", std::string(path) + ": expected an unsigned 32-bit integer");
  }
  return static_cast<uint32_t>(it->get<uint64_t>());
}

std::string read_string(const json& object, const char* key) {
  auto it = object.find(key);
  return it != object.end() && it->is_string() ? it->get<std::string>() : std::string();
}

json engine_output(const std::vector<TokenId>& tokens) {
  return json{{"token_ids", tokens},      {"tokens", nullptr},    {"text", nullptr},
              {"cum_log_probs", nullptr}, {"log_probs", nullptr}, {"finish_reason", nullptr}};
}

}  // namespace

struct NatsGenerateIntake::Route {
  NatsGenerateIntake* intake;
  WorkerBackend* worker;
  natsSubscription* subscription = nullptr;
};

static Result<bool> read_token_list(const json& object, const char* key, const char* path,
                                    std::vector<TokenId>& out) {
  auto it = object.find(key);
  if (it == object.end() || it->is_null()) return true;
  if (!it->is_array()) return make_error("bad_request", std::string(path) + ": expected an array");
  for (size_t i = 0; i < it->size(); ++i) {
    const json& t = (*it)[i];
    if (!t.is_number_unsigned() || t.get<uint64_t>() > UINT32_MAX) {
      return make_error("bad_request",
                        std::string(path) + "[" + std::to_string(i) + "]: expected uint32");
    }
    out.push_back(static_cast<TokenId>(t.get<uint64_t>()));
  }
  return true;
}

Result<GenerationRequest> parse_preprocessed_request(std::string_view text,
                                                     uint32_t default_max_tokens) {
  auto parsed = codec::parse_json(text);  // bounded nesting, never throws
  if (!parsed) return make_error("bad_request", "body is not valid JSON");
  const json body = std::move(*parsed);
  if (!body.is_object()) return make_error("bad_request", "body must be a JSON object");
  GenerationRequest request;
  auto tokens = body.find("token_ids");
  if (tokens == body.end() || !tokens->is_array()) {
    return make_error("bad_request", "token_ids: required array of token ids");
  }
  request.prompt.reserve(tokens->size());
  for (size_t i = 0; i < tokens->size(); ++i) {
    const json& t = (*tokens)[i];
    if (!t.is_number_unsigned() || t.get<uint64_t>() > UINT32_MAX) {
      return make_error("bad_request", "token_ids[" + std::to_string(i) + "]: expected uint32");
    }
    request.prompt.push_back(static_cast<TokenId>(t.get<uint64_t>()));
  }
  if (request.prompt.empty()) return make_error("bad_request", "token_ids: empty prompt");
  static const json kEmpty = json::object();
  auto stop = body.find("stop_conditions");
  const json& stop_conditions = stop != body.end() && stop->is_object() ? *stop : kEmpty;
  auto max_tokens =
      read_u32(stop_conditions, "max_tokens", "stop_conditions.max_tokens", default_max_tokens);
  if (!max_tokens) return max_tokens.error();
  request.max_tokens = *max_tokens;
  auto min_tokens = read_u32(stop_conditions, "min_tokens", "stop_conditions.min_tokens", 0);
  if (!min_tokens) return min_tokens.error();
  request.min_tokens = *min_tokens;
  auto ignore_eos = stop_conditions.find("ignore_eos");
  if (ignore_eos != stop_conditions.end() && !ignore_eos->is_null()) {
    if (!ignore_eos->is_boolean()) {
      return make_error("bad_request", "stop_conditions.ignore_eos: expected a boolean");
    }
    request.ignore_eos = ignore_eos->get<bool>();
  }
  auto eos = read_token_list(body, "eos_token_ids", "eos_token_ids", request.eos_token_ids);
  if (!eos) return eos.error();
  auto stop_ids = read_token_list(stop_conditions, "stop_token_ids",
                                  "stop_conditions.stop_token_ids", request.stop_token_ids);
  if (!stop_ids) return stop_ids.error();
  auto sampling_it = body.find("sampling_options");
  if (sampling_it != body.end() && sampling_it->is_object()) {
    auto seed = sampling_it->find("seed");
    if (seed != sampling_it->end() && !seed->is_null()) {
      // Dynamo's seed is an i64: a negative one keeps its bits.
      if (seed->is_number_unsigned()) {
        request.seed = seed->get<uint64_t>();
      } else if (seed->is_number_integer()) {
        request.seed = static_cast<uint64_t>(seed->get<int64_t>());
      } else {
        return make_error("bad_request", "sampling_options.seed: expected an integer");
      }
    }
  }
  auto hidden = read_token_list(stop_conditions, "stop_token_ids_hidden",
                                "stop_conditions.stop_token_ids_hidden", request.eos_token_ids);
  if (!hidden) return hidden.error();
  auto routing_it = body.find("routing");
  const json& routing = routing_it != body.end() && routing_it->is_object() ? *routing_it : kEmpty;
  if (routing.contains("dp_rank")) {
    auto rank = read_u32(routing, "dp_rank", "routing.dp_rank", 0);
    if (!rank) return rank.error();
    request.dp_rank = *rank;
  }
  request.lora_name = read_string(routing, "lora_name");
  request.cache_salt = read_string(routing, "cache_salt");
  return request;
}

std::string_view dynamo_finish_reason(std::string_view vllm_reason) {
  if (vllm_reason == "abort") return "cancelled";
  return vllm_reason;
}

NatsGenerateIntake::NatsGenerateIntake(NatsClient& client, std::string ns, std::string component,
                                       MetricsRegistry& metrics)
    : client_(client), ns_(std::move(ns)), component_(std::move(component)) {
  accepted_ = &metrics.counter("kvmock_nats_generate_requests_total",
                               "Requests received on the NATS generate subjects.",
                               {{"result", "accepted"}});
  rejected_ = &metrics.counter("kvmock_nats_generate_requests_total",
                               "Requests received on the NATS generate subjects.",
                               {{"result", "rejected"}});
  cancelled_ = &metrics.counter(
      "kvmock_nats_generate_cancelled_total",
      "NATS generate requests cancelled because their reply subject lost its subscriber.");
}

NatsGenerateIntake::~NatsGenerateIntake() { stop(); }

Result<bool> NatsGenerateIntake::ensure_watch() {
  if (watch_ != nullptr) return true;
  natsInbox* inbox = nullptr;
  natsStatus s = natsInbox_Create(&inbox);
  if (s != NATS_OK) return nats_error("creating the generate watch inbox", s);
  const std::string prefix = std::string(inbox) + ".";
  natsInbox_Destroy(inbox);
  s = natsConnection_Subscribe(&watch_, client_.connection(), (prefix + "*").c_str(),
                               &NatsGenerateIntake::on_watch, this);
  if (s != NATS_OK) {
    watch_ = nullptr;
    return nats_error("subscribing the generate watch inbox", s);
  }
  watch_prefix_ = prefix;
  return true;
}

void NatsGenerateIntake::on_watch(natsConnection*, natsSubscription*, natsMsg* msg, void* self) {
  auto* intake = static_cast<NatsGenerateIntake*>(self);
  if (natsMsg_IsNoResponders(msg)) {
    const std::string_view subject = natsMsg_GetSubject(msg);
    const std::string_view key_text =
        subject.substr(std::min(subject.size(), intake->watch_prefix_.size()));
    uint64_t key = 0;
    const auto [end, ec] = std::from_chars(key_text.data(), key_text.data() + key_text.size(), key);
    if (ec == std::errc() && end == key_text.data() + key_text.size()) intake->requester_gone(key);
  }
  natsMsg_Destroy(msg);
}

void NatsGenerateIntake::requester_gone(uint64_t key) {
  WorkerBackend* worker = nullptr;
  uint64_t request_id = 0;
  {
    std::lock_guard lock(mutex_);
    auto it = watched_.find(key);
    if (it == watched_.end() || it->second.gone) return;  // finished, or already cancelled
    it->second.gone = true;
    if (!it->second.request_id) return;  // cancelled by handle() once submit() returns
    worker = it->second.worker;
    request_id = *it->second.request_id;
  }
  cancelled_->inc();
  worker->cancel(request_id);
}

void NatsGenerateIntake::forget(uint64_t key) {
  std::lock_guard lock(mutex_);
  watched_.erase(key);
}

void NatsGenerateIntake::send(const std::string& reply, uint64_t key, const std::string& text) {
  const auto* data = reinterpret_cast<const uint8_t*>(text.data());
  if (key == 0 || watch_prefix_.empty()) {
    (void)client_.publish_reply(reply.c_str(), std::span(data, text.size()));
    return;
  }
  const std::string watch = watch_prefix_ + std::to_string(key);
  (void)natsConnection_PublishRequest(client_.connection(), reply.c_str(), watch.c_str(),
                                      text.data(), static_cast<int>(text.size()));
}

std::string NatsGenerateIntake::subject(std::string_view ns, std::string_view component,
                                        uint64_t worker_id) {
  return "namespace." + encode_subject_token(ns) + ".component." + encode_subject_token(component) +
         ".generate." + std::to_string(worker_id);
}

Result<bool> NatsGenerateIntake::serve(WorkerBackend& worker) {
  if (auto watching = ensure_watch(); !watching) return watching.error();
  auto route = std::make_unique<Route>(Route{this, &worker, nullptr});
  const std::string name = subject(ns_, component_, worker.worker_id());
  const natsStatus s =
      natsConnection_Subscribe(&route->subscription, client_.connection(), name.c_str(),
                               &NatsGenerateIntake::on_message, route.get());
  if (s != NATS_OK) return nats_error("subscribing " + name, s);
  routes_.push_back(std::move(route));
  return true;
}

void NatsGenerateIntake::unserve(const WorkerBackend& worker) {
  for (auto& route : routes_) {
    if (route->worker != &worker || route->subscription == nullptr) continue;
    natsSubscription_Unsubscribe(route->subscription);
    natsSubscription_Destroy(route->subscription);
    route->subscription = nullptr;
  }
}

void NatsGenerateIntake::stop() {
  if (watch_ != nullptr) {
    natsSubscription_Unsubscribe(watch_);
    natsSubscription_Destroy(watch_);
    watch_ = nullptr;
  }
  for (auto& route : routes_) {
    if (route->subscription) {
      natsSubscription_Unsubscribe(route->subscription);
      natsSubscription_Destroy(route->subscription);
      route->subscription = nullptr;
    }
  }
}

void NatsGenerateIntake::on_message(natsConnection*, natsSubscription*, natsMsg* msg,
                                    void* closure) {
  auto* route = static_cast<Route*>(closure);
  route->intake->handle(*route->worker, msg);
  natsMsg_Destroy(msg);
}

void NatsGenerateIntake::handle(WorkerBackend& worker, natsMsg* msg) {
  const char* reply_subject = natsMsg_GetReply(msg);
  if (!reply_subject || !*reply_subject) {
    rejected_->inc();
    Logger::instance().log_limited(LogSeverity::kWarn, "generate-no-reply", "nats-intake",
                                   "generate request without a reply subject ignored");
    return;
  }
  const std::string reply = reply_subject;
  auto request = parse_preprocessed_request(
      std::string_view(natsMsg_GetData(msg), static_cast<size_t>(natsMsg_GetDataLength(msg))));
  auto fail = [&](const std::string& message) {
    rejected_->inc();
    json last = engine_output({});
    last["finish_reason"] = json{{"error", message}};
    send(reply, 0, last.dump());
  };
  if (!request) return fail(request.error().message);
  uint64_t key = 0;
  {
    std::lock_guard lock(mutex_);
    key = next_key_++;
    watched_[key].worker = &worker;
  }
  GenerationCallbacks callbacks;
  callbacks.on_tokens = [this, reply, key](const std::vector<TokenId>& tokens) {
    send(reply, key, engine_output(tokens).dump());
  };
  callbacks.on_finish = [this, reply, key](const GenerationFinish& finish) {
    forget(key);
    json last = engine_output({});
    if (finish.finish_reason == "error") {
      last["finish_reason"] = json{{"error", finish.error}};
    } else {
      last["finish_reason"] = std::string(dynamo_finish_reason(finish.finish_reason));
    }
    last["completion_usage"] = {
        {"prompt_tokens", finish.prompt_tokens},
        {"completion_tokens", finish.completion_tokens},
        {"total_tokens", finish.prompt_tokens + finish.completion_tokens},
        {"prompt_tokens_details", {{"cached_tokens", finish.cached_tokens}}}};
    send(reply, 0, last.dump());
  };
  auto submitted = worker.submit(std::move(*request), std::move(callbacks));
  if (!submitted) {
    forget(key);
    return fail(std::string(submitted.error().reason) + ": " + submitted.error().message);
  }
  accepted_->inc();
  bool cancel_now = false;
  {
    std::lock_guard lock(mutex_);
    if (auto it = watched_.find(key); it != watched_.end()) {  // else: already finished
      it->second.request_id = *submitted;
      cancel_now = it->second.gone;
    }
  }
  if (cancel_now) {
    cancelled_->inc();
    worker.cancel(*submitted);
  }
}

}  // namespace kvmock
