// The llama-family decoder (and Phi-3's, Gemma's and the mixtures of experts', which differ in
// data), top to bottom in ForwardPass::run, a layer in ForwardPass::layer.
#include "engine/forward.h"

#include <algorithm>
#include <cmath>
#include <functional>

#include "aero/error.h"
#include "aero/parallel.h"

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
    : model_(model) {
  const auto& s = model.spec();
  context_ = context > 0 ? context : std::min<std::int64_t>(s.context, 4096);
  if (context_ > s.context)
    fail("--ctx {} is longer than the {} tokens this model was trained for", context_, s.context);
  if (slots < 1) fail("a KV cache needs at least one slot (got {})", slots);
  max_batch_ = std::clamp<std::int64_t>(max_batch, 1, slots * context_);
  // A plan that sized the activations for fewer tokens (room for the disk ring), but never fewer
  // than one per sequence.
  if (const auto* p = model.plan(); p && p->max_batch > 0) max_batch_ = std::min(max_batch_, std::max(p->max_batch, slots));
  max_logits_ = std::clamp<std::int64_t>(max_logits, 1, max_batch_);

  // Which backend computes each layer and the head: the pass's, or (a GPU plan's CPU layers)
  // a CPU backend of the pass's own.
  const auto* plan = model.plan();
  const bool split = plan && plan->uses_gpu();
  auto on_cpu = [&](residency::Placement p) { return split && p.compute == residency::Processor::Cpu; };
  lane_of_.assign(static_cast<std::size_t>(s.layers), 0);
  for (std::int64_t l = 0; split && l < s.layers; ++l)
    lane_of_[static_cast<std::size_t>(l)] = on_cpu(plan->layers[static_cast<std::size_t>(l)]) ? 1 : 0;
  head_lane_ = split && on_cpu(plan->output) ? 1 : 0;
  const bool two = head_lane_ == 1 || std::count(lane_of_.begin(), lane_of_.end(), 1) > 0;
  lanes_.resize(two ? 2 : 1);
  lanes_[0].backend = &backend;
  if (two) {
    host_ = backend::make_cpu_backend(default_thread_count());
    lanes_[1].backend = host_.get();
  }
  // The backends see what they will multiply before the first token (the CPU calibrates here),
  // unless layers come from disk: that run is bound by the disk, not the product kernels, and
  // the calibration's synthetic matrices (64-256 MiB) would not fit the RAM budget that put
  // them there.
  if (!(plan && plan->needs_disk())) {
    const model::LayerWeights& w = model.weights().acquire(0);  // (a spec has at least one layer)
    // A sparse layer's router and one expert stand for its feed-forward block's shapes.
    std::vector<const quant::Matrix*> ms = {&w.q, &w.k, &w.v, &w.out};
    if (w.moe()) ms.insert(ms.end(), {&w.router, &w.expert_gate[0], &w.expert_up[0], &w.expert_down[0]});
    else ms.insert(ms.end(), {&w.gate, &w.up, &w.down});
    ms.push_back(&model.weights().globals().output);
    for (auto& lane : lanes_) lane.backend->prepare(ms, model.weight_bytes_per_token());
    model.weights().release(0);
  }
  layers_ = &model.weights();
  bool streams = false;
  for (std::int64_t l = 0; split && l < s.layers; ++l) {
    const auto p = plan->layers[static_cast<std::size_t>(l)];
    streams = streams || (p.compute == residency::Processor::Gpu && p.tier != residency::Tier::GpuResident);
  }
  // Wide passes need the ring and a CPU lane with layers of its own (not its disk tier's).
  bool cpu_layers = false;
  for (std::int64_t l = 0; split && l < s.layers; ++l)
    cpu_layers = cpu_layers || plan->layers[static_cast<std::size_t>(l)].tier == residency::Tier::CpuCompute;
  if (split && plan->wide_tokens > 0 && cpu_layers) wide_tokens_ = plan->wide_tokens, streams = true;
  if (streams) {
    streamed_ = std::make_unique<StreamedLayers>(model.weights(), *plan, backend);
    layers_ = streamed_.get();
  }
  // Each lane's cache holds its own layers, in order.
  std::vector<std::int64_t> count(lanes_.size(), 0);
  for (int lane : lane_of_) cache_index_.push_back(count[static_cast<std::size_t>(lane)]++);
  for (std::size_t i = 0; i < lanes_.size(); ++i)
    allocate(lanes_[i], count[i], count[i] > 0 || (i == 0 && wide_tokens_ > 0), slots, kv_type,
             static_cast<int>(i) == head_lane_);
  if (wide_tokens_ > 0) wide_cache_ = backend.create_kv_cache(1, s.kv_heads, s.head_dim, context_, slots, kv_type);
  inv_freq_ = s.rope_inv_freq(model.weights().globals().rope_freqs);
  inv_freq_local_ = s.rope_inv_freq_local();
}

