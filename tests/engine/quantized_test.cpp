// Quantized models: aero computes with the blocks in place, quantizing activations to 8
// bits for the integer kernels. Its logits must equal those of the same model with the
// quantized weights decoded to f32, up to that activation rounding; against the original
// f32 model the differences are reported, not judged (random weights give flat logits).
#include <gtest/gtest.h>

#include <cmath>

#include <fmt/format.h>

#include "aero/convert/convert.h"
#include "aero/engine/session.h"
#include "aero/format/safetensors.h"
#include "aero/quant/types.h"
#include "engine/hf_reference.h"
#include "test_support.h"

namespace aero::test {
namespace {

struct Comparison {
  double relative_rmse = 0, top1_agreement = 0, mean_kl = 0;
};

Comparison compare(std::span<const float> got, std::span<const float> want, std::int64_t vocab) {
  Comparison c;
  double err = 0, norm = 0;
  for (std::size_t i = 0; i < got.size(); ++i) {
    err += (got[i] - want[i]) * (got[i] - want[i]);
    norm += want[i] * want[i];
  }
  c.relative_rmse = std::sqrt(err / norm);
  const std::size_t rows = got.size() / static_cast<std::size_t>(vocab);
  for (std::size_t r = 0; r < rows; ++r) {
    auto g = got.subspan(r * vocab, vocab), w = want.subspan(r * vocab, vocab);
    c.top1_agreement += std::max_element(g.begin(), g.end()) - g.begin() == std::max_element(w.begin(), w.end()) - w.begin();
    // KL(want ‖ got) of the softmax distributions.
    const double gm = *std::max_element(g.begin(), g.end()), wm = *std::max_element(w.begin(), w.end());
    double gs = 0, ws = 0;
    for (std::size_t i = 0; i < g.size(); ++i) gs += std::exp(g[i] - gm), ws += std::exp(w[i] - wm);
    double kl = 0;
    for (std::size_t i = 0; i < g.size(); ++i) {
      const double lw = w[i] - wm - std::log(ws), lg = g[i] - gm - std::log(gs);
      kl += std::exp(lw) * (lw - lg);
    }
    c.mean_kl += kl;
  }
  c.top1_agreement /= static_cast<double>(rows);
  c.mean_kl /= static_cast<double>(rows);
  return c;
}

std::vector<float> logits_of(const std::filesystem::path& model_path, const std::vector<std::int32_t>& ids) {
  auto model = engine::Model::open(model_path);
  auto cpu = backend::make_cpu_backend(2);
  engine::Session session(*model, *cpu, {.kv_type = backend::KvType::F32});
  auto l = session.eval(ids, true);
  return {l.begin(), l.end()};
}

// The quantized model with every tensor decoded to f32, as an HF folder.
std::filesystem::path decoded_copy(const std::filesystem::path& quantized, const std::filesystem::path& hf_dir,
                                   const std::filesystem::path& out_dir) {
  auto src = format::ModelSource::open(quantized);
  std::vector<std::vector<float>> storage;
  std::vector<format::SafetensorsTensorWrite> tensors;
  for (const auto& t : src->tensors()) {
    std::uint64_t n = 1;
    for (auto d : t.shape) n *= d;
    auto& values = storage.emplace_back(n);
    quant::decode_to_f32(*format::ggml_type_of(t.dtype, t.ggml_type), t.data, values);
    tensors.push_back({t.name, format::DType::F32, t.shape,
                       {reinterpret_cast<const std::uint8_t*>(values.data()), values.size() * 4}});
  }
  std::filesystem::create_directories(out_dir);
  format::write_safetensors(out_dir / "model.safetensors", tensors, Json::object());
  std::filesystem::copy_file(hf_dir / "config.json", out_dir / "config.json");
  return out_dir;
}

class Quantized : public ::testing::TestWithParam<std::tuple<std::string, std::string>> {};

TEST_P(Quantized, LogitsEqualTheDecodedModelUpToActivationRounding) {
  AERO_REQUIRE_SHARED(shared);
  const auto& [name, type_name] = GetParam();
  const auto hf = shared / "fixtures/hf" / name;
  const auto ref = HfReference::load(hf);
  ScratchDir scratch;
  const auto type = quant::type_traits_by_name(type_name)->type;
  const auto quantized = scratch / "q.aero";
  convert::quantize(hf, quantized, convert::OutputKind::Aero, type, {});

  const auto got = logits_of(quantized, ref.input_ids);
  const auto decoded = logits_of(decoded_copy(quantized, hf, scratch / "decoded"), ref.input_ids);
  const auto vs_decoded = compare(got, decoded, ref.vocab);
  const auto vs_original = compare(got, ref.logits, ref.vocab);
  RecordProperty("relative_rmse_vs_decoded", fmt::format("{:.4f}", vs_decoded.relative_rmse));
  RecordProperty("relative_rmse_vs_f32", fmt::format("{:.4f}", vs_original.relative_rmse));
  RecordProperty("top1_agreement_vs_f32", fmt::format("{:.3f}", vs_original.top1_agreement));
  RecordProperty("mean_kl_vs_f32", fmt::format("{:.2e}", vs_original.mean_kl));
  // A mixture of experts amplifies the activations' rounding where it changes which experts a
  // token takes (mixtral's Q4_0 reaches 0.026): not continuous in the router's input.
  const bool moe = engine::Model::open(hf)->spec().moe();
  EXPECT_LE(vs_decoded.relative_rmse, moe ? 0.04 : 0.02);
  EXPECT_GT(vs_original.relative_rmse, 0.0);  // the weights really were quantized
}

INSTANTIATE_TEST_SUITE_P(HfFixtures, Quantized,
                         ::testing::Combine(::testing::ValuesIn(hf_fixture_models()),
                                            ::testing::Values("Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "IQ4_NL")),
                         [](const auto& info) {
                           std::string n = std::get<0>(info.param) + "_" + std::get<1>(info.param);
                           std::replace(n.begin(), n.end(), '-', '_');
                           return n;
                         });

}  // namespace
}  // namespace aero::test
