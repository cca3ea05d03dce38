// HTTP request bodies as `aero serve` handles them: any bytes, for each endpoint, either parse
// into a request or give an ApiError with a 4xx status; a parsed request renders its prompt
// (chat template, tokenizer) and its responses without failing. The first byte picks the endpoint.
#include <cstdlib>
#include <filesystem>
#include <memory>

#include "aero/engine/chat.h"
#include "server/request.h"
#include "server/responses.h"

namespace {

const aero::tokenizer::Tokenizer* tokenizer() {
  static std::unique_ptr<aero::tokenizer::Tokenizer> tok = []() -> std::unique_ptr<aero::tokenizer::Tokenizer> {
    const char* env = std::getenv("AERO_SHARED");
    const std::filesystem::path p = std::filesystem::path(env ? env : AERO_SHARED_DIR) / "fixtures/tokenizer/ggml-vocab-llama-spm.gguf";
    if (!std::filesystem::exists(p)) return nullptr;
    return std::make_unique<aero::tokenizer::Tokenizer>(aero::tokenizer::Tokenizer::load(p));
  }();
  return tok.get();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace aero::server;
  if (size == 0) return 0;
  const Endpoint endpoints[] = {Endpoint::ChatCompletions, Endpoint::Completions, Endpoint::OllamaChat,
                                Endpoint::OllamaGenerate};
  const Endpoint endpoint = endpoints[data[0] % 4];
  const std::string_view body(reinterpret_cast<const char*>(data) + 1, size - 1);
  ApiRequest request;
  try {
    request = parse_request(endpoint, body);
  } catch (const ApiError& e) {
    if (e.status < 400 || e.status >= 500) abort();
    (void)dump(openai_error(e));
    return 0;
  }
  const auto* tok = tokenizer();
  if (!tok) return 0;
  static const aero::chat::Template chatml = aero::engine::model_chat_template(*tok);
  try {
    (void)prompt_tokens(request, *tok, chatml);
  } catch (const ApiError& e) {
    if (e.status != 400) abort();
  }
  // The request's own text comes back as generated text: any bytes must serialize.
  ResponseWriter writer(request, "id", "model", *tok);
  JobUpdate update;
  update.text = std::string(body.substr(0, 64));
  update.tokens = {1, 2};
  update.logprobs = {{1, -0.5f, {{1, -0.5f}, {2, -1.0f}}}, {2, -0.25f, {}}};
  (void)writer.write(update);
  update.finished = true;
  update.reason = aero::server::FinishReason::Stop;
  (void)writer.write(update);
  return 0;
}
