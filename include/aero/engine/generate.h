// The generation loop shared by every front end: the prompt in one batched pass, then one
// token at a time until a stop condition, each token handed to the caller as it comes.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <vector>

#include "aero/engine/sampler.h"
#include "aero/engine/session.h"

namespace aero::engine {

struct GenerateOptions {
  std::int64_t max_tokens = 128;
  bool stop_at_eos = true;                  // the model's end-of-generation ids end it
  std::vector<std::int32_t> extra_stop_ids;  // and these
};

struct GenerationStats {
  std::int64_t prompt_tokens = 0;
  double prompt_seconds = 0;
  std::int64_t generated_tokens = 0;
  double generation_seconds = 0;
  bool stopped_by_eos = false;
};

// Generation pulled one token at a time, for front ends that hand tokens out as they are asked
// for (a Python iterator, a server's stream) rather than through a callback; generate() is a
// loop over it. The session, sampler and prompt must outlive it.
class TokenGenerator {
 public:
  // Throws aero::Error for an empty prompt or a negative max_tokens.
  TokenGenerator(Session& session, Sampler& sampler, std::span<const std::int32_t> prompt, GenerateOptions options);
  // The next token, or nullopt once generation has ended (max_tokens, an end-of-generation id,
  // a full context). The prompt runs on the first call; a token's own forward pass runs only
  // when the token after it is asked for, so stopping early costs nothing.
  std::optional<std::int32_t> next();
  const GenerationStats& stats() const { return stats_; }
  bool done() const { return done_; }

 private:
  Session& session_;
  Sampler& sampler_;
  std::span<const std::int32_t> prompt_;
  GenerateOptions options_;
  GenerationStats stats_;
  std::vector<std::int32_t> history_;
  std::span<const float> logits_;
  bool started_ = false, done_ = false;
};

// Runs `prompt` (appended to whatever the session holds) and samples up to max_tokens.
// `on_token` sees each new token and may return false to stop (stop strings, Ctrl-C); the
// token that ends generation by EOS is not passed on.
GenerationStats generate(Session& session, Sampler& sampler, std::span<const std::int32_t> prompt,
                         const GenerateOptions& options, const std::function<bool(std::int32_t)>& on_token);

// "1,5,9" → {1, 5, 9}; throws aero::Error on anything else.
std::vector<std::int32_t> parse_token_ids(std::string_view text);

}  // namespace aero::engine