void ForwardPass::allocate(Lane& lane, std::int64_t kv_layers, bool computes, std::int64_t slots, backend::KvType kv_type,
                           bool head) {
  const auto& s = model_.spec();
  auto& b = *lane.backend;
  if (kv_layers > 0) lane.cache = b.create_kv_cache(kv_layers, s.kv_heads, s.head_dim, context_, slots, kv_type);
  const auto n = static_cast<std::size_t>(max_batch_);
  lane.x = b.allocate(n * s.hidden);
  lane.xb = b.allocate(n * std::max(s.hidden, s.heads * s.head_dim));
  if (computes) {
    lane.q = b.allocate(n * s.heads * s.head_dim);
    lane.k = b.allocate(n * s.kv_heads * s.head_dim);
    lane.v = b.allocate(n * s.kv_heads * s.head_dim);
    lane.att = b.allocate(n * s.heads * s.head_dim);
    const auto ffn = static_cast<std::size_t>(std::max(s.ffn, s.expert_ffn));
    lane.gate = b.allocate(n * ffn);
    lane.up = b.allocate(n * ffn);
    if (s.moe()) {
      lane.router = b.allocate(n * s.experts);
      lane.expert_in = b.allocate(n * s.hidden);
      lane.expert_out = b.allocate(n * s.hidden);
    }
  }
  if (head) lane.logits = b.allocate(static_cast<std::size_t>(max_logits_) * s.vocab);
}

std::uint64_t ForwardPass::kv_bytes() const {
  std::uint64_t bytes = wide_cache_ ? wide_cache_->bytes() : 0;
  for (const auto& lane : lanes_)
    if (lane.cache) bytes += lane.cache->bytes();
  return bytes;
}

void ForwardPass::wide_layer(const model::LayerWeights& w, std::int64_t layer, const PassTokens& pass, const Angles& angles) {
  backend::KvCache& cpu = *lanes_[1].cache;
  const std::int64_t index = cache_index_[static_cast<std::size_t>(layer)];
  const std::uint64_t row = cpu.position_bytes();
  auto move = [&](const backend::KvCache& from, std::int64_t from_layer, backend::KvCache& to, std::int64_t to_layer,
                  std::int32_t slot, std::int64_t begin, std::int64_t count) {
    if (count <= 0) return;
    kv_rows_.resize(static_cast<std::size_t>(row * static_cast<std::uint64_t>(count)));
    from.read_rows(from_layer, slot, begin, count, kv_rows_.data());
    to.write_rows(to_layer, slot, begin, count, kv_rows_.data());
  };
  // Each slot's positions before its first one in the pass (a pass continues each sequence).
  const auto n = static_cast<std::int64_t>(pass.ids.size());
  std::vector<std::pair<std::int32_t, std::int32_t>> first;  // (slot, position)
  for (std::int64_t t = 0; t < n; ++t) {
    const auto slot = pass.slots[static_cast<std::size_t>(t)], pos = pass.positions[static_cast<std::size_t>(t)];
    auto it = std::find_if(first.begin(), first.end(), [&](const auto& f) { return f.first == slot; });
    if (it == first.end()) first.emplace_back(slot, pos);
    else it->second = std::min(it->second, pos);
  }
  for (const auto& [slot, pos] : first) move(cpu, index, *wide_cache_, 0, slot, 0, pos);
  this->layer(lanes_[0], w, layer, pass, angles, *wide_cache_, 0);
  // The pass's rows back, a run of consecutive positions of one slot at a time.
  for (std::int64_t t = 0; t < n;) {
    std::int64_t u = t + 1;
    while (u < n && pass.slots[static_cast<std::size_t>(u)] == pass.slots[static_cast<std::size_t>(t)] &&
           pass.positions[static_cast<std::size_t>(u)] == pass.positions[static_cast<std::size_t>(u - 1)] + 1)
      ++u;
    move(*wide_cache_, 0, cpu, index, pass.slots[static_cast<std::size_t>(t)], pass.positions[static_cast<std::size_t>(t)], u - t);
    t = u;
  }
}

