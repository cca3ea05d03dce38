// The forward pass of the llama family (Llama, Mistral, Qwen2, Qwen3), top to bottom in
// Session::forward. The families differ only in what their tensors say: Qwen2 has q/k/v
// biases, Qwen3 normalizes each head of q and k, and files differ in their rotary layout.
#include "aero/engine/session.h"

#include <algorithm>

#include "aero/error.h"

namespace aero::engine {

std::unique_ptr<Model> Model::open(const std::filesystem::path& path, const std::filesystem::path& metadata_from,
                                   const ModelOptions& options) {
  auto source = format::ModelSource::open(path);
  if (!metadata_from.empty()) source->adopt_metadata(format::ModelSource::open(metadata_from)->metadata());
  return std::make_unique<Model>(std::move(source), options);
}

Model::Model(std::unique_ptr<format::ModelSource> source, const ModelOptions& options) : source_(std::move(source)) {
  spec_ = model::read_spec(*source_);
  if (options.planner) plan_ = options.planner(*source_, spec_);
  if (plan_ && plan_->needs_disk()) {
    // The engine computes every layer on one backend; streaming to the GPU is not built yet.
    if (plan_->uses_gpu())
      fail("the plan streams layers to the GPU, which this build's engine cannot do yet (run with --device cpu)");
    std::vector<bool> cached;
    for (const auto& p : plan_->layers) cached.push_back(p.tier != residency::Tier::Disk);
    auto disk_options = options.disk;
    if (plan_->disk_slots > 0) disk_options.slots = plan_->disk_slots;  // the ring the RAM budget has room for
    auto disk = std::make_unique<residency::DiskStreamedWeights>(*source_, spec_, std::move(cached), disk_options);
    bytes_per_token_ = disk->bytes_per_token();
    disk_ = disk.get();
    weights_ = std::move(disk);
    return;
  }
  auto resident = std::make_unique<model::ResidentWeights>(*source_, spec_);
  bytes_per_token_ = resident->bytes_per_token();
  weights_ = std::move(resident);
}

Session::Session(Model& model, backend::Backend& backend, SessionOptions options)
    : model_(model), backend_(backend) {
  const auto& s = model.spec();
  context_ = options.context > 0 ? options.context : std::min<std::int64_t>(s.context, 4096);
  if (context_ > s.context)
    fail("--ctx {} is longer than the {} tokens this model was trained for", context_, s.context);
  max_batch_ = std::clamp<std::int64_t>(options.max_batch, 1, context_);
  {
    // The backend sees what it will multiply before the first token (the CPU calibrates here).
    const model::LayerWeights& w = model.weights().acquire(0);  // (a spec has at least one layer)
    const quant::Matrix* ms[] = {&w.q, &w.k, &w.v, &w.out, &w.gate, &w.up, &w.down, &model.weights().globals().output};
    backend.prepare(ms, model.weight_bytes_per_token());
    model.weights().release(0);
  }
  cache_ = backend.create_kv_cache(s.layers, s.kv_heads, s.head_dim, context_, options.kv_type);
  inv_freq_ = s.rope_inv_freq(model.weights().globals().rope_freqs);
  const auto n = static_cast<std::size_t>(max_batch_);
  x_ = backend.allocate(n * s.hidden);
  xb_ = backend.allocate(n * std::max(s.hidden, s.heads * s.head_dim));
  q_ = backend.allocate(n * s.heads * s.head_dim);
  k_ = backend.allocate(n * s.kv_heads * s.head_dim);
  v_ = backend.allocate(n * s.kv_heads * s.head_dim);
  att_ = backend.allocate(n * s.heads * s.head_dim);
  gate_ = backend.allocate(n * s.ffn);
  up_ = backend.allocate(n * s.ffn);
  logits_ = backend.allocate(n * s.vocab);
}

void Session::rewind(std::int64_t position) {
  if (position < 0 || position > position_) fail("cannot rewind to position {} (at {})", position, position_);
  position_ = position;
}

std::span<const float> Session::eval(std::span<const std::int32_t> tokens, bool all_logits) {
  const auto& s = model_.spec();
  if (tokens.empty()) fail("nothing to evaluate: no tokens");
  const auto n = static_cast<std::int64_t>(tokens.size());
  if (position_ + n > context_)
    fail("{} tokens at position {} exceed the context of {} tokens (raise --ctx, up to {})", n, position_, context_,
         s.context);
  for (std::int32_t id : tokens)
    if (id < 0 || id >= s.vocab) fail("token id {} is outside the vocabulary (0..{})", id, s.vocab - 1);
  host_logits_.resize(static_cast<std::size_t>((all_logits ? n : 1) * s.vocab));
  for (std::int64_t done = 0; done < n; done += max_batch_) {
    const std::int64_t count = std::min(max_batch_, n - done);
    const bool last_chunk = done + count == n;
    float* out = all_logits ? host_logits_.data() + done * s.vocab : last_chunk ? host_logits_.data() : nullptr;
    forward(tokens.subspan(static_cast<std::size_t>(done), static_cast<std::size_t>(count)), all_logits, out);
  }
  return host_logits_;
}

void Session::forward(std::span<const std::int32_t> tokens, bool all_logits, float* logits_out) {
  const auto& s = model_.spec();
  auto& b = backend_;
  const std::int64_t n = static_cast<std::int64_t>(tokens.size());
  std::vector<std::int32_t> positions(static_cast<std::size_t>(n));
  for (std::int64_t t = 0; t < n; ++t) positions[static_cast<std::size_t>(t)] = static_cast<std::int32_t>(position_ + t);
  const std::vector<float> angles = model::rope_table(positions, inv_freq_);
  const auto& globals = model_.weights().globals();

  const std::int64_t first = all_logits ? 0 : n - 1, rows = n - first;  // tokens whose logits are wanted
  // Everything up to reading the logits is one step: a GPU replays the steps of a shape it
  // has seen (a CUDA graph) instead of launching each operation.
  b.run_step(n, position_ + n - 1, [&] {
    b.embed(globals.embedding, tokens, x_);
    for (std::int64_t layer = 0; layer < s.layers; ++layer) {
      const model::LayerWeights& w = model_.weights().acquire(layer);

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
      b.rope(q_, n, s.heads, s.head_dim, angles, s.rope_layout);
      b.rope(k_, n, s.kv_heads, s.head_dim, angles, s.rope_layout);
      b.attention(*cache_, layer, q_, k_, v_, positions, s.heads, att_);
      b.matmul(w.out, att_, n, xb_);
      b.add(x_, xb_, n * s.hidden);

      // Feed-forward block: x += Wdown · (silu(Wgate·xb) ⊙ Wup·xb), xb = norm(x).
      b.rms_norm(x_, w.ffn_norm.data(), s.hidden, n, s.norm_eps, xb_);
      const quant::Matrix* gate_up[] = {&w.gate, &w.up};
      float* gate_up_out[] = {gate_, up_};
      b.matmul(gate_up, xb_, n, gate_up_out);
      b.silu_mul(gate_, up_, n * s.ffn, gate_);
      b.matmul(w.down, gate_, n, xb_);
      b.add(x_, xb_, n * s.hidden);

      model_.weights().release(layer);
    }
    if (!logits_out) return;
    // Logits of every token, or of the last one only (all a generation step needs).
    b.rms_norm(x_ + first * s.hidden, globals.output_norm.data(), s.hidden, rows, s.norm_eps, xb_);
    b.matmul(globals.output, xb_, rows, logits_);
  });
  position_ += n;
  if (logits_out) b.read(logits_, static_cast<std::size_t>(rows * s.vocab), logits_out);
}

}  // namespace aero::engine
