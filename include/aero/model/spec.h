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
// Qwen3 adds per-head RMSNorm of q and k. The forward pass is one function with these facts.
enum class Family { Llama, Qwen2, Qwen3 };
std::string_view family_name(Family family);

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

  // Per-pair inverse frequencies (head_dim / 2 of them), scaling applied; `freq_factors`
  // (GGUF's rope_freqs tensor) divides them when present.
  std::vector<double> rope_inv_freq(const std::vector<float>& freq_factors = {}) const;
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