void ForwardPass::move_x(const Lane& from, Lane& to, std::int64_t n) {
  moved_.resize(static_cast<std::size_t>(n * model_.spec().hidden));
  from.backend->read(from.x, moved_.size(), moved_.data());
  to.backend->write(moved_.data(), moved_.size(), to.x);
}

void ForwardPass::run(const PassTokens& pass, float* logits_out) {
  const auto& s = model_.spec();
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
  // seen (a CUDA graph) instead of launching each operation. A sparse model reads its router's
  // choices back within the pass, and a split one moves x between backends: nothing a recording
  // of the step could replay, so those run directly.
  const std::int32_t max_position = *std::max_element(pass.positions.begin(), pass.positions.end());
  const bool wide = wide_tokens_ > 0 && n >= wide_tokens_;
  if (streamed_) streamed_->set_wide(wide);
  std::int64_t gathered = 0;
  const bool direct = s.moe() || lanes_.size() > 1;
  const auto step = [&](const std::function<void()>& ops) {
    direct ? ops() : lanes_[0].backend->run_step(n, max_position, ops);
  };
  step([&] {
    int at = lane_of_[0];
    lanes_[static_cast<std::size_t>(at)].backend->embed(globals.embedding, pass.ids, lanes_[static_cast<std::size_t>(at)].x);
    if (s.embedding_scale != 1.0) {
      Lane& l = lanes_[static_cast<std::size_t>(at)];
      l.backend->scale(l.x, n * s.hidden, static_cast<float>(s.embedding_scale));
    }
    for (std::int64_t layer = 0; layer < s.layers; ++layer) {
      // In a wide pass the CPU's layers run on the GPU (streamed through the ring).
      const bool moved = wide && lane_of_[static_cast<std::size_t>(layer)] == 1 &&
                         model_.plan()->layers[static_cast<std::size_t>(layer)].tier == residency::Tier::CpuCompute;
      const int next = moved ? 0 : lane_of_[static_cast<std::size_t>(layer)];
      if (next != at) move_x(lanes_[static_cast<std::size_t>(at)], lanes_[static_cast<std::size_t>(next)], n), at = next;
      const model::LayerWeights& w = layers_->acquire(layer);
      if (moved) {
        wide_layer(w, layer, pass, {angles, local_angles});
      } else {
        Lane& l = lanes_[static_cast<std::size_t>(at)];
        this->layer(l, w, layer, pass, {angles, local_angles}, *l.cache, cache_index_[static_cast<std::size_t>(layer)]);
      }
      layers_->release(layer);
    }
    if (pass.logit_rows.empty()) return;
    if (head_lane_ != at) move_x(lanes_[static_cast<std::size_t>(at)], lanes_[static_cast<std::size_t>(head_lane_)], n);
    Lane& h = lanes_[static_cast<std::size_t>(head_lane_)];
    auto& b = *h.backend;
    // Logits of the rows asked for only (a generation step needs each sequence's last token):
    // their final norm gathers them into consecutive rows of xb, a run of adjacent rows per call.
    const auto& rows = pass.logit_rows;
    gathered = 0;
    for (std::size_t i = 0; i < rows.size();) {
      std::size_t j = i + 1;
      while (j < rows.size() && rows[j] == rows[j - 1] + 1) ++j;
      const auto run = static_cast<std::int64_t>(j - i);
      b.rms_norm(h.x + rows[i] * s.hidden, globals.output_norm.data(), s.hidden, run, s.norm_eps, h.xb + gathered * s.hidden);
      gathered += run;
      i = j;
    }
    b.matmul(globals.output, h.xb, gathered, h.logits);
    if (s.final_softcap > 0) b.softcap(h.logits, gathered * s.vocab, static_cast<float>(s.final_softcap));
  });
  if (gathered > 0) {
    Lane& h = lanes_[static_cast<std::size_t>(head_lane_)];
    h.backend->read(h.logits, static_cast<std::size_t>(gathered * s.vocab), logits_out);
  }
}

