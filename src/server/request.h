// The request bodies `aero serve` accepts, parsed and checked before anything reaches the
// scheduler: OpenAI's chat completions and completions, Ollama's chat and generate. Every
// problem is an ApiError carrying the HTTP status and OpenAI's error fields.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "aero/chat/template.h"
#include "aero/engine/sampler.h"
#include "aero/json.h"
#include "aero/tokenizer/tokenizer.h"

namespace aero::server {

class ApiError : public std::runtime_error {
 public:
  ApiError(int status, const std::string& message, std::string type = "invalid_request_error", std::string param = {},
           std::string code = {})
      : std::runtime_error(message), status(status), type(std::move(type)), param(std::move(param)), code(std::move(code)) {}
  int status;
  std::string type, param, code;
};

// OpenAI's error body: {"error": {"message", "type", "param", "code"}}.
Json openai_error(const ApiError& e);
// JSON text that never throws on invalid UTF-8 in strings (generated text may hold any bytes).
std::string dump(const Json& j);

enum class Endpoint { ChatCompletions, Completions, OllamaChat, OllamaGenerate };
bool is_ollama(Endpoint e);

struct ApiRequest {
  Endpoint endpoint = Endpoint::ChatCompletions;
  std::string model;
  Json messages = Json::array();  // chat: [{"role", "content"}], content as text
  std::string prompt;             // completions, generate
  std::vector<std::int32_t> prompt_ids;  // completions: a prompt given as token ids
  std::string system;             // generate: system message
  bool raw = false;               // generate: the prompt as is, no chat template
  engine::SamplingParams sampling;
  std::int64_t max_tokens = -1;   // -1: until end of generation or a full context
  std::vector<std::string> stop;
  bool stream = false;
  bool include_usage = false;     // stream_options.include_usage
  int logprobs = -1;              // -1: none; else how many alternatives per token
};

// Throws ApiError (status 400) naming the first problem: malformed JSON, a field of the
// wrong type or out of range, an unknown field (OpenAI endpoints), an unsupported option.
ApiRequest parse_request(Endpoint endpoint, std::string_view body);

// The prompt's token ids: chat messages through the model's chat template, text as
// llama.cpp tokenizes a prompt. Throws ApiError for a template that refuses the messages.
std::vector<std::int32_t> prompt_tokens(const ApiRequest& request, const tokenizer::Tokenizer& tok,
                                        const chat::Template& chat_template);

}  // namespace aero::server
