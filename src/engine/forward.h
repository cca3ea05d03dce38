// The forward pass of the llama family (Llama, Mistral, Qwen2, Qwen3) over one step's tokens,
// which may belong to any of the KV cache's slots: Session runs it with one slot, BatchSession
// with many. Every matrix product runs once over all the step's tokens; attention runs per
// token over its own slot. The families differ only in what their tensors and ModelSpec say:
// Qwen2 has q/k/v biases, Qwen3 normalizes each head of q and k, Phi-3's fused matrices are
// views, Gemma adds scales, output norms, soft-caps, sliding windows and its gate, Mixtral and
// Qwen3-MoE route each token to some experts, and files differ in their rotary layout.
//
// Where a model's plan says so, layers run elsewhere than on the pass's backend: streamed to
// the GPU through its weight ring (StreamedLayers), or computed by a CPU backend of the pass's
// own (the split), the residual stream crossing between the two.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "aero/backend/backend.h"
#include "aero/engine/session.h"
#include "engine/streamed_layers.h"

namespace aero::engine {

// The tokens of one pass: per token its id, slot and position (the caller has checked them),
// and which of them (ascending indices) want logits back.
struct PassTokens {
  std::span<const std::int32_t> ids, slots, positions;
  std::span<const std::int64_t> logit_rows;
};

class ForwardPass {
 public:
  // A KV cache of `slots` sequences of `context` positions each (0: the model's trained
  // context, at most 4096; more than it was trained for is an error), activations for
  // `max_batch` tokens a pass, logits for `max_logits` of them. A model whose plan computes some
  // layers (or the head) on the CPU in a GPU run gets a CPU backend of its own for them.
  ForwardPass(Model& model, backend::Backend& backend, std::int64_t context, std::int64_t slots,
              backend::KvType kv_type, std::int64_t max_batch, std::int64_t max_logits);
  ForwardPass(const ForwardPass&) = delete;
  ForwardPass& operator=(const ForwardPass&) = delete;

  // Runs the tokens (at most max_batch, at most max_logits logit rows) and writes the logits of
  // the rows asked for to `logits` (host, logit_rows.size() × vocab floats, in their order).
  void run(const PassTokens& pass, float* logits);

  std::int64_t context() const { return context_; }
  std::int64_t max_batch() const { return max_batch_; }
  std::uint64_t kv_bytes() const;
  // The GPU streaming of the model's plan, when it streams layers to the GPU (else null).
  const StreamedLayers* streamed() const { return streamed_.get(); }

 private:
  // One backend's share of a pass: its activations (for up to max_batch tokens, in its memory)
  // and the KV cache of the layers it computes.
  struct Lane {
    backend::Backend* backend = nullptr;
    std::unique_ptr<backend::KvCache> cache;
    float *x = nullptr, *xb = nullptr, *q = nullptr, *k = nullptr, *v = nullptr, *att = nullptr, *gate = nullptr,
          *up = nullptr, *logits = nullptr;
    // A sparse model's router logits, and the rows one expert runs over (in, out).
    float *router = nullptr, *expert_in = nullptr, *expert_out = nullptr;
  };
  struct Angles {
    std::span<const float> global, local;
  };

  // A lane's buffers: a KV cache of `kv_layers` layers, activations when it `computes` layers,
  // logits when it computes the `head`.
  void allocate(Lane& lane, std::int64_t kv_layers, bool computes, std::int64_t slots, backend::KvType kv_type, bool head);
  void layer(Lane& lane, const model::LayerWeights& w, std::int64_t layer, const PassTokens& pass, const Angles& angles,
             backend::KvCache& cache, std::int64_t cache_layer);
  // A CPU layer computed by the GPU in a wide pass: its cached rows before the pass go to the
  // GPU's one-layer cache, the pass's rows come back.
  void wide_layer(const model::LayerWeights& w, std::int64_t layer, const PassTokens& pass, const Angles& angles);
  void experts(Lane& lane, const model::LayerWeights& w, std::int64_t n);
  // The residual stream x of n tokens from one lane to another (through host memory).
  void move_x(const Lane& from, Lane& to, std::int64_t n);

  Model& model_;
  std::int64_t context_, max_batch_, max_logits_;
  std::unique_ptr<backend::Backend> host_;  // the CPU backend of a split plan
  std::vector<Lane> lanes_;                 // [0]: the pass's backend; [1]: host_, when split
  std::vector<int> lane_of_;                // per layer
  std::vector<std::int64_t> cache_index_;   // per layer: its layer in its lane's cache
  int head_lane_ = 0;
  std::unique_ptr<StreamedLayers> streamed_;
  // Passes of at least this many tokens compute the CPU layers on the GPU (0: never), with
  // their keys and values in a one-layer cache there.
  std::int64_t wide_tokens_ = 0;
  std::unique_ptr<backend::KvCache> wide_cache_;
  std::vector<std::uint8_t> kv_rows_;
  model::LayerResidency* layers_;  // streamed_, or the model's own
  std::vector<double> inv_freq_, inv_freq_local_;  // local: sliding layers' own (Gemma 3), else empty
  std::vector<float> routing_, moved_;  // host copies: a sparse layer's router logits; x crossing lanes
  struct Routed {  // a sparse layer's choices: per expert its tokens and their weights
    std::vector<std::vector<std::int32_t>> rows;
    std::vector<std::vector<float>> weights;
    std::vector<std::size_t> order;
    std::vector<double> p;  // one token's probabilities
  } routed_;
};

}  // namespace aero::engine