void ForwardPass::layer(Lane& l, const model::LayerWeights& w, std::int64_t layer, const PassTokens& pass,
                        const Angles& angles, backend::KvCache& cache, std::int64_t cache_layer) {
  const auto& s = model_.spec();
  auto& b = *l.backend;
  const auto n = static_cast<std::int64_t>(pass.ids.size());
  const auto layer_angles = s.sliding(layer) && !angles.local.empty() ? angles.local : angles.global;

  // Attention block: x += Wo · attention(rope(Wq·xb), rope(Wk·xb), Wv·xb), xb = norm(x).
  b.rms_norm(l.x, w.attn_norm.data(), s.hidden, n, s.norm_eps, l.xb);
  const quant::Matrix* qkv[] = {&w.q, &w.k, &w.v};
  float* qkv_out[] = {l.q, l.k, l.v};
  b.matmul(qkv, l.xb, n, qkv_out);
  if (!w.q_bias.empty()) b.add_bias(l.q, w.q_bias, n);
  if (!w.k_bias.empty()) b.add_bias(l.k, w.k_bias, n);
  if (!w.v_bias.empty()) b.add_bias(l.v, w.v_bias, n);
  if (!w.q_norm.empty()) b.rms_norm(l.q, w.q_norm.data(), s.head_dim, n * s.heads, s.norm_eps, l.q);
  if (!w.k_norm.empty()) b.rms_norm(l.k, w.k_norm.data(), s.head_dim, n * s.kv_heads, s.norm_eps, l.k);
  b.rope(l.q, n, s.heads, s.head_dim, layer_angles, s.rope_layout);
  b.rope(l.k, n, s.kv_heads, s.head_dim, layer_angles, s.rope_layout);
  b.attention(cache, cache_layer, l.q, l.k, l.v, pass.slots, pass.positions, s.heads, l.att, attention_options(s, layer));
  b.matmul(w.out, l.att, n, l.xb);
  if (!w.attn_post_norm.empty()) b.rms_norm(l.xb, w.attn_post_norm.data(), s.hidden, n, s.norm_eps, l.xb);
  b.add(l.x, l.xb, n * s.hidden);

  // Feed-forward block: x += Wdown · (act(Wgate·xb) ⊙ Wup·xb), xb = norm(x) (Gemma: and the sum
  // normalized again before it is added; a sparse layer: its routed experts').
  b.rms_norm(l.x, w.ffn_norm.data(), s.hidden, n, s.norm_eps, l.xb);
  if (w.moe()) return experts(l, w, n);
  const quant::Matrix* gate_up[] = {&w.gate, &w.up};
  float* gate_up_out[] = {l.gate, l.up};
  b.matmul(gate_up, l.xb, n, gate_up_out);
  if (s.activation == model::Activation::GeluTanh) b.gelu_tanh_mul(l.gate, l.up, n * s.ffn, l.gate);
  else b.silu_mul(l.gate, l.up, n * s.ffn, l.gate);
  b.matmul(w.down, l.gate, n, l.xb);
  if (!w.ffn_post_norm.empty()) b.rms_norm(l.xb, w.ffn_post_norm.data(), s.hidden, n, s.norm_eps, l.xb);
  b.add(l.x, l.xb, n * s.hidden);
}

// x += Σ_e weight(t, e) · expert_e(xb[t]) over each token's routed experts: the router's logits
// come back to the host, which picks the experts (softmax, the largest experts_used, their
// weights renormalized when the model says so, as transformers does) and groups the tokens by
// expert; each expert used runs once over its tokens, gathered into consecutive rows, and adds
// its weighted rows into x.
void ForwardPass::experts(Lane& l, const model::LayerWeights& w, std::int64_t n) {
  const auto& s = model_.spec();
  auto& b = *l.backend;
  const auto count = static_cast<std::size_t>(s.experts), used = static_cast<std::size_t>(s.experts_used);
  b.matmul(w.router, l.xb, n, l.router);
  routing_.resize(static_cast<std::size_t>(n) * count);
  b.read(l.router, routing_.size(), routing_.data());
  // (Kept between layers and passes: no allocation per layer once they have grown.)
  // (Plain references: clang 14 cannot capture structured bindings in a lambda.)
  auto& rows = routed_.rows;
  auto& weights = routed_.weights;
  auto& order = routed_.order;
  auto& p = routed_.p;
  rows.resize(count), weights.resize(count), order.resize(count), p.resize(count);
  for (std::size_t e = 0; e < count; ++e) rows[e].clear(), weights[e].clear();
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
    b.gather_rows(l.xb, rows[e], s.hidden, l.expert_in);
    const quant::Matrix* gate_up[] = {&w.expert_gate[e], &w.expert_up[e]};
    float* gate_up_out[] = {l.gate, l.up};
    b.matmul(gate_up, l.expert_in, m, gate_up_out);
    b.silu_mul(l.gate, l.up, m * s.expert_ffn, l.gate);
    b.matmul(w.expert_down[e], l.gate, m, l.expert_out);
    b.scatter_add_rows(l.expert_out, rows[e], weights[e], s.hidden, l.x);
  }
}

}  // namespace aero::engine
