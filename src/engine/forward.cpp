// The llama-family decoder (and Phi-3's and Gemma's, which differ in data), top to bottom in
// ForwardPass::run.
#include "engine/forward.h"

#include <algorithm>
#include <cmath>
#include <functional>

#include "aero/error.h"

namespace aero::engine {
namespace {

// The layer's attention as its family defines it: Gemma's scale and soft-cap, the window of
// sliding layers.
backend::AttentionOptions attention_options(const model::ModelSpec& s, std::int64_t layer) {
  return {s.attention_scale, s.attn_softcap, s.sliding(layer) ? s.sliding_window : 0};
}

}  // namespace

ForwardPass::ForwardPass(Model& model, backend::Backend& backend, std::int64_t context, std::int64_t slots,
                         backend::KvType kv_type, std::int64_t max_batch, std::int64_t max_logits)
    : model_(model), backend_(backend) {
  const auto& s = model.spec();
  context_ = context > 0 ? context : std::min<std::int64_t>(s.context, 4096);
  if (context_ > s.context)
    fail("--ctx {} is longer than the {} tokens this model was trained for", context_, s.context);
  if (slots < 1) fail("a KV cache needs at least one slot (got {})", slots);
  max_batch_ = std::clamp<std::int64_t>(max_batch, 1, slots * context_);
  max_logits_ = std::clamp<std::int64_t>(max_logits, 1, max_batch_);
  {
    // The backend sees what it will multiply before the first token (the CPU calibrates here).
    const model::LayerWeights& w = model.weights().acquire(0);  // (a spec has at least one layer)
    // A sparse layer's router and one expert stand for its feed-forward block's shapes.
    std::vector<const quant::Matrix*> ms = {&w.q, &w.k, &w.v, &w.out};
    if (w.moe()) ms.insert(ms.end(), {&w.router, &w.expert_gate[0], &w.expert_up[0], &w.expert_down[0]});
    else ms.insert(ms.end(), {&w.gate, &w.up, &w.down});
    ms.push_back(&model.weights().globals().output);
    backend.prepare(ms, model.weight_bytes_per_token());
    model.weights().release(0);
  }
  layers_ = &model.weights();
  if (const auto* plan = model.plan(); plan && plan->uses_gpu() && plan->count(residency::Tier::GpuResident) < s.layers) {
    streamed_ = std::make_unique<StreamedLayers>(model.weights(), *plan, backend);
    layers_ = streamed_.get();
  }
  cache_ = backend.create_kv_cache(s.layers, s.kv_heads, s.head_dim, context_, slots, kv_type);
  inv_freq_ = s.rope_inv_freq(model.weights().globals().rope_freqs);
  inv_freq_local_ = s.rope_inv_freq_local();
  const auto n = static_cast<std::size_t>(max_batch_);
  x_ = backend.allocate(n * s.hidden);
  xb_ = backend.allocate(n * std::max(s.hidden, s.heads * s.head_dim));
  q_ = backend.allocate(n * s.heads * s.head_dim);
  k_ = backend.allocate(n * s.kv_heads * s.head_dim);
  v_ = backend.allocate(n * s.kv_heads * s.head_dim);
  att_ = backend.allocate(n * s.heads * s.head_dim);
  const auto ffn = static_cast<std::size_t>(std::max(s.ffn, s.expert_ffn));
  gate_ = backend.allocate(n * ffn);
  up_ = backend.allocate(n * ffn);
  if (s.moe()) {
    router_ = backend.allocate(n * s.experts);
    expert_in_ = backend.allocate(n * s.hidden);
    expert_out_ = backend.allocate(n * s.hidden);
  }
  logits_ = backend.allocate(static_cast<std::size_t>(max_logits_) * s.vocab);
}

void ForwardPass::run(const PassTokens& pass, float* logits_out) {
  const auto& s = model_.spec();
  auto& b = backend_;
  const std::int64_t n = static_cast<std::int64_t>(pass.ids.size());
  if (n < 1 || n > max_batch_ || pass.slots.size() != pass.ids.size() || pass.positions.size() != pass.ids.size() ||
      static_cast<std::int64_t>(pass.logit_rows.size()) > max_logits_)
    fail("forward pass: {} tokens, {} slots, {} positions, {} logit rows (at most {} tokens, {} logit rows)", n,
         pass.slots.size(), pass.positions.size(), pass.logit_rows.size(), max_batch_, max_logits_);
  for (std::size_t i = 0; i < pass.logit_rows.size(); ++i)
    if (pass.logit_rows[i] < 0 || pass.logit_rows[i] >= n || (i > 0 && pass.logit_rows[i] <= pass.logit_rows[i - 1]))
      fail("forward pass: logit rows must ascend within the {} tokens", n);
  const std::vector<float> angles = model::rope_table(pass.positions, inv_freq_);
  const std::vector<float> local_angles =
      inv_freq_local_.empty() ? std::vector<float>{} : model::rope_table(pass.positions, inv_freq_local_);
  const auto& globals = model_.weights().globals();

  // Everything up to reading the logits is one step: a GPU replays the steps of a shape it has
  // seen (a CUDA graph) instead of launching each operation.
  const std::int32_t max_position = *std::max_element(pass.positions.begin(), pass.positions.end());
  std::int64_t gathered = 0;
  // (A sparse model reads its router's choices back within the pass: nothing a recording of
  // the step could replay.)
  const auto step = [&](const std::function<void()>& ops) { s.moe() ? ops() : b.run_step(n, max_position, ops); };
  step([&] {
    b.embed(globals.embedding, pass.ids, x_);
    if (s.embedding_scale != 1.0) b.scale(x_, n * s.hidden, static_cast<float>(s.embedding_scale));
    for (std::int64_t layer = 0; layer < s.layers; ++layer) {
      const model::LayerWeights& w = layers_->acquire(layer);
      const auto& layer_angles = s.sliding(layer) && !local_angles.empty() ? local_angles : angles;

      // Attention block: x += Wo · attention(rope(Wq·xb), rope(Wk·xb), Wv·xb), xb = norm(x).
      b.rms_norm(x_, w.attn_norm.data(), s.hidden, n, s.norm_eps, xb_);
      const quant::Matrix* qkv[] = {&w.q, &w.k, &w.v};
      float* qkv_out[] = {q_, k_, v_};
      b.matmul(qkv, xb_, n, qkv_out);
      if (!w.q_bias.empty()) b.add_bias(q_, w.q_bias, n);
      if (!w.k_bias.empty()) b.add_bias(k_, w.k_bias, n);
      if (!w.v_bias.empty()) b.add_bias(v_, w.v_bias, n);
      if (!w.q_norm.empty()) b.rms_norm(q_, w.q_norm.data(), s.head_dim, n * s.heads, s.norm_eps, q_);
      if (!w.k_norm.empty()) b.rms_norm(k_, w.k_norm.data(), s.head_dim, n * s.kv_heads, s.norm_eps, k_);
      b.rope(q_, n, s.heads, s.head_dim, layer_angles, s.rope_layout);
      b.rope(k_, n, s.kv_heads, s.head_dim, layer_angles, s.rope_layout);
      b.attention(*cache_, layer, q_, k_, v_, pass.slots, pass.positions, s.heads, att_, attention_options(s, layer));
      b.matmul(w.out, att_, n, xb_);
      if (!w.attn_post_norm.empty()) b.rms_norm(xb_, w.attn_post_norm.data(), s.hidden, n, s.norm_eps, xb_);
      b.add(x_, xb_, n * s.hidden);

      // Feed-forward block: x += Wdown · (act(Wgate·xb) ⊙ Wup·xb), xb = norm(x) (Gemma: and
      // the sum normalized again before it is added; a sparse layer: its routed experts').
      b.rms_norm(x_, w.ffn_norm.data(), s.hidden, n, s.norm_eps, xb_);
      if (w.moe()) {
        experts(w, n);
        layers_->release(layer);
        continue;
      }
      const quant::Matrix* gate_up[] = {&w.gate, &w.up};
      float* gate_up_out[] = {gate_, up_};
      b.matmul(gate_up, xb_, n, gate_up_out);
      if (s.activation == model::Activation::GeluTanh) b.gelu_tanh_mul(gate_, up_, n * s.ffn, gate_);
      else b.silu_mul(gate_, up_, n * s.ffn, gate_);
      b.matmul(w.down, gate_, n, xb_);
      if (!w.ffn_post_norm.empty()) b.rms_norm(xb_, w.ffn_post_norm.data(), s.hidden, n, s.norm_eps, xb_);
      b.add(x_, xb_, n * s.hidden);

      layers_->release(layer);
    }
    if (pass.logit_rows.empty()) return;
    // Logits of the rows asked for only (a generation step needs each sequence's last token):
    // their final norm gathers them into consecutive rows of xb, a run of adjacent rows per call.
    const auto& rows = pass.logit_rows;
    gathered = 0;
    for (std::size_t i = 0; i < rows.size();) {
      std::size_t j = i + 1;
      while (j < rows.size() && rows[j] == rows[j - 1] + 1) ++j;
      const auto run = static_cast<std::int64_t>(j - i);
      b.rms_norm(x_ + rows[i] * s.hidden, globals.output_norm.data(), s.hidden, run, s.norm_eps, xb_ + gathered * s.hidden);
      gathered += run;
      i = j;
    }
    b.matmul(globals.output, xb_, gathered, logits_);
    if (s.final_softcap > 0) b.softcap(logits_, gathered * s.vocab, static_cast<float>(s.final_softcap));
  });
  if (gathered > 0) b.read(logits_, static_cast<std::size_t>(gathered * s.vocab), logits_out);
}

// x += Σ_e weight(t, e) · expert_e(xb[t]) over each token's routed experts: the router's logits
// come back to the host, which picks the experts (softmax, the largest experts_used, their
// weights renormalized when the model says so, as transformers does) and groups the tokens by
// expert; each expert used runs once over its tokens, gathered into consecutive rows, and adds
// its weighted rows into x.
void ForwardPass::experts(const model::LayerWeights& w, std::int64_t n) {
  const auto& s = model_.spec();
  auto& b = backend_;
  const auto count = static_cast<std::size_t>(s.experts), used = static_cast<std::size_t>(s.experts_used);
  b.matmul(w.router, xb_, n, router_);
  routing_.resize(static_cast<std::size_t>(n) * count);
  b.read(router_, routing_.size(), routing_.data());
  std::vector<std::vector<std::int32_t>> rows(count);
  std::vector<std::vector<float>> weights(count);
  std::vector<std::size_t> order(count);
  std::vector<double> p(count);
  for (std::int64_t t = 0; t < n; ++t) {
    const float* logits = routing_.data() + static_cast<std::size_t>(t) * count;
    const double top = *std::max_element(logits, logits + count);
    double sum = 0;
    for (std::size_t e = 0; e < count; ++e) sum += p[e] = std::exp(static_cast<double>(logits[e]) - top);
    for (std::size_t e = 0; e < count; ++e) p[e] /= sum;
    // The largest probabilities, the lower expert first among equals.
    for (std::size_t e = 0; e < count; ++e) order[e] = e;
    std::partial_sort(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(used), order.end(),
                      [&](std::size_t a, std::size_t c) { return p[a] > p[c] || (p[a] == p[c] && a < c); });
    double chosen = 0;
    for (std::size_t k = 0; k < used; ++k) chosen += p[order[k]];
    for (std::size_t k = 0; k < used; ++k) {
      const std::size_t e = order[k];
      rows[e].push_back(static_cast<std::int32_t>(t));
      weights[e].push_back(static_cast<float>(s.normalize_routing ? p[e] / chosen : p[e]));
    }
  }
  for (std::size_t e = 0; e < count; ++e) {
    if (rows[e].empty()) continue;
    const auto m = static_cast<std::int64_t>(rows[e].size());
    b.gather_rows(xb_, rows[e], s.hidden, expert_in_);
    const quant::Matrix* gate_up[] = {&w.expert_gate[e], &w.expert_up[e]};
    float* gate_up_out[] = {gate_, up_};
    b.matmul(gate_up, expert_in_, m, gate_up_out);
    b.silu_mul(gate_, up_, m * s.expert_ffn, gate_);
    b.matmul(w.expert_down[e], gate_, m, expert_out_);
    b.scatter_add_rows(expert_out_, rows[e], weights[e], s.hidden, x_);
  }
}

}  // namespace aero::engine
