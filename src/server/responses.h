// What each endpoint sends back, built from the scheduler's JobUpdates: OpenAI's objects and
// server-sent events (chat.completion[.chunk], text_completion), Ollama's JSON lines.
#pragma once

#include <cstdint>
#include <string>

#include "aero/json.h"
#include "aero/server/scheduler.h"
#include "server/request.h"

namespace aero::server {

class ResponseWriter {
 public:
  // `id`: the response's id; `model`: the name responses carry.
  ResponseWriter(const ApiRequest& request, std::string id, std::string model, const tokenizer::Tokenizer& tok);

  const char* content_type() const;
  // Streaming: bytes to send for what a take() returned (possibly nothing); once the update
  // is finished, they end the stream. Not streaming: nothing until finished, then the body.
  std::string write(const JobUpdate& update);

 private:
  std::string chunk(Json delta_or_text, const Json& finish_reason, const std::vector<TokenLogprob>& logprobs);
  Json logprobs_json(const std::vector<TokenLogprob>& lp) const;
  Json usage_json(const Usage& u) const;
  std::string final_body(const JobUpdate& last);
  std::string ollama_line(const std::string& text, const JobUpdate* last);

  const ApiRequest& request_;
  std::string id_, model_;
  const tokenizer::Tokenizer& tok_;
  std::int64_t created_;
  bool started_ = false;
  std::string text_;  // everything generated (non-streaming answers)
  std::vector<TokenLogprob> logprobs_;
};

// A fresh id such as "chatcmpl-5f0c…" (random, 24 hex digits).
std::string new_response_id(const char* prefix);

}  // namespace aero::server
