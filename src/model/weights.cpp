#include "aero/model/weights.h"

#include "aero/mapped_file.h"

#include <utility>

#include <fmt/format.h>

#include "aero/error.h"

namespace aero::model {
namespace {

using format::SourceTensor;

// One naming convention: Hugging Face's or GGUF's, decided by the embedding's name.
struct Naming {
  bool gguf;
  explicit Naming(const format::ModelSource& source) : gguf(source.find(kGgufEmbedding) != nullptr) {}
  std::string layer(std::int64_t i, const RoleNames& r) const { return layer_tensor_name(gguf, i, r); }
};

quant::TypeTraits traits_of(const SourceTensor& t) {
  auto type = format::ggml_type_of(t.dtype, t.ggml_type);
  auto traits = type ? quant::type_traits(static_cast<std::uint32_t>(*type)) : std::nullopt;
  if (!traits || !traits->decode) fail("tensor {}: element type cannot be computed with", t.name);
  return *traits;
}

std::string shape_text(const std::vector<std::uint64_t>& shape) {
  return fmt::format("[{}]", fmt::join(shape, ", "));
}

Matrix matrix_of(const SourceTensor& t, std::int64_t rows, std::int64_t cols) {
  if (t.shape.size() != 2 || t.shape[0] != static_cast<std::uint64_t>(rows) || t.shape[1] != static_cast<std::uint64_t>(cols))
    fail("tensor {}: shape {} where the model's hyper-parameters need [{}, {}]", t.name, shape_text(t.shape), rows, cols);
  const auto traits = traits_of(t);
  const auto rb = quant::row_bytes(traits, static_cast<std::uint64_t>(cols));
  if (!rb) fail("tensor {}: {} columns are not whole {} blocks", t.name, cols, traits.name);
  if (t.data.size() < *rb * static_cast<std::uint64_t>(rows)) fail("tensor {}: data shorter than its shape", t.name);
  return Matrix{traits.type, t.data.data(), rows, cols, static_cast<std::size_t>(*rb)};
}

// Rows [first, first + count) of a matrix: a view, the same bytes.
Matrix rows_of(const Matrix& m, std::int64_t first, std::int64_t count) {
  return Matrix{m.type, m.data + static_cast<std::size_t>(first) * m.row_bytes, count, m.cols, m.row_bytes};
}

// Experts stacked in one tensor [count, rows, cols] (GGUF's ffn_*_exps): a view per expert.
std::vector<Matrix> stacked_of(const SourceTensor& t, std::int64_t count, std::int64_t rows, std::int64_t cols) {
  if (t.shape.size() != 3 || t.shape[0] != static_cast<std::uint64_t>(count) || t.shape[1] != static_cast<std::uint64_t>(rows) ||
      t.shape[2] != static_cast<std::uint64_t>(cols))
    fail("tensor {}: shape {} where the model's hyper-parameters need [{}, {}, {}]", t.name, shape_text(t.shape), count,
         rows, cols);
  SourceTensor flat = t;
  flat.shape = {static_cast<std::uint64_t>(count * rows), static_cast<std::uint64_t>(cols)};
  const Matrix all = matrix_of(flat, count * rows, cols);
  std::vector<Matrix> out;
  for (std::int64_t e = 0; e < count; ++e) out.push_back(rows_of(all, e * rows, rows));
  return out;
}

// A sparse layer's tensor names: Hugging Face's two conventions, and GGUF's.
struct HfExpertNames {
  const char *block, *gate, *up, *down;
};
constexpr HfExpertNames kHfExperts[] = {{"block_sparse_moe", "w1", "w3", "w2"},        // Mixtral
                                        {"mlp", "gate_proj", "up_proj", "down_proj"}};  // Qwen3-MoE
std::string hf_router(std::int64_t layer, const HfExpertNames& n) {
  return fmt::format("model.layers.{}.{}.gate.weight", layer, n.block);
}
std::string hf_expert(std::int64_t layer, const HfExpertNames& n, std::int64_t e, const char* which) {
  return fmt::format("model.layers.{}.{}.experts.{}.{}.weight", layer, n.block, e, which);
}
std::string gguf_moe(std::int64_t layer, const char* what) { return fmt::format("blk.{}.{}.weight", layer, what); }
const HfExpertNames* hf_experts_of(const format::ModelSource& source, std::int64_t layer) {
  for (const auto& n : kHfExperts)
    if (source.find(hf_router(layer, n))) return &n;
  return nullptr;
}

std::vector<float> vector_of(const SourceTensor& t, std::int64_t size) {
  std::uint64_t elements = 1;
  for (auto d : t.shape) elements *= d;
  if (elements != static_cast<std::uint64_t>(size))
    fail("tensor {}: shape {} where the model needs {} elements", t.name, shape_text(t.shape), size);
  const auto traits = traits_of(t);
  std::vector<float> v(static_cast<std::size_t>(size));
  const auto bytes = quant::row_bytes(traits, elements);
  if (!bytes || t.data.size() < *bytes) fail("tensor {}: data shorter than its shape", t.name);
  quant::decode_to_f32(traits.type, t.data.first(*bytes), v);
  return v;
}

}  // namespace

const std::vector<RoleNames>& layer_roles(Family family) {
  static const std::vector<RoleNames> llama = {
      {Role::AttnNorm, "input_layernorm.weight", "attn_norm.weight"},
      {Role::AttnQ, "self_attn.q_proj.weight", "attn_q.weight"},
      {Role::AttnK, "self_attn.k_proj.weight", "attn_k.weight"},
      {Role::AttnV, "self_attn.v_proj.weight", "attn_v.weight"},
      {Role::AttnOut, "self_attn.o_proj.weight", "attn_output.weight"},
      {Role::AttnQBias, "self_attn.q_proj.bias", "attn_q.bias"},
      {Role::AttnKBias, "self_attn.k_proj.bias", "attn_k.bias"},
      {Role::AttnVBias, "self_attn.v_proj.bias", "attn_v.bias"},
      {Role::AttnQNorm, "self_attn.q_norm.weight", "attn_q_norm.weight"},
      {Role::AttnKNorm, "self_attn.k_norm.weight", "attn_k_norm.weight"},
      {Role::FfnNorm, "post_attention_layernorm.weight", "ffn_norm.weight"},
      {Role::FfnGate, "mlp.gate_proj.weight", "ffn_gate.weight"},
      {Role::FfnUp, "mlp.up_proj.weight", "ffn_up.weight"},
      {Role::FfnDown, "mlp.down_proj.weight", "ffn_down.weight"},
  };
  // llama.cpp's names: attn_qkv, and ffn_up holding gate then up.
  static const std::vector<RoleNames> phi3 = {
      {Role::AttnNorm, "input_layernorm.weight", "attn_norm.weight"},
      {Role::AttnQkv, "self_attn.qkv_proj.weight", "attn_qkv.weight"},
      {Role::AttnOut, "self_attn.o_proj.weight", "attn_output.weight"},
      {Role::FfnNorm, "post_attention_layernorm.weight", "ffn_norm.weight"},
      {Role::FfnGateUp, "mlp.gate_up_proj.weight", "ffn_up.weight"},
      {Role::FfnDown, "mlp.down_proj.weight", "ffn_down.weight"},
  };
  static const std::vector<RoleNames> gemma = {
      {Role::AttnNorm, "input_layernorm.weight", "attn_norm.weight"},
      {Role::AttnQ, "self_attn.q_proj.weight", "attn_q.weight"},
      {Role::AttnK, "self_attn.k_proj.weight", "attn_k.weight"},
      {Role::AttnV, "self_attn.v_proj.weight", "attn_v.weight"},
      {Role::AttnOut, "self_attn.o_proj.weight", "attn_output.weight"},
      {Role::AttnQNorm, "self_attn.q_norm.weight", "attn_q_norm.weight"},
      {Role::AttnKNorm, "self_attn.k_norm.weight", "attn_k_norm.weight"},
      {Role::AttnPostNorm, "post_attention_layernorm.weight", "post_attention_norm.weight"},
      {Role::FfnNorm, "pre_feedforward_layernorm.weight", "ffn_norm.weight"},
      {Role::FfnGate, "mlp.gate_proj.weight", "ffn_gate.weight"},
      {Role::FfnUp, "mlp.up_proj.weight", "ffn_up.weight"},
      {Role::FfnDown, "mlp.down_proj.weight", "ffn_down.weight"},
      {Role::FfnPostNorm, "post_feedforward_layernorm.weight", "post_ffw_norm.weight"},
  };
  switch (family) {
    case Family::Phi3: return phi3;
    case Family::Gemma2:
    case Family::Gemma3: return gemma;
    default: return llama;
  }
}

bool is_norm(Role role) {
  return role == Role::AttnNorm || role == Role::FfnNorm || role == Role::AttnQNorm || role == Role::AttnKNorm ||
         role == Role::AttnPostNorm || role == Role::FfnPostNorm;
}

std::string layer_tensor_name(bool gguf, std::int64_t layer, const RoleNames& role) {
  return gguf ? fmt::format("blk.{}.{}", layer, role.gguf) : fmt::format("model.layers.{}.{}", layer, role.hf);
}

std::vector<const format::SourceTensor*> layer_tensors(const format::ModelSource& source, std::int64_t layer,
                                                       Family family) {
  const Naming naming(source);
  std::vector<const format::SourceTensor*> out;
  for (const RoleNames& r : layer_roles(family))
    if (const auto* t = source.find(naming.layer(layer, r))) out.push_back(t);
  for (const auto* t : expert_tensors(source, layer)) out.push_back(t);
  return out;
}

std::vector<const format::SourceTensor*> expert_tensors(const format::ModelSource& source, std::int64_t layer) {
  std::vector<const format::SourceTensor*> out;
  if (const auto* router = source.find(gguf_moe(layer, "ffn_gate_inp"))) {
    out.push_back(router);
    for (const char* what : {"ffn_gate_exps", "ffn_up_exps", "ffn_down_exps"})
      if (const auto* t = source.find(gguf_moe(layer, what))) out.push_back(t);
  } else if (const auto* n = hf_experts_of(source, layer)) {
    out.push_back(source.find(hf_router(layer, *n)));
    for (std::int64_t e = 0;; ++e) {
      const std::size_t before = out.size();
      for (const char* which : {n->gate, n->up, n->down})
        if (const auto* t = source.find(hf_expert(layer, *n, e, which))) out.push_back(t);
      if (out.size() == before) break;
    }
  }
  return out;
}

std::vector<const Matrix*> LayerWeights::matrices() const {
  std::vector<const Matrix*> ms = {&q, &k, &v, &this->out};
  if (!moe()) {
    ms.insert(ms.end(), {&gate, &up, &down});
    return ms;
  }
  ms.push_back(&router);
  for (std::size_t e = 0; e < expert_gate.size(); ++e) ms.insert(ms.end(), {&expert_gate[e], &expert_up[e], &expert_down[e]});
  return ms;
}

std::vector<Matrix*> LayerWeights::matrices() {
  std::vector<Matrix*> out;
  for (const Matrix* m : std::as_const(*this).matrices()) out.push_back(const_cast<Matrix*>(m));
  return out;
}

ModelWeights::ModelWeights(const format::ModelSource& source, const ModelSpec& s) {
  const Naming naming(source);
  auto need = [&](const std::string& name) -> const SourceTensor& {
    const auto* t = source.find(name);
    if (!t) fail("the model has no tensor {} (a {} model needs it)", name, family_name(s.family));
    return *t;
  };
  const std::int64_t q_width = s.heads * s.head_dim, kv_width = s.kv_heads * s.head_dim;

  globals.embedding = matrix_of(need(naming.gguf ? kGgufEmbedding : kHfEmbedding), s.vocab, s.hidden);
  // Gemma's norms multiply by 1 + w; GGUF files hold it already, HF files w.
  const float norm_offset = s.norm_adds_one() && !naming.gguf ? 1.0f : 0.0f;
  auto norm_of = [&](const SourceTensor& t, std::int64_t size) {
    auto v = vector_of(t, size);
    for (float& x : v) x += norm_offset;
    return v;
  };
  globals.output_norm = norm_of(need(naming.gguf ? kGgufOutputNorm : kHfOutputNorm), s.hidden);
  const auto* head = source.find(naming.gguf ? kGgufOutput : kHfOutput);
  globals.output = head ? matrix_of(*head, s.vocab, s.hidden) : globals.embedding;  // tied when absent
  if (const auto* f = source.find(kGgufRopeFreqs); f && naming.gguf) globals.rope_freqs = vector_of(*f, s.head_dim / 2);
  bytes_per_token = globals.output.bytes();

  layers.resize(static_cast<std::size_t>(s.layers));
  for (std::int64_t i = 0; i < s.layers; ++i) {
    LayerWeights& l = layers[static_cast<std::size_t>(i)];
    const bool per_head_norms = s.family == Family::Qwen3 || s.family == Family::Gemma3;
    for (const RoleNames& r : layer_roles(s.family)) {
      const std::string name = naming.layer(i, r);
      const auto* t = source.find(name);
      switch (r.role) {
        case Role::AttnNorm: l.attn_norm = norm_of(need(name), s.hidden); break;
        case Role::FfnNorm: l.ffn_norm = norm_of(need(name), s.hidden); break;
        case Role::AttnPostNorm: l.attn_post_norm = norm_of(need(name), s.hidden); break;
        case Role::FfnPostNorm: l.ffn_post_norm = norm_of(need(name), s.hidden); break;
        case Role::AttnQkv: {
          const Matrix qkv = matrix_of(need(name), q_width + 2 * kv_width, s.hidden);
          l.q = rows_of(qkv, 0, q_width);
          l.k = rows_of(qkv, q_width, kv_width);
          l.v = rows_of(qkv, q_width + kv_width, kv_width);
          break;
        }
        case Role::FfnGateUp: {
          const Matrix gate_up = matrix_of(need(name), 2 * s.ffn, s.hidden);
          l.gate = rows_of(gate_up, 0, s.ffn);
          l.up = rows_of(gate_up, s.ffn, s.ffn);
          break;
        }
        case Role::AttnQ: l.q = matrix_of(need(name), q_width, s.hidden); break;
        case Role::AttnK: l.k = matrix_of(need(name), kv_width, s.hidden); break;
        case Role::AttnV: l.v = matrix_of(need(name), kv_width, s.hidden); break;
        case Role::AttnOut: l.out = matrix_of(need(name), s.hidden, q_width); break;
        case Role::FfnGate: if (!s.moe()) l.gate = matrix_of(need(name), s.ffn, s.hidden); break;
        case Role::FfnUp: if (!s.moe()) l.up = matrix_of(need(name), s.ffn, s.hidden); break;
        case Role::FfnDown: if (!s.moe()) l.down = matrix_of(need(name), s.hidden, s.ffn); break;
        // Biases are optional for every family (Qwen2 has them, some Llama fine-tunes too).
        case Role::AttnQBias: if (t) l.q_bias = vector_of(*t, q_width); break;
        case Role::AttnKBias: if (t) l.k_bias = vector_of(*t, kv_width); break;
        case Role::AttnVBias: if (t) l.v_bias = vector_of(*t, kv_width); break;
        case Role::AttnQNorm: if (per_head_norms) l.q_norm = norm_of(need(name), s.head_dim); break;
        case Role::AttnKNorm: if (per_head_norms) l.k_norm = norm_of(need(name), s.head_dim); break;
      }
    }
    if (s.family == Family::Qwen2 && (l.q_bias.empty() || l.k_bias.empty() || l.v_bias.empty()))
      fail("layer {}: a qwen2 model needs q, k and v biases", i);
    if (s.moe()) {
      // The router and every expert; a token reads the router and experts_used of them.
      const std::int64_t e_count = s.experts, ff = s.expert_ffn;
      if (naming.gguf) {
        l.router = matrix_of(need(gguf_moe(i, "ffn_gate_inp")), e_count, s.hidden);
        l.expert_gate = stacked_of(need(gguf_moe(i, "ffn_gate_exps")), e_count, ff, s.hidden);
        l.expert_up = stacked_of(need(gguf_moe(i, "ffn_up_exps")), e_count, ff, s.hidden);
        l.expert_down = stacked_of(need(gguf_moe(i, "ffn_down_exps")), e_count, s.hidden, ff);
      } else {
        const HfExpertNames* n = hf_experts_of(source, i);
        if (!n) fail("layer {}: a mixture-of-experts model needs a router (model.layers.{}.mlp.gate.weight or "
                     "block_sparse_moe.gate.weight)", i, i);
        l.router = matrix_of(need(hf_router(i, *n)), e_count, s.hidden);
        for (std::int64_t e = 0; e < e_count; ++e) {
          l.expert_gate.push_back(matrix_of(need(hf_expert(i, *n, e, n->gate)), ff, s.hidden));
          l.expert_up.push_back(matrix_of(need(hf_expert(i, *n, e, n->up)), ff, s.hidden));
          l.expert_down.push_back(matrix_of(need(hf_expert(i, *n, e, n->down)), s.hidden, ff));
        }
      }
      for (const Matrix* m : {&l.q, &l.k, &l.v, &l.out, &l.router}) bytes_per_token += m->bytes();
      const std::uint64_t expert = l.expert_gate[0].bytes() + l.expert_up[0].bytes() + l.expert_down[0].bytes();
      bytes_per_token += expert * static_cast<std::uint64_t>(s.experts_used);
    } else {
      for (const Matrix* m : l.matrices()) bytes_per_token += m->bytes();
    }
  }
}

ResidentWeights::ResidentWeights(const format::ModelSource& source, const ModelSpec& s) : weights_(source, s) {
  // Resident means mapped in now: one call per matrix maps its pages (from the page cache or
  // the disk) instead of a fault every few pages inside the first forward pass (as llama.cpp
  // maps with MAP_POPULATE). A 33-token first prompt on a 1.1B Q4_0 file: 161-185 -> 174-224 t/s.
  for (const LayerWeights& l : weights_.layers)
    for (const Matrix* m : l.matrices()) MappedFile::populate({m->data, m->bytes()});
  MappedFile::populate({weights_.globals.output.data, weights_.globals.output.bytes()});
}

}  // namespace aero::model
