// The work a forward pass does, as aero bench reports it against the machine's f32 peak; the
// facts of Gemma's GGUF files as llama.cpp reads them, and of configs older than the fixtures'.
#include <gtest/gtest.h>

#include <cmath>

#include "aero/error.h"
#include "aero/model/spec.h"

namespace aero::model {
namespace {

TEST(Spec, ForwardMacsCountEveryMatrixAndCausalAttention) {
  ModelSpec s;
  s.vocab = 10, s.hidden = 8, s.layers = 3, s.heads = 2, s.kv_heads = 1, s.head_dim = 4, s.ffn = 16;
  // Per token and layer: q 8·8, k and v 8·4 each, out 8·8, gate, up and down 8·16 each = 576;
  // three layers: 1728, three tokens: 5184. The 8 × 10 head for the last token: 80. Attention:
  // token t (0..2) scores t + 1 keys and sums as many values, 4 multiply-adds each:
  // (1 + 2 + 3)·2·4 = 48 per head and layer, 2 heads, 3 layers: 288.
  EXPECT_EQ(s.forward_macs(1), 1728 + 80 + 3 * 2 * 2 * 4);
  EXPECT_EQ(s.forward_macs(3), 5184 + 80 + 288);
}

TEST(Spec, ForwardMacsOfTinyLlamaShape) {
  ModelSpec s;
  s.vocab = 32000, s.hidden = 2048, s.layers = 22, s.heads = 32, s.kv_heads = 4, s.head_dim = 64, s.ffn = 5632;
  // 1,034,420,224 weights in the matrices (TinyLlama-1.1B without its embedding), and one
  // position of attention: 22 layers · 32 heads · 64 · 2.
  EXPECT_EQ(s.forward_macs(1), 1034420224 + 22 * 32 * 64 * 2);
}

format::GgufMetadata gguf(const std::string& arch, std::int64_t layers) {
  format::GgufMetadata m;
  using format::GgufType;
  auto put = [&](const std::string& key, GgufType type, Json v) { m.set({key, type, GgufType::U8, std::move(v)}); };
  put("general.architecture", GgufType::String, arch);
  put(arch + ".embedding_length", GgufType::U32, 2304);
  put(arch + ".block_count", GgufType::U32, layers);
  put(arch + ".attention.head_count", GgufType::U32, 8);
  put(arch + ".attention.head_count_kv", GgufType::U32, 4);
  put(arch + ".attention.key_length", GgufType::U32, 256);
  put(arch + ".feed_forward_length", GgufType::U32, 9216);
  put(arch + ".vocab_size", GgufType::U32, 1000);
  return m;
}

// llama.cpp's defaults: Gemma 2 slides every other layer (from the first) over 4096 positions
// and caps scores at 50 and logits at 30; Gemma 3 keeps every sixth layer global and rotates
// sliding layers with base 10000; both scale scores by 1/√head_dim, except the 27B models
// (46 and 62 layers), by 1/√(hidden / heads).
TEST(Spec, GemmaGgufDefaultsAreLlamaCpps) {
  const auto g2 = spec_from_gguf(gguf("gemma2", 4));
  EXPECT_EQ(g2.sliding_window, 4096);
  EXPECT_EQ(g2.sliding_layers, (std::vector<bool>{true, false, true, false}));
  EXPECT_EQ(g2.attn_softcap, 50.0);
  EXPECT_EQ(g2.final_softcap, 30.0);
  EXPECT_DOUBLE_EQ(g2.attention_scale, 1 / 16.0);
  EXPECT_EQ(g2.embedding_scale, 48.0);
  EXPECT_EQ(g2.rope_theta_local, 0.0);
  EXPECT_EQ(g2.activation, Activation::GeluTanh);
  EXPECT_TRUE(g2.norm_adds_one());
  EXPECT_DOUBLE_EQ(spec_from_gguf(gguf("gemma2", 46)).attention_scale, 1 / std::sqrt(2304.0 / 8));

  auto m3 = gguf("gemma3", 7);
  m3.set({"gemma3.attention.sliding_window", format::GgufType::U32, format::GgufType::U8, 512});
  const auto g3 = spec_from_gguf(m3);
  EXPECT_EQ(g3.sliding_layers, (std::vector<bool>{true, true, true, true, true, false, true}));
  EXPECT_EQ(g3.attn_softcap, 0.0);
  EXPECT_EQ(g3.final_softcap, 0.0);
  EXPECT_EQ(g3.rope_theta_local, 10000.0);
  EXPECT_DOUBLE_EQ(spec_from_gguf(gguf("gemma3", 62)).attention_scale, 1 / std::sqrt(2304.0 / 8));
  EXPECT_EQ(spec_from_gguf(gguf("gemma3", 7)).sliding_window, 0);  // no window key: no layer slides
  // A per-layer bool array wins over the period.
  m3.set({"gemma3.attention.sliding_window_pattern", format::GgufType::Array, format::GgufType::Bool,
          Json::array({false, true, false, true, false, true, false})});
  EXPECT_EQ(spec_from_gguf(m3).sliding_layers, (std::vector<bool>{false, true, false, true, false, true, false}));
}

// Gemma 3 configs of transformers 4 say rope_theta, rope_local_base_freq, rope_scaling and
// sliding_window_pattern where transformers 5 writes rope_parameters per layer type.
TEST(Spec, Gemma3ConfigOfTransformers4) {
  const auto s = spec_from_hf_config(parse_json(R"({"model_type": "gemma3_text", "vocab_size": 1000, "hidden_size": 64,
      "num_hidden_layers": 8, "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 32,
      "intermediate_size": 128, "query_pre_attn_scalar": 64, "sliding_window": 16, "sliding_window_pattern": 6,
      "rope_theta": 1000000.0, "rope_local_base_freq": 10000.0, "rope_scaling": {"rope_type": "linear", "factor": 8.0},
      "hidden_activation": "gelu_pytorch_tanh"})", "config"));
  EXPECT_EQ(s.family, Family::Gemma3);
  EXPECT_EQ(s.sliding_layers, (std::vector<bool>{true, true, true, true, true, false, true, true}));
  EXPECT_EQ(s.rope_theta, 1e6);
  EXPECT_EQ(s.rope_scaling.kind, RopeScaling::Kind::Linear);
  EXPECT_EQ(s.rope_theta_local, 1e4);
  EXPECT_DOUBLE_EQ(s.attention_scale, 1 / 8.0);
  // The local table is unscaled: base 10000, pair i at 10000^(-2i/32).
  const auto local = s.rope_inv_freq_local();
  ASSERT_EQ(local.size(), 16u);
  EXPECT_DOUBLE_EQ(local[1], std::pow(1e4, -2.0 / 32));
  EXPECT_DOUBLE_EQ(s.rope_inv_freq()[1], std::pow(1e6, -2.0 / 32) / 8);
}

TEST(Spec, GemmaConfigsOutOfRangeAreErrors) {
  const std::string base = R"({"model_type": "gemma2", "vocab_size": 1000, "hidden_size": 64, "num_hidden_layers": 3,
      "num_attention_heads": 4, "head_dim": 16, "intermediate_size": 128, )";
  EXPECT_THROW(spec_from_hf_config(parse_json(base + R"("hidden_activation": "silu"})", "c")), Error);
  EXPECT_THROW(spec_from_hf_config(parse_json(base + R"("sliding_window": 8, "layer_types": ["full_attention"]})", "c")), Error);
  EXPECT_THROW(spec_from_hf_config(parse_json(base + R"("sliding_window": 8, "layer_types": [1, 2, 3]})", "c")), Error);
  EXPECT_THROW(spec_from_hf_config(parse_json(base + R"("attn_logit_softcapping": -1})", "c")), Error);
  EXPECT_THROW(spec_from_hf_config(parse_json(base + R"("sliding_window": -4})", "c")), Error);
}

}  // namespace
}  // namespace aero::model
