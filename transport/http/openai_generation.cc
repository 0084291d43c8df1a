#include "transport/http/openai_generation.h"

#include <algorithm>

#include "core/common/splitmix.h"
#include "transport/http/openai_errors.h"

namespace kvmock {
namespace {

using json = nlohmann::ordered_json;

constexpr std::string_view kJson = "application/json";

// The sampled token's synthetic logprob: in [-3, -0.01], a function of (token, position).
double sampled_logprob(TokenId token, uint64_t position) {
  return -0.01 -
         static_cast<double>(splitmix64((uint64_t{token} << 32) ^ position) % 2991) / 1000.0;
}

json token_bytes(const std::string& text) {
  json bytes = json::array();
  for (unsigned char c : text) bytes.push_back(c);
  return bytes;
}

// Backs `end` off the middle of a UTF-8 character, so a streamed piece is valid text.
size_t utf8_boundary(const std::string& text, size_t end, size_t floor) {
  while (end > floor && end < text.size() &&
         (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) {
    --end;
  }
  return end;
}

}  // namespace

Generation::Sequence::Sequence(const TextCodec& codec, const ParsedRequest& request)
    : detokenizer(codec, request.prompt),
      logprob_detokenizer(request.logprobs
                              ? std::make_unique<IncrementalDetokenizer>(codec, request.prompt)
                              : nullptr),
      logprob_entries(json::array()),
      logprob_text_offset(request.echo_text ? request.echo_text->size() : 0) {}

Generation::Generation(std::shared_ptr<HttpExchange> exchange, GenerationAnswer answer,
                       const ParsedRequest& request, const TextCodec& codec)
    : exchange_(std::move(exchange)),
      answer_(std::move(answer)),
      stream_(request.stream),
      include_usage_(request.include_usage),
      continuous_usage_(request.include_usage && request.continuous_usage_stats),
      stop_(request.stop),
      include_stop_(request.include_stop_str_in_output),
      stop_holdback_([&] {
        size_t longest = 0;
        for (const std::string& stop : request.stop) longest = std::max(longest, stop.size());
        return longest > 0 ? longest - 1 : 0;
      }()),
      logprobs_(request.logprobs),
      echo_text_(request.echo_text),
      tool_call_(request.forced_tool_call),
      prompt_tokens_(request.prompt.size()),
      returned_count_(request.n),
      codec_(codec) {
  prompt_logprobs_ = prompt_logprobs(request);
  const size_t count = std::max(request.n, request.best_of);
  sequences_.reserve(count);
  for (size_t i = 0; i < count; ++i)
    sequences_.push_back(std::make_unique<Sequence>(codec, request));
  if (!stream_) return;
  // The parser refuses best_of > n when streaming: every sequence is a streamed choice.
  for (size_t index = 0; index < count; ++index) {
    if (answer_.chat) {
      json delta{{"role", "assistant"}, {"content", ""}};
      pending_ += sse(chunk(index, std::move(delta), nullptr, std::nullopt));
    } else if (echo_text_ && !echo_text_->empty()) {
      pending_ += sse(chunk(index, *echo_text_, prompt_logprobs_, std::nullopt));
    }
  }
}

std::optional<BackendCall> Generation::submitted(size_t index, uint64_t request_id) {
  std::lock_guard lock(mutex_);
  Sequence& sequence = *sequences_.at(index);
  sequence.request_id = request_id;
  if ((gone_ || done_) && !sequence.finished) {
    return BackendCall{BackendCall::Kind::kCancel, request_id};
  }
  return owed_stop_locked(sequence);
}

void Generation::all_submitted() {
  std::lock_guard lock(mutex_);
  if (!stream_ || abandoned_) return;
  exchange_->begin_stream(200, "text/event-stream", answer_.headers);
  begun_ = true;
  flush_locked();
  if (cut_) exchange_->abort(/*reset=*/false);  // the cut came before the stream began
}

std::vector<BackendCall> Generation::abandon() {
  std::lock_guard lock(mutex_);
  abandoned_ = true;
  done_ = true;
  pending_.clear();
  return cancels_locked();
}

std::vector<BackendCall> Generation::client_gone() {
  std::lock_guard lock(mutex_);
  gone_ = true;
  return cancels_locked();
}

std::vector<BackendCall> Generation::cancels_locked() const {
  std::vector<BackendCall> calls;
  for (const auto& sequence : sequences_) {
    if (sequence->request_id && !sequence->finished) {
      calls.push_back(BackendCall{BackendCall::Kind::kCancel, *sequence->request_id});
    }
  }
  return calls;
}

std::optional<BackendCall> Generation::on_tokens(size_t index, const std::vector<TokenId>& tokens) {
  std::lock_guard lock(mutex_);
  Sequence& sequence = *sequences_.at(index);
  if (sequence.stopped || sequence.finished || done_) return std::nullopt;
  for (size_t i = 0; i < tokens.size(); ++i) {
    sequence.cumulative_logprob += sampled_logprob(tokens[i], sequence.generated + i);
  }
  add_logprobs_locked(sequence, tokens);
  sequence.generated += tokens.size();
  accept_text_locked(sequence, sequence.detokenizer.push(tokens));
  if (stream_) stream_text_locked(index, false);
  if (cut_after_tokens_ && sequence.generated >= *cut_after_tokens_) {
    cut_locked();
    return std::nullopt;  // the hang-up the cut causes cancels every sequence
  }
  flush_locked();
  return owed_stop_locked(sequence);
}

std::optional<BackendCall> Generation::owed_stop_locked(Sequence& sequence) {
  if (!sequence.stop_owed || !sequence.request_id || sequence.finished) return std::nullopt;
  sequence.stop_owed = false;
  return BackendCall{BackendCall::Kind::kStop, *sequence.request_id};
}

void Generation::accept_text_locked(Sequence& sequence, const std::string& piece) {
  if (sequence.stopped || piece.empty()) return;
  std::string& text = sequence.text;
  text += piece;
  if (stop_.empty()) return;
  // The earliest match wins, as vLLM's detokenizer checks; a match may begin in text held
  // back from the stream but never in text already sent (the holdback covers it).
  size_t best = std::string::npos;
  const std::string* matched = nullptr;
  for (const std::string& stop : stop_) {
    const size_t at = text.find(stop, sequence.searched);
    if (at != std::string::npos && at < best) {
      best = at;
      matched = &stop;
    }
  }
  if (matched == nullptr) {
    sequence.searched = text.size() > stop_holdback_ ? text.size() - stop_holdback_ : 0;
    return;
  }
  text.resize(include_stop_ ? best + matched->size() : best);
  sequence.matched_stop = *matched;
  sequence.stopped = true;
  sequence.stop_owed = true;
}

void Generation::stream_text_locked(size_t index, bool at_end) {
  Sequence& sequence = *sequences_[index];
  const std::string& text = sequence.text;
  size_t end = text.size();
  if (!at_end && !sequence.stopped) end = end > stop_holdback_ ? end - stop_holdback_ : 0;
  end = utf8_boundary(text, std::max(end, sequence.streamed), sequence.streamed);
  std::string piece = text.substr(sequence.streamed, end - sequence.streamed);
  sequence.streamed = end;
  if (tool_call_) piece.clear();  // a forced tool call answers with the call, not text
  json logprobs = nullptr;
  json& entries_so_far = sequence.logprob_entries;
  if (logprobs_ && sequence.logprob_streamed < entries_so_far.size()) {
    json entries = json::array();
    for (size_t i = sequence.logprob_streamed; i < entries_so_far.size(); ++i) {
      entries.push_back(entries_so_far[i]);
    }
    sequence.logprob_streamed = entries_so_far.size();
    logprobs = answer_.chat ? json{{"content", std::move(entries)}}
                            : completion_logprobs(sequence, entries);
  }
  if (piece.empty() && logprobs.is_null() && !continuous_usage_) return;
  json delta = answer_.chat ? json{{"content", std::move(piece)}} : json(std::move(piece));
  pending_ += sse(chunk(index, std::move(delta), std::move(logprobs), std::nullopt));
}

void Generation::add_logprobs_locked(Sequence& sequence, const std::vector<TokenId>& tokens) {
  if (!logprobs_) return;
  for (size_t i = 0; i < tokens.size(); ++i) {
    const TokenId token = tokens[i];
    const uint64_t position = sequence.generated + i;
    // The token's share of the output text, as the client reads it (a word's leading space
    // included), so the entries' tokens join to the text.
    const std::string text = sequence.logprob_detokenizer->push(std::span(&token, 1));
    json entry = logprob_entry(token, position, text);
    sequence.logprob_entries.push_back(std::move(entry));
  }
}

Generation::json Generation::logprob_entry(TokenId token, uint64_t position,
                                           const std::string& text) const {
  const std::shared_ptr<const std::vector<TokenId>> vocabulary = codec_.output_vocabulary();
  const double logprob = sampled_logprob(token, position);
  json top = json::array();
  top.push_back({{"token", text}, {"logprob", logprob}, {"bytes", token_bytes(text)}});
  // Less likely alternatives, real tokens of the model, each below the one before.
  for (uint32_t rank = 1; rank < *logprobs_; ++rank) {
    const uint64_t pick = splitmix64(uint64_t{token} * 31 + rank + position * 7);
    TokenId other = token + rank;
    if (vocabulary && !vocabulary->empty()) other = (*vocabulary)[pick % vocabulary->size()];
    const std::string other_text = codec_.decode(std::span(&other, 1), false);
    top.push_back({{"token", other_text},
                   {"logprob", logprob - 0.5 * rank - static_cast<double>(pick % 100) / 1000.0},
                   {"bytes", token_bytes(other_text)}});
  }
  return json{{"token", text},
              {"logprob", logprob},
              {"bytes", token_bytes(text)},
              {"top_logprobs", std::move(top)}};
}

Generation::json Generation::prompt_logprobs(const ParsedRequest& request) const {
  if (answer_.chat || !echo_text_ || !logprobs_) return nullptr;
  IncrementalDetokenizer detokenizer(codec_, {});
  json entries = json::array();
  for (size_t i = 0; i < request.prompt.size(); ++i) {
    const TokenId token = request.prompt[i];
    const std::string text = detokenizer.push(std::span(&token, 1));
    if (i == 0) {
      // Nothing precedes the first token: vLLM reports no logprob for it.
      entries.push_back(json{{"token", text}, {"logprob", nullptr}, {"top_logprobs", nullptr}});
    } else {
      entries.push_back(logprob_entry(token, i, text));
    }
  }
  size_t offset = 0;
  return completion_lists(entries, &offset);
}

std::vector<BackendCall> Generation::on_finish(size_t index, const GenerationFinish& finish) {
  std::lock_guard lock(mutex_);
  Sequence& sequence = *sequences_.at(index);
  sequence.finished = true;
  sequence.finish = finish;
  ++finished_count_;
  if (done_) return {};
  if (stream_ && cut_after_tokens_) {
    // The output ended before the cut point: the stream is cut at its end instead.
    stream_text_locked(index, true);
    cut_locked();
    return cancels_locked();
  }
  if (!sequence.stopped) accept_text_locked(sequence, sequence.detokenizer.finish());
  // One failed sequence fails the whole answer, as an exception ends vLLM's generator.
  const bool failed =
      finish.finish_reason == "error" || (!stream_ && finish_reason(sequence) == "abort");
  if (failed) {
    if (stream_) {
      pending_ += sse(openai_error_json(500, finish.error, "generation_failed", ""));
      pending_ += "data: [DONE]\n\n";
    } else if (finish.finish_reason == "error") {
      respond_error_locked(500, finish.error, "generation_failed");
    } else {
      respond_error_locked(503, "the request was aborted", "aborted");
    }
    done_ = true;
    flush_locked();
    return cancels_locked();
  }
  if (stream_) stream_finish_locked(index);
  if (finished_count_ < sequences_.size()) {
    flush_locked();
    return {};
  }
  if (!stream_) {
    respond_locked();
    return {};
  }
  if (include_usage_) {
    std::vector<size_t> all(sequences_.size());
    for (size_t i = 0; i < all.size(); ++i) all[i] = i;
    json tail = chunk_head();
    tail["choices"] = json::array();
    tail["usage"] = final_usage(all);
    pending_ += sse(tail);
  }
  pending_ += "data: [DONE]\n\n";
  done_ = true;
  flush_locked();
  return {};
}

void Generation::stream_finish_locked(size_t index) {
  const Sequence& sequence = *sequences_[index];
  stream_text_locked(index, true);
  if (tool_call_) {
    json call = tool_calls(index).front();
    call["index"] = 0;
    pending_ += sse(
        chunk(index, json{{"tool_calls", json::array({std::move(call)})}}, nullptr, std::nullopt));
  }
  json delta = answer_.chat ? json::object() : json("");
  json last = chunk(index, std::move(delta), nullptr, finish_reason(sequence));
  last["choices"][0]["stop_reason"] = stop_reason(sequence);
  pending_ += sse(last);
}

std::string Generation::finish_reason(const Sequence& sequence) const {
  if (sequence.stopped) return "stop";  // our stop string, whatever the worker reports for it
  const std::string& reported = sequence.finish.finish_reason;
  if (tool_call_ && (reported == "stop" || reported == "length")) return "tool_calls";
  return reported;
}

// vLLM's stop_reason: the stop string or stop token id that ended the output, else null.
Generation::json Generation::stop_reason(const Sequence& sequence) const {
  if (sequence.stopped) return sequence.matched_stop;
  if (sequence.finish.matched_stop_token) return *sequence.finish.matched_stop_token;
  return nullptr;
}

Generation::json Generation::usage_json(uint64_t prompt_tokens, uint64_t completion_tokens,
                                        uint64_t cached) const {
  json usage;
  usage["prompt_tokens"] = prompt_tokens;
  usage["completion_tokens"] = completion_tokens;
  usage["total_tokens"] = prompt_tokens + completion_tokens;
  usage["prompt_tokens_details"] = {{"cached_tokens", cached}};
  return usage;
}

// vLLM counts the shared prompt once, and the output of the choices it returns (best_of's
// discarded sequences are not counted). The prompt and its cache hit are the first
// sequence's: the others share its prompt.
Generation::json Generation::final_usage(const std::vector<size_t>& returned) const {
  uint64_t completion_tokens = 0;
  for (size_t index : returned) completion_tokens += sequences_[index]->finish.completion_tokens;
  const GenerationFinish& first = sequences_.front()->finish;
  return usage_json(first.prompt_tokens, completion_tokens, first.cached_tokens);
}

Generation::json Generation::chunk_head() const {
  json head;
  head["id"] = answer_.id;
  head["object"] = answer_.chat ? "chat.completion.chunk" : "text_completion";
  head["created"] = answer_.created;
  head["model"] = answer_.model;
  return head;
}

// A streamed chunk of choice `index`: `delta` is the chat delta object or the completion
// text.
Generation::json Generation::chunk(size_t index, json delta, json logprobs,
                                   std::optional<std::string> reason) const {
  json choice;
  choice["index"] = index;
  choice[answer_.chat ? "delta" : "text"] = std::move(delta);
  choice["logprobs"] = std::move(logprobs);
  choice["finish_reason"] = reason ? json(*reason) : json(nullptr);
  json out = chunk_head();
  out["choices"] = json::array({std::move(choice)});
  // OpenAI: with include_usage every chunk carries "usage", null until the last one; vLLM's
  // continuous_usage_stats fills it with the counts so far (of this choice).
  if (continuous_usage_) {
    out["usage"] = usage_json(prompt_tokens_, sequences_[index]->generated, 0);
  } else if (include_usage_) {
    out["usage"] = nullptr;
  }
  return out;
}

Generation::json Generation::tool_calls(size_t index) const {
  json function{{"name", tool_call_->name}, {"arguments", tool_call_->arguments}};
  // Each choice's call has an id of its own; the first keeps the single-choice form.
  std::string id = "chatcmpl-tool-" + answer_.id;
  if (index > 0) id += "-" + std::to_string(index);
  json call{{"id", std::move(id)}, {"type", "function"}, {"function", std::move(function)}};
  return json::array({std::move(call)});
}

// Completions report logprobs as four parallel lists; text offsets count from the start of
// the returned text (after an echoed prompt) and run on across streamed chunks.
Generation::json Generation::completion_logprobs(Sequence& sequence, const json& entries) {
  return completion_lists(entries, &sequence.logprob_text_offset);
}

Generation::json Generation::completion_lists(const json& entries, size_t* offset) {
  json tokens = json::array(), values = json::array(), tops = json::array(),
       offsets = json::array();
  for (const json& entry : entries) {
    tokens.push_back(entry["token"]);
    values.push_back(entry["logprob"]);
    json top = nullptr;
    if (!entry["top_logprobs"].is_null()) {
      top = json::object();
      for (const json& alternative : entry["top_logprobs"]) {
        top[alternative["token"].get<std::string>()] = alternative["logprob"];
      }
    }
    tops.push_back(std::move(top));
    offsets.push_back(*offset);
    *offset += entry["token"].get_ref<const std::string&>().size();
  }
  return json{{"text_offset", std::move(offsets)},
              {"token_logprobs", std::move(values)},
              {"tokens", std::move(tokens)},
              {"top_logprobs", std::move(tops)}};
}

// vLLM's best_of: the n sequences of highest cumulative logprob, best first (ties keep
// submission order).
std::vector<size_t> Generation::returned_sequences() const {
  std::vector<size_t> order(sequences_.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  if (order.size() == returned_count_) return order;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return sequences_[a]->cumulative_logprob > sequences_[b]->cumulative_logprob;
  });
  order.resize(returned_count_);
  return order;
}

void Generation::respond_error_locked(int status, const std::string& message,
                                      std::string_view code) {
  exchange_->respond(status, std::string(kJson),
                     openai_error_json(status, message, code, "").dump(), answer_.headers);
}

void Generation::respond_locked() {
  const std::vector<size_t> returned = returned_sequences();
  json choices = json::array();
  for (size_t index = 0; index < returned.size(); ++index) {
    Sequence& sequence = *sequences_[returned[index]];
    json choice;
    choice["index"] = index;
    json logprobs = nullptr;
    if (answer_.chat) {
      json message{{"role", "assistant"},
                   {"content", tool_call_ ? json(nullptr) : json(sequence.text)}};
      if (tool_call_) message["tool_calls"] = tool_calls(index);
      choice["message"] = std::move(message);
      if (logprobs_) logprobs = json{{"content", sequence.logprob_entries}};
    } else {
      choice["text"] = echo_text_.value_or("") + sequence.text;
      if (logprobs_) {
        logprobs = completion_logprobs(sequence, sequence.logprob_entries);
        // With echo, the prompt's entries come first, as the prompt's text does.
        if (!prompt_logprobs_.is_null()) {
          json lists = prompt_logprobs_;
          for (auto& [name, list] : lists.items()) {
            for (json& item : logprobs[name]) list.push_back(std::move(item));
          }
          logprobs = std::move(lists);
        }
      }
    }
    choice["logprobs"] = std::move(logprobs);
    choice["finish_reason"] = finish_reason(sequence);
    choice["stop_reason"] = stop_reason(sequence);
    choices.push_back(std::move(choice));
  }
  json body;
  body["id"] = answer_.id;
  body["object"] = answer_.chat ? "chat.completion" : "text_completion";
  body["created"] = answer_.created;
  body["model"] = answer_.model;
  body["choices"] = std::move(choices);
  body["usage"] = final_usage(returned);
  exchange_->respond(200, std::string(kJson), body.dump(), answer_.headers);
  done_ = true;
}

// Writes what is pending once the stream has begun; ends it after the last chunk.
void Generation::flush_locked() {
  if (!begun_) return;
  if (!pending_.empty()) exchange_->write(std::move(pending_));
  pending_.clear();
  if (done_ && !cut_) exchange_->finish();
}

void Generation::cut_locked() {
  cut_ = true;
  done_ = true;
  if (!begun_) return;  // all_submitted() begins the stream, then cuts it
  flush_locked();
  exchange_->abort(/*reset=*/false);
}

}  // namespace kvmock
