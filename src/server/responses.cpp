#include "server/responses.h"

#include <chrono>
#include <ctime>
#include <random>

#include <fmt/chrono.h>

namespace aero::server {

namespace {
std::int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}
std::string iso_now() {
  const auto now = std::chrono::system_clock::now();
  const std::time_t t = std::chrono::system_clock::to_time_t(now);
  const auto micros = std::chrono::duration_cast<std::chrono::microseconds>(now.time_since_epoch()).count() % 1000000;
  return fmt::format("{:%Y-%m-%dT%H:%M:%S}.{:06d}Z", fmt::gmtime(t), micros);
}
std::int64_t nanos(double seconds) { return static_cast<std::int64_t>(seconds * 1e9); }
std::string sse(const Json& j) { return "data: " + dump(j) + "\n\n"; }
const char* const kDone = "data: [DONE]\n\n";
}  // namespace

std::string new_response_id(const char* prefix) {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  return fmt::format("{}-{:016x}{:08x}", prefix, rng(), static_cast<std::uint32_t>(rng()));
}

ResponseWriter::ResponseWriter(const ApiRequest& request, std::string id, std::string model,
                               const tokenizer::Tokenizer& tok)
    : request_(request), id_(std::move(id)), model_(std::move(model)), tok_(tok), created_(unix_now()) {}

const char* ResponseWriter::content_type() const {
  if (is_ollama(request_.endpoint)) return request_.stream ? "application/x-ndjson" : "application/json";
  return request_.stream ? "text/event-stream" : "application/json";
}

Json ResponseWriter::usage_json(const Usage& u) const {
  return {{"prompt_tokens", u.prompt_tokens},
          {"completion_tokens", u.completion_tokens},
          {"total_tokens", u.prompt_tokens + u.completion_tokens},
          {"prompt_tokens_details", {{"cached_tokens", u.cached_tokens}}}};
}

Json ResponseWriter::logprobs_json(const std::vector<TokenLogprob>& lps) const {
  auto bytes = [](const std::string& s) {
    Json b = Json::array();
    for (unsigned char c : s) b.push_back(c);
    return b;
  };
  if (request_.endpoint == Endpoint::ChatCompletions) {
    Json content = Json::array();
    for (const auto& lp : lps) {
      const std::string piece = tok_.piece(lp.token);
      Json top = Json::array();
      for (const auto& [id, l] : lp.top) {
        const std::string p = tok_.piece(id);
        top.push_back({{"token", p}, {"logprob", l}, {"bytes", bytes(p)}});
      }
      content.push_back({{"token", piece}, {"logprob", lp.logprob}, {"bytes", bytes(piece)}, {"top_logprobs", top}});
    }
    return {{"content", content}};
  }
  // The completions endpoint's older layout: parallel arrays.
  Json tokens = Json::array(), token_logprobs = Json::array(), top = Json::array(), offsets = Json::array();
  std::size_t offset = text_.size();
  for (const auto& lp : lps) {
    const std::string piece = tok_.piece(lp.token);
    tokens.push_back(piece);
    token_logprobs.push_back(lp.logprob);
    Json alternatives = Json::object();
    for (const auto& [id, l] : lp.top) alternatives[tok_.piece(id)] = l;
    top.push_back(alternatives);
    offsets.push_back(offset);
    offset += piece.size();
  }
  return {{"tokens", tokens}, {"token_logprobs", token_logprobs}, {"top_logprobs", top}, {"text_offset", offsets}};
}

std::string ResponseWriter::chunk(Json delta_or_text, const Json& finish_reason, const std::vector<TokenLogprob>& logprobs) {
  const bool chat = request_.endpoint == Endpoint::ChatCompletions;
  Json choice = {{"index", 0}};
  choice[chat ? "delta" : "text"] = std::move(delta_or_text);
  choice["logprobs"] = request_.logprobs >= 0 && !logprobs.empty() ? logprobs_json(logprobs) : Json();
  choice["finish_reason"] = finish_reason;
  Json j = {{"id", id_}, {"object", chat ? "chat.completion.chunk" : "text_completion"}, {"created", created_},
            {"model", model_}, {"choices", Json::array({choice})}};
  if (request_.include_usage) j["usage"] = nullptr;
  return sse(j);
}

