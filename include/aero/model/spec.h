// What a model is, independent of the file it came from: its family, its hyper-parameters
// and the layout facts the forward pass needs. This is the one place hyper-parameters are
// parsed: from GGUF key/values, from a Hugging Face config.json, or from whichever of the
// two a .aero file carries.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "aero/format/gguf.h"
#include "aero/format/model_source.h"
#include "aero/json.h"
#include "aero/model/rope.h"

namespace aero::model {

// Llama covers Llama 2/3/3.x, Mistral, TinyLlama and SmolLM2; Qwen2 adds q/k/v biases;
// Qwen3 adds per-head RMSNorm of q and k; Phi3 stores q/k/v and gate/up fused, one matrix
// each; Gemma2 scales the embedding, normalizes with (1 + w) before and after attention and
// the feed-forward block, gates with GELU-tanh, soft-caps scores and logits and alternates
// sliding-window and global layers; Gemma3 drops the soft-caps, adds Qwen3's q/k norms and
// gives its sliding layers a rope base of their own. Mixtral is a llama and Qwen3-MoE a qwen3
// whose feed-forward blocks are mixtures of experts (ModelSpec::experts). The forward pass is
// one function with these facts, which ModelSpec holds as data.
enum class Family { Llama, Qwen2, Qwen3, Phi3, Gemma2, Gemma3 };
std::string_view family_name(Family family);

// The feed-forward block's gate: silu(gate) · up, or gelu_tanh(gate) · up (Gemma).
enum class Activation { Silu, GeluTanh };

struct RopeScaling {
  enum class Kind { None, Linear, Llama3 } kind = Kind::None;
  double factor = 1.0;
  double low_freq_factor = 1.0;
  double high_freq_factor = 4.0;
  double original_context = 8192;
};

struct ModelSpec {
  Family family = Family::Llama;
  std::string architecture;  // as the file names it: "llama", "qwen2", "LlamaForCausalLM", ...
  std::int64_t vocab = 0;
  std::int64_t hidden = 0;
  std::int64_t layers = 0;
  std::int64_t heads = 0;
  std::int64_t kv_heads = 0;
  std::int64_t head_dim = 0;
  std::int64_t ffn = 0;
  std::int64_t context = 0;  // the longest context the model was trained for
  double norm_eps = 1e-5;
  double rope_theta = 10000.0;
  RopeScaling rope_scaling;
  RopeLayout rope_layout = RopeLayout::HalfSplit;
  std::int32_t bos_id = -1;
  std::vector<std::int32_t> eos_ids;  // every id that ends generation

  Activation activation = Activation::Silu;
  double embedding_scale = 1.0;  // the embedding rows are multiplied by it (Gemma: √hidden)
  double attention_scale = 0;    // attention scores' factor; 0: 1/√head_dim
  double attn_softcap = 0;       // scores become cap·tanh(score/cap) (Gemma 2); 0: not
  double final_softcap = 0;      // logits, likewise
  // Sliding layers attend to their last `sliding_window` positions only (0: no layer slides).
  std::int64_t sliding_window = 0;
  std::vector<bool> sliding_layers;  // per layer, when sliding_window > 0
  double rope_theta_local = 0;       // sliding layers' rope base, unscaled (Gemma 3); 0: as the others

  // Mixture of experts (Mixtral, Qwen3-MoE: the llama and qwen3 families with sparse blocks):
  // each token's feed-forward block is the weighted sum of `experts_used` of the layer's
  // `experts` MLPs (width `expert_ffn`), those with the largest router probabilities (the
  // softmax of the router's logits), their weights renormalized to sum 1 when
  // `normalize_routing`. 0 experts: a dense model.
  std::int64_t experts = 0, experts_used = 0, expert_ffn = 0;
  bool normalize_routing = true;
  bool moe() const { return experts > 0; }

  bool sliding(std::int64_t layer) const {
    return sliding_window > 0 && static_cast<std::size_t>(layer) < sliding_layers.size() &&
           sliding_layers[static_cast<std::size_t>(layer)];
  }
  // Gemma's RMSNorm multiplies by (1 + w): Hugging Face files store w, GGUF files 1 + w (as
  // llama.cpp's converter writes them).
  bool norm_adds_one() const { return family == Family::Gemma2 || family == Family::Gemma3; }

  // Per-pair inverse frequencies (head_dim / 2 of them), scaling applied; `freq_factors`
  // (GGUF's rope_freqs tensor) divides them when present.
  std::vector<double> rope_inv_freq(const std::vector<float>& freq_factors = {}) const;
  // Those of the sliding layers when they have a base of their own (rope_theta_local), else empty.
  std::vector<double> rope_inv_freq_local() const;
  // Multiply-adds of one forward pass over n tokens from an empty context, as a prompt is run:
  // every token through every layer's matrices, causal attention's scores and weighted sums,
  // and the output head for the last token (the one whose logits generation needs).
  std::int64_t forward_macs(std::int64_t n) const;
};

ModelSpec spec_from_hf_config(const Json& config);
ModelSpec spec_from_gguf(const format::GgufMetadata& metadata);
// The spec of a model source: GGUF key/values where it has them (GGUF files, GGUF-derived
// .aero), else its config.json. The rope layout follows the tensor naming the source uses.
ModelSpec read_spec(const format::ModelSource& source);

}  // namespace aero::model
