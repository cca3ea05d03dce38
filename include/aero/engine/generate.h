// The generation loop shared by every front end: the prompt in one batched pass, then one
// token at a time until a stop condition, each token handed to the caller as it comes.
#pragma once

#include <cstdint>
#include <functional>
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

// Runs `prompt` (appended to whatever the session holds) and samples up to max_tokens.
// `on_token` sees each new token and may return false to stop (stop strings, Ctrl-C); the
// token that ends generation by EOS is not passed on.
GenerationStats generate(Session& session, Sampler& sampler, std::span<const std::int32_t> prompt,
                         const GenerateOptions& options, const std::function<bool(std::int32_t)>& on_token);

// "1,5,9" → {1, 5, 9}; throws aero::Error on anything else.
std::vector<std::int32_t> parse_token_ids(std::string_view text);

}  // namespace aero::engine
