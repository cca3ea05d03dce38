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

TokenGenerator::TokenGenerator(Session& session, Sampler& sampler, std::span<const std::int32_t> prompt,
                               GenerateOptions options)
    : session_(session), sampler_(sampler), prompt_(prompt), options_(std::move(options)) {
  if (prompt.empty()) fail("the prompt is empty: generation needs at least one token");
  if (options_.max_tokens < 0) fail("the number of tokens to generate must be 0 or more");
}

std::optional<std::int32_t> TokenGenerator::next() {
  if (done_) return std::nullopt;
  if (!started_) {
    started_ = true;
    history_.assign(prompt_.begin(), prompt_.end());
    const auto start = std::chrono::steady_clock::now();
    logits_ = session_.eval(prompt_);
    stats_.prompt_tokens = static_cast<std::int64_t>(prompt_.size());
    stats_.prompt_seconds = seconds_since(start);
  } else {
    // No logits are needed after the last token.
    if (stats_.generated_tokens >= options_.max_tokens || session_.position() >= session_.context()) {
      done_ = true;
      return std::nullopt;
    }
    const auto start = std::chrono::steady_clock::now();
    logits_ = session_.eval(std::span(&history_.back(), 1));
    stats_.generation_seconds += seconds_since(start);
  }
  if (stats_.generated_tokens >= options_.max_tokens) {
    done_ = true;
    return std::nullopt;
  }
  const auto start = std::chrono::steady_clock::now();
  const std::int32_t token = sampler_.sample(logits_, history_);
  stats_.generation_seconds += seconds_since(start);
  const auto& eos = session_.model().spec().eos_ids;
  const bool end = std::ranges::find(eos, token) != eos.end() ||
                   std::ranges::find(options_.extra_stop_ids, token) != options_.extra_stop_ids.end();
  if (end && options_.stop_at_eos) {
    stats_.stopped_by_eos = true;
    done_ = true;
    return std::nullopt;
  }
  history_.push_back(token);
  ++stats_.generated_tokens;
  return token;
}

GenerationStats generate(Session& session, Sampler& sampler, std::span<const std::int32_t> prompt,
                         const GenerateOptions& options, const std::function<bool(std::int32_t)>& on_token) {
  TokenGenerator generator(session, sampler, prompt, options);
  while (const auto token = generator.next())
    if (!on_token(*token)) break;
  return generator.stats();
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
