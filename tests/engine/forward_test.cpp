// The forward pass against Hugging Face transformers' float64 logits, for every fixture
// model and every container it can reach aero in.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "aero/convert/convert.h"
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

// The fixture model as it reaches aero: the HF folder itself, or converted by aero to .aero
// or GGUF (GGUF llama weights carry llama.cpp's permuted Q/K rows and interleaved rotary).
struct Case {
  std::string model, container;
};

std::filesystem::path model_path(const std::filesystem::path& shared, const Case& c) {
  const auto dir = shared / "fixtures/hf" / c.model;
  if (c.container == "hf") return dir;
  static ScratchDir scratch;
  const auto out = scratch / (c.model + "." + c.container);
  if (!std::filesystem::exists(out))
    convert::convert(dir, out, c.container == "gguf" ? convert::OutputKind::Gguf : convert::OutputKind::Aero, {});
  return out;
}

class Forward : public ::testing::TestWithParam<Case> {
 protected:
  std::filesystem::path dir(const std::filesystem::path& shared) const { return shared / "fixtures/hf" / GetParam().model; }
  std::unique_ptr<engine::Model> open(const std::filesystem::path& shared) const {
    return engine::Model::open(model_path(shared, GetParam()));
  }
  // Logits of every input position in one pass, with the given KV cache type.
  std::vector<float> all_logits(const std::filesystem::path& shared, const std::vector<std::int32_t>& ids,
                                backend::KvType kv) const {
    auto model = open(shared);
    auto cpu = backend::make_cpu_backend(2);
    engine::Session session(*model, *cpu, {.kv_type = kv});
    const auto logits = session.eval(ids, true);
    return {logits.begin(), logits.end()};
  }
};

TEST_P(Forward, LogitsEqualTransformers) {
  AERO_REQUIRE_SHARED(shared);
  const auto ref = HfReference::load(dir(shared));
  const auto logits = all_logits(shared, ref.input_ids, backend::KvType::F32);
  ASSERT_EQ(logits.size(), ref.logits.size());
  const float tolerance = 1e-4f * max_abs(ref.logits);
  const float diff = max_abs_diff(logits, ref.logits);
  RecordProperty("relative_error", fmt::format("{:.3g}", diff / max_abs(ref.logits)));
  EXPECT_LE(diff, tolerance);
}

TEST_P(Forward, GreedyContinuationEqualsTransformers) {
  AERO_REQUIRE_SHARED(shared);
  const auto ref = HfReference::load(dir(shared));
  auto model = open(shared);
  auto cpu = backend::make_cpu_backend(2);
  engine::Session session(*model, *cpu, {.kv_type = backend::KvType::F32});
  EXPECT_EQ(greedy_ids(session, ref.prompt_ids, ref.greedy_ids.size()), ref.greedy_ids);
}

// Token by token through the KV cache gives what one pass over the sequence gives.
TEST_P(Forward, IncrementalDecodingEqualsOnePass) {
  AERO_REQUIRE_SHARED(shared);
  const auto ref = HfReference::load(dir(shared));
  const auto expected = all_logits(shared, ref.input_ids, backend::KvType::F32);
  auto model = open(shared);
  auto cpu = backend::make_cpu_backend(2);
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
  const auto ref = HfReference::load(dir(shared));
  const auto logits = all_logits(shared, ref.input_ids, backend::KvType::F16);
  const float diff = max_abs_diff(logits, ref.logits);
  RecordProperty("relative_error", fmt::format("{:.3g}", diff / max_abs(ref.logits)));
  EXPECT_LE(diff, 2e-3f * max_abs(ref.logits));
}

// The q8_0 cache (keys and values in 8 bits, queries rounded to 8 bits for the dot): close
// (qwen3 reaches 4.3e-3, gemma3, whose logits are small, 1.45e-2), and on every kernel set (AVX-512's has no Q8_0 row kernel of its own
// for it). Its rows are whole 32-element blocks: models with smaller heads refuse it.
TEST_P(Forward, Q8CacheStaysClose) {
  AERO_REQUIRE_SHARED(shared);
  if (open(shared)->spec().head_dim % 32 != 0) GTEST_SKIP() << "heads of this model are not whole q8_0 blocks";
  const auto ref = HfReference::load(dir(shared));
  const auto logits = all_logits(shared, ref.input_ids, backend::KvType::Q8_0);
  const float diff = max_abs_diff(logits, ref.logits);
  RecordProperty("relative_error", fmt::format("{:.3g}", diff / max_abs(ref.logits)));
  // A mixture of experts amplifies the error (qwen3moe reaches 3.3e-2): which experts a token
  // takes is not continuous in the router's input, and the cache's error reaches the router.
  const bool moe = open(shared)->spec().moe();
  EXPECT_LE(diff, (moe ? 5e-2f : 2e-2f) * max_abs(ref.logits));
}

std::vector<Case> cases() {
  std::vector<Case> all;
  for (const auto& m : hf_fixture_models())
    for (const char* c : {"hf", "aero", "gguf"}) all.push_back({m, c});
  return all;
}

INSTANTIATE_TEST_SUITE_P(HfFixtures, Forward, ::testing::ValuesIn(cases()), [](const auto& info) {
  std::string n = info.param.model + "_" + info.param.container;
  std::replace(n.begin(), n.end(), '-', '_');
  return n;
});

}  // namespace
}  // namespace aero::test
