// A model's weights by role, as views into the mapped file in their stored format, and the
// residency interface the engine reaches them through: acquire(layer) before a layer runs,
// release(layer) after. Everything mapped is the first implementation (acquire is free);
// streaming from disk implements the same interface with a prefetcher behind it.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "aero/format/model_source.h"
#include "aero/model/spec.h"
#include "aero/quant/matrix.h"

namespace aero::model {

using quant::Matrix;

// The roles of a decoder layer's tensors, each with its Hugging Face and GGUF name. AttnQkv
// and FfnGateUp are Phi-3's fused matrices (q, k, v and gate, up stacked by rows); AttnPostNorm
// and FfnPostNorm are Gemma's norms of each block's output.
enum class Role {
  AttnNorm, AttnQ, AttnK, AttnV, AttnQkv, AttnOut, AttnQBias, AttnKBias, AttnVBias, AttnQNorm, AttnKNorm,
  AttnPostNorm, FfnNorm, FfnGate, FfnUp, FfnGateUp, FfnDown, FfnPostNorm,
};
struct RoleNames {
  Role role;
  const char* hf;    // after "model.layers.{i}."
  const char* gguf;  // after "blk.{i}."
};
// A family's layer tensors (the names differ: Gemma's post_attention_layernorm is the
// attention block's output norm, Llama's the feed-forward block's input norm).
const std::vector<RoleNames>& layer_roles(Family family = Family::Llama);
bool is_norm(Role role);
// The name of a layer tensor in GGUF's convention or Hugging Face's.
std::string layer_tensor_name(bool gguf, std::int64_t layer, const RoleNames& role);
// The tensors of layer `layer` that the source has (every role present, in role order); the
// source's naming convention is told by its embedding's name.
std::vector<const format::SourceTensor*> layer_tensors(const format::ModelSource& source, std::int64_t layer,
                                                       Family family = Family::Llama);
// A sparse layer's router and experts, by Hugging Face's names (Mixtral's block_sparse_moe,
// Qwen3-MoE's mlp: one tensor per expert) or GGUF's (ffn_gate_inp, and ffn_{gate,up,down}_exps
// stacking the experts); empty for a dense layer.
std::vector<const format::SourceTensor*> expert_tensors(const format::ModelSource& source, std::int64_t layer);
// Whole-model tensors: embedding, final norm, output head (absent when tied), GGUF rope factors.
inline constexpr const char* kHfEmbedding = "model.embed_tokens.weight";
inline constexpr const char* kHfOutputNorm = "model.norm.weight";
inline constexpr const char* kHfOutput = "lm_head.weight";
inline constexpr const char* kGgufEmbedding = "token_embd.weight";
inline constexpr const char* kGgufOutputNorm = "output_norm.weight";
inline constexpr const char* kGgufOutput = "output.weight";
inline constexpr const char* kGgufRopeFreqs = "rope_freqs.weight";

// Norm weights and biases are small; they are converted to f32 once at load (Gemma's norms
// as the 1 + w they multiply by). Fused matrices are used through views of their rows: q, k
// and v (gate and up) of Phi-3 are consecutive row ranges of one stored matrix.
struct LayerWeights {
  std::vector<float> attn_norm, ffn_norm;
  std::vector<float> attn_post_norm, ffn_post_norm;  // Gemma; empty for the others
  Matrix q, k, v, out;
  std::vector<float> q_bias, k_bias, v_bias;  // empty when the model has none
  std::vector<float> q_norm, k_norm;          // Qwen3, Gemma3: per-head RMSNorm weights
  Matrix gate, up, down;       // empty in a sparse (mixture-of-experts) layer
  // A sparse layer's router ([experts, hidden]) and its experts' matrices, expert by expert
  // (views into GGUF's stacked tensors, or the HF files' own); empty in a dense layer.
  Matrix router;
  std::vector<Matrix> expert_gate, expert_up, expert_down;
  bool moe() const { return !expert_gate.empty(); }

  // Every matrix of the layer, in a fixed order (attention; gate, up, down, or the router and
  // each expert's gate, up, down): what a pass reads, a disk tier lays out, a GPU streams.
  std::vector<const Matrix*> matrices() const;
  std::vector<Matrix*> matrices();
};

struct GlobalWeights {
  Matrix embedding;          // [vocab, hidden]; rows are looked up, decoded one at a time
  std::vector<float> output_norm;
  Matrix output;             // [vocab, hidden]; the embedding itself when tied
  std::vector<float> rope_freqs;  // GGUF llama3-style per-pair divisors; empty when none
};

class LayerResidency {
 public:
  virtual ~LayerResidency() = default;
  virtual const GlobalWeights& globals() const = 0;
  // The layer's weights, ready to compute with until release(layer).
  virtual const LayerWeights& acquire(std::int64_t layer) = 0;
  virtual void release(std::int64_t layer) = 0;
  // The layer's weights for their shapes, norms and biases only: its matrices' bytes need not
  // be there (the disk tier reads nothing for this). Default: acquire and release.
  virtual const LayerWeights& layout(std::int64_t layer) {
    const LayerWeights& w = acquire(layer);
    release(layer);
    return w;
  }
};

// Every weight the spec needs, as views into the mapped source (no matrix page is touched);
// norms and biases converted to f32. Checks that every tensor is present with the right shape
// and a type aero can compute with; throws aero::Error naming the first that is not.
struct ModelWeights {
  ModelWeights(const format::ModelSource& source, const ModelSpec& spec);
  GlobalWeights globals;
  std::vector<LayerWeights> layers;
  // Bytes of weights read per generated token (all matrices once, the embedding row aside).
  std::uint64_t bytes_per_token = 0;
};

// Every layer used where it lies in the mapped source.
class ResidentWeights final : public LayerResidency {
 public:
  ResidentWeights(const format::ModelSource& source, const ModelSpec& spec);
  const GlobalWeights& globals() const override { return weights_.globals; }
  const LayerWeights& acquire(std::int64_t layer) override { return weights_.layers[static_cast<std::size_t>(layer)]; }
  void release(std::int64_t) override {}
  std::uint64_t bytes_per_token() const { return weights_.bytes_per_token; }

 private:
  ModelWeights weights_;
};

}  // namespace aero::model
