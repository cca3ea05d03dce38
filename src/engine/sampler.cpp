#include "aero/engine/sampler.h"

#include <algorithm>
#include <cmath>
#include <unordered_map>

#include "aero/error.h"

namespace aero::engine {

void SamplingParams::validate() const {
  if (!std::isfinite(temperature) || temperature < 0) fail("temperature must be 0 or more (got {})", temperature);
  if (top_k < 0) fail("top-k must be 0 (off) or more (got {})", top_k);
  if (!(top_p > 0 && top_p <= 1)) fail("top-p must be in (0, 1] (got {})", top_p);
  if (!(min_p >= 0 && min_p <= 1)) fail("min-p must be in [0, 1] (got {})", min_p);
  if (!(repeat_penalty > 0) || !std::isfinite(repeat_penalty)) fail("repeat penalty must be positive (got {})", repeat_penalty);
  if (!std::isfinite(presence_penalty) || !std::isfinite(frequency_penalty)) fail("penalties must be finite numbers");
  if (repeat_last_n < -1) fail("repeat-last-n must be -1 (whole context), 0 (off) or more (got {})", repeat_last_n);
}

Sampler::Sampler(const SamplingParams& params) : params_(params) {
  params_.validate();
  seed_ = params.seed == 0xFFFFFFFF ? std::random_device{}() : params.seed;
  rng_.seed(seed_);
}

std::int32_t Sampler::sample(std::span<const float> logits, std::span<const std::int32_t> history) {
  const auto& p = params_;
  candidates_.resize(logits.size());
  for (std::size_t i = 0; i < logits.size(); ++i) candidates_[i] = {static_cast<std::int32_t>(i), logits[i], 0.0f};

  // Penalties over the last repeat_last_n tokens (llama.cpp's formula).
  const bool penalize = p.repeat_penalty != 1.0f || p.presence_penalty != 0.0f || p.frequency_penalty != 0.0f;
  if (penalize && p.repeat_last_n != 0) {
    const std::size_t window = p.repeat_last_n < 0 ? history.size() : std::min<std::size_t>(history.size(), p.repeat_last_n);
    std::unordered_map<std::int32_t, int> counts;
    for (std::int32_t id : history.last(window)) ++counts[id];
    for (const auto& [id, count] : counts) {
      if (id < 0 || static_cast<std::size_t>(id) >= candidates_.size()) continue;
      float& l = candidates_[static_cast<std::size_t>(id)].logit;
      l = l > 0 ? l / p.repeat_penalty : l * p.repeat_penalty;
      l -= static_cast<float>(count) * p.frequency_penalty + p.presence_penalty;
    }
  }

  auto by_logit = [](const Candidate& a, const Candidate& b) { return a.logit > b.logit || (a.logit == b.logit && a.id < b.id); };
  if (p.greedy()) return std::min_element(candidates_.begin(), candidates_.end(), by_logit)->id;

  std::size_t keep = candidates_.size();
  if (p.top_k > 0 && static_cast<std::size_t>(p.top_k) < keep) keep = static_cast<std::size_t>(p.top_k);
  std::partial_sort(candidates_.begin(), candidates_.begin() + static_cast<std::ptrdiff_t>(keep), candidates_.end(), by_logit);
  candidates_.resize(keep);

  auto softmax = [&](float temperature) {
    const float max = candidates_.front().logit;
    double sum = 0;
    for (auto& c : candidates_) sum += (c.p = std::exp((c.logit - max) / temperature));
    for (auto& c : candidates_) c.p = static_cast<float>(c.p / sum);
  };
  softmax(1.0f);
  if (p.top_p < 1.0f) {  // the smallest prefix whose probability reaches top_p
    double cumulative = 0;
    std::size_t n = 0;
    while (n < candidates_.size() && cumulative < p.top_p) cumulative += candidates_[n++].p;
    candidates_.resize(std::max<std::size_t>(n, 1));
  }
  if (p.min_p > 0.0f) {
    const float floor = p.min_p * candidates_.front().p;
    std::size_t n = 1;
    while (n < candidates_.size() && candidates_[n].p >= floor) ++n;
    candidates_.resize(n);
  }
  softmax(p.temperature);
  std::uniform_real_distribution<double> uniform(0.0, 1.0);
  double r = uniform(rng_);
  for (const auto& c : candidates_) {
    if ((r -= c.p) <= 0) return c.id;
  }
  return candidates_.back().id;
}

}  // namespace aero::engine
