#include "aero/engine/generate.h"

#include <algorithm>
#include <charconv>
#include <chrono>

#include "aero/error.h"

namespace aero::engine {
namespace {

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

GenerationStats generate(Session& session, Sampler& sampler, std::span<const std::int32_t> prompt,
                         const GenerateOptions& options, const std::function<bool(std::int32_t)>& on_token) {
  if (prompt.empty()) fail("the prompt is empty: generation needs at least one token");
  if (options.max_tokens < 0) fail("the number of tokens to generate must be 0 or more");
  const auto& spec = session.model().spec();
  GenerationStats stats;
  std::vector<std::int32_t> history(prompt.begin(), prompt.end());

  auto start = std::chrono::steady_clock::now();
  auto logits = session.eval(prompt);
  stats.prompt_tokens = static_cast<std::int64_t>(prompt.size());
  stats.prompt_seconds = seconds_since(start);

  start = std::chrono::steady_clock::now();
  for (std::int64_t i = 0; i < options.max_tokens; ++i) {
    const std::int32_t token = sampler.sample(logits, history);
    const bool eos = std::ranges::find(spec.eos_ids, token) != spec.eos_ids.end() ||
                     std::ranges::find(options.extra_stop_ids, token) != options.extra_stop_ids.end();
    if (eos && options.stop_at_eos) {
      stats.stopped_by_eos = true;
      break;
    }
    history.push_back(token);
    ++stats.generated_tokens;
    if (!on_token(token)) break;
    if (i + 1 == options.max_tokens) break;  // no logits needed after the last token
    if (session.position() >= session.context()) break;
    logits = session.eval(std::span(&token, 1));
  }
  stats.generation_seconds = seconds_since(start);
  return stats;
}

std::vector<std::int32_t> parse_token_ids(std::string_view text) {
  std::vector<std::int32_t> ids;
  std::size_t pos = 0;
  while (pos <= text.size()) {
    const std::size_t comma = std::min(text.find(',', pos), text.size());
    std::string_view part = text.substr(pos, comma - pos);
    while (!part.empty() && part.front() == ' ') part.remove_prefix(1);
    while (!part.empty() && part.back() == ' ') part.remove_suffix(1);
    std::int32_t id = 0;
    auto [end, ec] = std::from_chars(part.data(), part.data() + part.size(), id);
    if (part.empty() || ec != std::errc() || end != part.data() + part.size() || id < 0)
      fail("token ids must be non-negative integers separated by commas (got '{}')", text);
    ids.push_back(id);
    pos = comma + 1;
  }
  return ids;
}

}  // namespace aero::engine
