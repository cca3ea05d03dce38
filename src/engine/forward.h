// The forward pass of the llama family (Llama, Mistral, Qwen2, Qwen3) over one step's tokens,
// which may belong to any of the KV cache's slots: Session runs it with one slot, BatchSession
// with many. Every matrix product runs once over all the step's tokens; attention runs per
// token over its own slot. The families differ only in what their tensors and ModelSpec say:
// Qwen2 has q/k/v biases, Qwen3 normalizes each head of q and k, Phi-3's fused matrices are
// views, Gemma adds scales, output norms, soft-caps, sliding windows and its gate, and files
// differ in their rotary layout.
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
  // `max_batch` tokens a pass, logits for `max_logits` of them.
  ForwardPass(Model& model, backend::Backend& backend, std::int64_t context, std::int64_t slots,
              backend::KvType kv_type, std::int64_t max_batch, std::int64_t max_logits);
  ForwardPass(const ForwardPass&) = delete;
  ForwardPass& operator=(const ForwardPass&) = delete;

  // Runs the tokens (at most max_batch, at most max_logits logit rows) and writes the logits of
  // the rows asked for to `logits` (host, logit_rows.size() × vocab floats, in their order).
  void run(const PassTokens& pass, float* logits);

  std::int64_t context() const { return context_; }
  std::int64_t max_batch() const { return max_batch_; }
  std::uint64_t kv_bytes() const { return cache_->bytes(); }
  // The GPU streaming of the model's plan, when it streams layers to the GPU (else null).
  const StreamedLayers* streamed() const { return streamed_.get(); }

 private:
  Model& model_;
  backend::Backend& backend_;
  std::int64_t context_, max_batch_, max_logits_;
  std::unique_ptr<backend::KvCache> cache_;
  std::unique_ptr<StreamedLayers> streamed_;
  model::LayerResidency* layers_;  // streamed_, or the model's own
  std::vector<double> inv_freq_, inv_freq_local_;  // local: sliding layers' own (Gemma 3), else empty
  // Activations for up to max_batch tokens, in backend memory.
  float *x_, *xb_, *q_, *k_, *v_, *att_, *gate_, *up_, *logits_;
  // A sparse model's router logits, and the rows one expert runs over (in, out).
  float *router_ = nullptr, *expert_in_ = nullptr, *expert_out_ = nullptr;
  std::vector<float> routing_;  // the router's logits on the host

  void experts(const model::LayerWeights& w, std::int64_t n);
};

}  // namespace aero::engine
