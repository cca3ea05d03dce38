// The sampler against hand-computed distributions.
#include <gtest/gtest.h>

#include <cmath>
#include <map>

#include "aero/engine/sampler.h"
#include "aero/error.h"

namespace aero::engine {
namespace {

std::vector<float> log_probs(std::vector<double> p) {
  std::vector<float> l;
  for (double x : p) l.push_back(static_cast<float>(std::log(x)));
  return l;
}

std::map<int, int> histogram(SamplingParams params, const std::vector<float>& logits, int draws) {
  Sampler s(params);
  std::map<int, int> h;
  for (int i = 0; i < draws; ++i) ++h[s.sample(logits, {})];
  return h;
}

SamplingParams unfiltered(float temperature = 1.0f) {
  return {.temperature = temperature, .top_k = 0, .top_p = 1.0f, .min_p = 0.0f, .seed = 7};
}

TEST(Sampler, GreedyTakesTheLargestLogitAndTheLowestIdOnTies) {
  SamplingParams p{.temperature = 0};
  Sampler s(p);
  EXPECT_EQ(s.sample(std::vector<float>{0.1f, 3.0f, -2.0f, 3.0f}, {}), 1);
}

TEST(Sampler, TemperatureOneDrawsFromTheSoftmax) {
  const auto h = histogram(unfiltered(), log_probs({0.25, 0.75}), 20000);
  EXPECT_NEAR(h.at(1) / 20000.0, 0.75, 0.015);
}

TEST(Sampler, TemperatureSharpens) {
  // p ∝ (0.25, 0.75)^(1/0.5) = (1, 9) / 10
  const auto h = histogram(unfiltered(0.5f), log_probs({0.25, 0.75}), 20000);
  EXPECT_NEAR(h.at(1) / 20000.0, 0.9, 0.01);
}

TEST(Sampler, TopPKeepsTheSmallestNucleus) {
  auto p = unfiltered();
  p.top_p = 0.75f;  // 0.5 + 0.3 reaches it: ids 0 and 1 renormalized to 0.625 / 0.375
  const auto h = histogram(p, log_probs({0.5, 0.3, 0.15, 0.05}), 20000);
  EXPECT_EQ(h.size(), 2u);
  EXPECT_NEAR(h.at(0) / 20000.0, 0.625, 0.015);
}

TEST(Sampler, MinPDropsTokensBelowAFractionOfTheBest) {
  auto p = unfiltered();
  p.min_p = 0.5f;  // keeps p >= 0.25: ids 0 and 1
  const auto h = histogram(p, log_probs({0.5, 0.3, 0.15, 0.05}), 5000);
  EXPECT_EQ(h.size(), 2u);
}

TEST(Sampler, TopKKeepsTheKLargest) {
  auto p = unfiltered();
  p.top_k = 1;
  const auto h = histogram(p, log_probs({0.2, 0.1, 0.6, 0.1}), 1000);
  ASSERT_EQ(h.size(), 1u);
  EXPECT_EQ(h.begin()->first, 2);
}

TEST(Sampler, SameSeedSameTokens) {
  const auto logits = log_probs({0.1, 0.2, 0.3, 0.4});
  Sampler a(unfiltered()), b(unfiltered());
  auto other = unfiltered();
  other.seed = 8;
  Sampler c(other);
  std::vector<int> sa, sb, sc;
  for (int i = 0; i < 64; ++i) {
    sa.push_back(a.sample(logits, {}));
    sb.push_back(b.sample(logits, {}));
    sc.push_back(c.sample(logits, {}));
  }
  EXPECT_EQ(sa, sb);
  EXPECT_NE(sa, sc);
}

TEST(Sampler, RepeatPenaltyDividesPositiveAndMultipliesNegativeLogits) {
  SamplingParams p{.temperature = 0, .repeat_penalty = 1.5f};
  Sampler s(p);
  const std::vector<float> logits{2.0f, -1.0f, 1.9f};
  const std::vector<std::int32_t> recent{0};
  EXPECT_EQ(s.sample(logits, recent), 2);  // 2.0 / 1.5 = 1.33 < 1.9
  const std::vector<float> negative{-1.0f, -1.2f};
  const std::vector<std::int32_t> recent0{0};
  EXPECT_EQ(s.sample(negative, recent0), 1);  // -1.0 * 1.5 = -1.5 < -1.2
}

TEST(Sampler, FrequencyAndPresencePenaltiesSubtract) {
  const std::vector<float> logits{1.0f, 0.9f};
  const std::vector<std::int32_t> history{0, 0};
  EXPECT_EQ(Sampler({.temperature = 0, .frequency_penalty = 0.1f}).sample(logits, history), 1);   // 1.0 - 0.2
  EXPECT_EQ(Sampler({.temperature = 0, .frequency_penalty = 0.04f}).sample(logits, history), 0);  // 1.0 - 0.08
  EXPECT_EQ(Sampler({.temperature = 0, .presence_penalty = 0.15f}).sample(logits, history), 1);   // once: 0.85
  // Only the last repeat_last_n tokens count.
  const std::vector<std::int32_t> old{0, 1};
  EXPECT_EQ(Sampler({.temperature = 0, .presence_penalty = 0.15f, .repeat_last_n = 1}).sample(logits, old), 0);
}

TEST(Sampler, InvalidValuesAreRefused) {
  EXPECT_THROW(Sampler({.temperature = -1}), Error);
  EXPECT_THROW(Sampler({.top_k = -2}), Error);
  EXPECT_THROW(Sampler({.top_p = 0}), Error);
  EXPECT_THROW(Sampler({.top_p = 1.5f}), Error);
  EXPECT_THROW(Sampler({.min_p = -0.1f}), Error);
  EXPECT_THROW(Sampler({.repeat_penalty = 0}), Error);
  EXPECT_THROW(Sampler({.temperature = NAN}), Error);
}

}  // namespace
}  // namespace aero::engine