std::string ResponseWriter::ollama_line(const std::string& text, const JobUpdate* last) {
  Json j = {{"model", model_}, {"created_at", iso_now()}};
  if (request_.endpoint == Endpoint::OllamaChat) j["message"] = {{"role", "assistant"}, {"content", text}};
  else j["response"] = text;
  j["done"] = last != nullptr;
  if (last) {
    const Usage& u = last->usage;
    j["done_reason"] = finish_reason_name(last->reason);
    j["total_duration"] = nanos(u.queued_seconds + u.prompt_seconds + u.generation_seconds);
    j["load_duration"] = 0;
    j["prompt_eval_count"] = u.prompt_tokens;
    j["prompt_eval_duration"] = nanos(u.prompt_seconds);
    j["eval_count"] = u.completion_tokens;
    j["eval_duration"] = nanos(u.generation_seconds);
  }
  return dump(j) + "\n";
}

std::string ResponseWriter::final_body(const JobUpdate& last) {
  if (is_ollama(request_.endpoint)) return ollama_line(text_, &last);
  const bool chat = request_.endpoint == Endpoint::ChatCompletions;
  Json choice = {{"index", 0}};
  if (chat) choice["message"] = {{"role", "assistant"}, {"content", text_}};
  else choice["text"] = text_;
  text_.clear();  // the completions layout counts offsets from the text before each token
  choice["logprobs"] = request_.logprobs >= 0 ? logprobs_json(logprobs_) : Json();
  choice["finish_reason"] = finish_reason_name(last.reason);
  return dump({{"id", id_}, {"object", chat ? "chat.completion" : "text_completion"}, {"created", created_},
               {"model", model_}, {"choices", Json::array({choice})}, {"usage", usage_json(last.usage)}});
}

std::string ResponseWriter::write(const JobUpdate& update) {
  const bool failed = update.finished && (update.reason == FinishReason::Error || update.reason == FinishReason::Cancelled);
  const std::string error = update.reason == FinishReason::Error ? update.error : "the server stopped this request";
  if (!request_.stream) {
    text_ += update.text;
    logprobs_.insert(logprobs_.end(), update.logprobs.begin(), update.logprobs.end());
    if (!update.finished) return {};
    if (failed)
      return is_ollama(request_.endpoint) ? dump({{"error", error}}) : dump(openai_error(ApiError(500, error, "server_error")));
    return final_body(update);
  }

  std::string out;
  if (is_ollama(request_.endpoint)) {
    if (!update.text.empty()) out += ollama_line(update.text, nullptr);
    if (update.finished) out += failed ? dump({{"error", error}}) + "\n" : ollama_line("", &update);
    return out;
  }
  const bool chat = request_.endpoint == Endpoint::ChatCompletions;
  if (chat && !started_) out += chunk({{"role", "assistant"}, {"content", ""}}, nullptr, {});
  started_ = true;
  if (!update.text.empty() || !update.logprobs.empty()) {
    out += chunk(chat ? Json{{"content", update.text}} : Json(update.text), nullptr, update.logprobs);
    text_ += update.text;
  }
  if (!update.finished) return out;
  if (failed) return out + sse(openai_error(ApiError(500, error, "server_error"))) + kDone;
  out += chunk(chat ? Json::object() : Json(""), finish_reason_name(update.reason), {});
  if (request_.include_usage)
    out += sse({{"id", id_}, {"object", chat ? "chat.completion.chunk" : "text_completion"}, {"created", created_},
                {"model", model_}, {"choices", Json::array()}, {"usage", usage_json(update.usage)}});
  return out + kDone;
}

}  // namespace aero::server
