// The forward pass against Hugging Face transformers' float64 logits, for every fixture
// model and every container it can reach aero in.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "aero/engine/session.h"
#include "engine/hf_reference.h"
#include "test_support.h"

namespace aero::test {
namespace {

float max_abs(std::span<const float> v) {
  float m = 0;
  for (float x : v) m = std::max(m, std::fabs(x));
  return m;
}

float max_abs_diff(std::span<const float> a, std::span<const float> b) {
  float m = 0;
  for (std::size_t i = 0; i < a.size(); ++i) m = std::max(m, std::fabs(a[i] - b[i]));
  return m;
}

std::int32_t argmax(std::span<const float> v) {
  return static_cast<std::int32_t>(std::max_element(v.begin(), v.end()) - v.begin());
}

class Forward : public ::testing::TestWithParam<std::string> {};

TEST_P(Forward, LogitsEqualTransformers) {
  AERO_REQUIRE_SHARED(shared);
  const auto dir = shared / "fixtures/hf" / GetParam();
  const auto ref = HfReference::load(dir);
  auto model = engine::Model::open(dir);
  auto cpu = backend::make_cpu_backend(2);
  engine::Session session(*model, *cpu, {.kv_type = backend::KvType::F32});
  const auto logits = session.eval(ref.input_ids, /*all_logits=*/true);
  ASSERT_EQ(logits.size(), ref.logits.size());
  const float tolerance = 1e-4f * max_abs(ref.logits);
  const float diff = max_abs_diff(logits, ref.logits);
  RecordProperty("relative_error", fmt::format("{:.3g}", diff / max_abs(ref.logits)));
  EXPECT_LE(diff, tolerance);
}

TEST_P(Forward, GreedyContinuationEqualsTransformers) {
  AERO_REQUIRE_SHARED(shared);
  const auto dir = shared / "fixtures/hf" / GetParam();
  const auto ref = HfReference::load(dir);
  auto model = engine::Model::open(dir);
  auto cpu = backend::make_cpu_backend(2);
  engine::Session session(*model, *cpu, {.kv_type = backend::KvType::F32});
  std::vector<std::int32_t> ids = ref.prompt_ids;
  auto logits = session.eval(ids);
  while (ids.size() < ref.greedy_ids.size()) {
    ids.push_back(argmax(logits));
    logits = session.eval(std::span(ids).last(1));
  }
  EXPECT_EQ(ids, ref.greedy_ids);
}

// Token by token through the KV cache gives what one pass over the sequence gives.
TEST_P(Forward, IncrementalDecodingEqualsOnePass) {
  AERO_REQUIRE_SHARED(shared);
  const auto dir = shared / "fixtures/hf" / GetParam();
  const auto ref = HfReference::load(dir);
  auto model = engine::Model::open(dir);
  auto cpu = backend::make_cpu_backend(2);
  engine::Session whole(*model, *cpu, {.kv_type = backend::KvType::F32});
  const auto all = whole.eval(ref.input_ids, true);
  const std::vector<float> expected(all.begin(), all.end());
  engine::Session stepwise(*model, *cpu, {.kv_type = backend::KvType::F32});
  for (std::size_t t = 0; t < ref.input_ids.size(); ++t) {
    const auto logits = stepwise.eval(std::span(ref.input_ids).subspan(t, 1));
    const std::span<const float> row(expected.data() + t * ref.vocab, static_cast<std::size_t>(ref.vocab));
    ASSERT_LE(max_abs_diff(logits, row), 1e-5f * max_abs(row)) << "position " << t;
  }
}

// The f16 cache rounds keys and values to 11 significant bits: close, not equal.
TEST_P(Forward, HalfPrecisionCacheStaysClose) {
  AERO_REQUIRE_SHARED(shared);
  const auto dir = shared / "fixtures/hf" / GetParam();
  const auto ref = HfReference::load(dir);
  auto model = engine::Model::open(dir);
  auto cpu = backend::make_cpu_backend(2);
  engine::Session session(*model, *cpu, {.kv_type = backend::KvType::F16});
  const auto logits = session.eval(ref.input_ids, true);
  const float diff = max_abs_diff(logits, ref.logits);
  RecordProperty("relative_error", fmt::format("{:.3g}", diff / max_abs(ref.logits)));
  EXPECT_LE(diff, 2e-3f * max_abs(ref.logits));
}

INSTANTIATE_TEST_SUITE_P(HfFixtures, Forward, ::testing::ValuesIn(hf_fixture_models()),
                         [](const auto& info) {
                           std::string n = info.param;
                           std::replace(n.begin(), n.end(), '-', '_');
                           return n;
                         });

}  // namespace
}  // namespace aero::test
