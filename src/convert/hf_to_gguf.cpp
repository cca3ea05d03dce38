// Hugging Face → GGUF: what llama.cpp's convert_hf_to_gguf.py does for the families aero
// runs — GGUF tensor names, hyper-parameter keys, Q/K row permutation for llama, and
// llama3 rope scaling as a rope_freqs tensor.
#include <cmath>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <cstdio>
#include <functional>

#include <fmt/format.h>

#include "aero/error.h"
#include "aero/model/spec.h"
#include "aero/model/weights.h"
#include "aero/quant/types.h"
#include "aero/tokenizer/vocab.h"
#include "convert/out_tensor.h"
#include "convert/tensor_names.h"

namespace aero::convert {
namespace {

using format::GgufKv;
using format::GgufType;

void set(format::GgufMetadata& m, const std::string& key, GgufType type, Json value) {
  m.set(GgufKv{key, type, GgufType::U8, std::move(value)});
}

// A sparse layer's HF tensor, by the name's parts: the router, or expert `expert`'s gate (0),
// up (1) or down (2) matrix (Mixtral's w1, w3, w2; Qwen3-MoE's gate_proj, up_proj, down_proj).
struct ExpertPart {
  std::int64_t layer = -1, expert = -1;
  int kind = -1;  // -1: the router
};
std::optional<ExpertPart> expert_part(const std::string& name) {
  ExpertPart p;
  int consumed = 0;
  if (std::sscanf(name.c_str(), "model.layers.%ld.%n", &p.layer, &consumed) != 1 || consumed == 0) return std::nullopt;
  std::string rest = name.substr(static_cast<std::size_t>(consumed));
  for (const char* block : {"block_sparse_moe.", "mlp."}) {
    if (rest.rfind(block, 0) != 0) continue;
    rest = rest.substr(std::strlen(block));
    if (rest == "gate.weight") return p;
    consumed = 0;
    if (std::sscanf(rest.c_str(), "experts.%ld.%n", &p.expert, &consumed) != 1 || consumed == 0) return std::nullopt;
    const std::string which = rest.substr(static_cast<std::size_t>(consumed));
    const char* kinds[3][2] = {{"w1.weight", "gate_proj.weight"}, {"w3.weight", "up_proj.weight"}, {"w2.weight", "down_proj.weight"}};
    for (int k = 0; k < 3; ++k)
      if (which == kinds[k][0] || which == kinds[k][1]) p.kind = k;
    return p.kind >= 0 ? std::optional(p) : std::nullopt;
  }
  return std::nullopt;
}

// The experts of one (layer, kind) as llama.cpp stacks them: one tensor [experts, rows, cols],
// expert 0 first, each expert's bytes as they are (rows are whole blocks when quantized).
OutTensor stacked(const std::string& name, const std::vector<const OutTensor*>& experts) {
  const OutTensor& first = *experts.front();
  OutTensor t{name, first.dtype, first.ggml_type, {experts.size()}, 0, {}};
  t.shape.insert(t.shape.end(), first.shape.begin(), first.shape.end());
  std::vector<std::function<void(const ByteEmitter&)>> parts;
  for (const OutTensor* e : experts) {
    if (e->dtype != first.dtype || e->ggml_type != first.ggml_type || e->shape != first.shape)
      fail("tensor '{}': the experts of '{}' differ in type or shape", e->name, name);
    t.size += e->size;
    parts.push_back(e->produce);
  }
  t.produce = [parts](const ByteEmitter& emit) {
    for (const auto& p : parts) p(emit);
  };
  return t;
}

}  // namespace

bool is_router_tensor(const std::string& name) {
  const auto p = expert_part(name);
  return (p && p->kind < 0) || name.find(".ffn_gate_inp.") != std::string::npos;
}

std::string gguf_architecture(const model::ModelSpec& spec) {
  if (spec.family == model::Family::Qwen3 && spec.moe()) return "qwen3moe";  // llama.cpp's name; Mixtral stays a llama
  return spec.family == model::Family::Llama ? "llama" : std::string(model::family_name(spec.family));
}

void put_gguf_hyper_parameters(const model::ModelSpec& spec, const std::string& name, format::GgufMetadata& m) {
  const std::string arch = gguf_architecture(spec);
  set(m, "general.architecture", GgufType::String, arch);
  set(m, "general.name", GgufType::String, name);
  auto u32 = [&](const std::string& key, std::int64_t v) { set(m, arch + "." + key, GgufType::U32, v); };
  auto f32 = [&](const std::string& key, double v) { set(m, arch + "." + key, GgufType::F32, v); };
  u32("vocab_size", spec.vocab);
  u32("context_length", spec.context);
  u32("embedding_length", spec.hidden);
  u32("block_count", spec.layers);
  u32("feed_forward_length", spec.ffn);
  u32("attention.head_count", spec.heads);
  u32("attention.head_count_kv", spec.kv_heads);
  u32("attention.key_length", spec.head_dim);
  u32("attention.value_length", spec.head_dim);
  u32("rope.dimension_count", spec.head_dim);
  f32("attention.layer_norm_rms_epsilon", spec.norm_eps);
  f32("rope.freq_base", spec.rope_theta);
  if (spec.rope_scaling.kind == model::RopeScaling::Kind::Linear) {
    set(m, arch + ".rope.scaling.type", GgufType::String, "linear");
    f32("rope.scaling.factor", spec.rope_scaling.factor);
  }
  if (spec.moe()) {
    u32("expert_count", spec.experts);
    u32("expert_used_count", spec.experts_used);
    if (spec.expert_ffn != spec.ffn) u32("expert_feed_forward_length", spec.expert_ffn);
  }
  if (spec.bos_id >= 0) set(m, "tokenizer.ggml.bos_token_id", GgufType::U32, spec.bos_id);
  if (!spec.eos_ids.empty()) set(m, "tokenizer.ggml.eos_token_id", GgufType::U32, spec.eos_ids.front());

  using model::Family;
  if (spec.family == Family::Phi3) u32("attention.sliding_window", spec.sliding_window);  // 0: none, as llama.cpp writes
  if (spec.family == Family::Gemma2 || spec.family == Family::Gemma3) {
    if (spec.attn_softcap > 0) f32("attn_logit_softcapping", spec.attn_softcap);
    if (spec.final_softcap > 0) f32("final_logit_softcapping", spec.final_softcap);
    // llama.cpp derives the scale from the model's size; aero reads this key first.
    if (spec.attention_scale > 0) f32("attention.scale", spec.attention_scale);
    if (spec.rope_theta_local > 0) f32("rope.freq_base_swa", spec.rope_theta_local);
    if (spec.sliding_window > 0) {
      u32("attention.sliding_window", spec.sliding_window);
      // Which layers slide, as a bool array (llama.cpp reads one in place of its default period).
      Json pattern = Json::array();
      for (bool b : spec.sliding_layers) pattern.push_back(b);
      m.set(GgufKv{arch + ".attention.sliding_window_pattern", GgufType::Array, GgufType::Bool, std::move(pattern)});
    }
  }
}

std::vector<OutTensor> hf_to_gguf(const format::ModelSource& src, const std::vector<OutTensor>& tensors,
                                  format::GgufMetadata& m) {
  const auto spec = model::spec_from_hf_config(parse_json(src.metadata().hf_files.at("config.json"), "config.json"));
  const std::string arch = gguf_architecture(spec);
  put_gguf_hyper_parameters(spec, src.metadata().name.empty() ? arch : src.metadata().name, m);
  if (auto vocab = tokenizer::vocab_from_metadata(src.metadata())) {
    if (vocab->algorithm == tokenizer::Algorithm::Bpe && vocab->pre.empty())
      fail("tokenizer.json: its pre-tokenizer regexes are not ones llama.cpp names, so a GGUF could not say them");
    tokenizer::put_gguf_tokenizer(*vocab, m);
  }

  std::vector<OutTensor> out;
  // Experts by (layer, kind), stacked at the end; the router renamed.
  std::map<std::pair<std::int64_t, int>, std::map<std::int64_t, const OutTensor*>> experts;
  for (const auto& t : tensors) {
    if (const auto part = spec.moe() ? expert_part(t.name) : std::nullopt) {
      if (part->kind >= 0) {
        experts[{part->layer, part->kind}][part->expert] = &t;
      } else {
        OutTensor g = t;
        g.name = fmt::format("blk.{}.ffn_gate_inp.weight", part->layer);
        out.push_back(std::move(g));
      }
      continue;
    }
    const auto mapping = gguf_name_of(t.name, spec);
    if (!mapping) fail("tensor '{}' has no GGUF name for a {} model", t.name, arch);
    OutTensor g = t;
    g.name = mapping->name;
    if (mapping->offset != 0) {
      // Gemma's norm vectors: as f32 plus the offset, as llama.cpp's converter writes them.
      const auto type = format::ggml_type_of(t.dtype, t.ggml_type);
      std::uint64_t elements = 1;
      for (auto d : t.shape) elements *= d;
      if (!type || t.shape.size() != 1) fail("tensor '{}': a norm vector must be a 1-D float tensor", t.name);
      g.dtype = format::DType::F32;
      g.ggml_type = -1;
      g.size = elements * 4;
      g.produce = [inner = t.produce, type = *type, elements, offset = mapping->offset](const ByteEmitter& emit) {
        std::vector<std::uint8_t> bytes;
        inner([&](std::span<const std::uint8_t> piece) { bytes.insert(bytes.end(), piece.begin(), piece.end()); });
        std::vector<float> values(elements);
        quant::decode_to_f32(type, bytes, values);
        for (float& v : values) v += offset;
        emit({reinterpret_cast<const std::uint8_t*>(values.data()), values.size() * 4});
      };
    }
    if (mapping->permute_heads > 0) {
      const std::uint64_t rows = t.shape.front();
      const std::uint64_t head_dim = rows / static_cast<std::uint64_t>(mapping->permute_heads);
      if (head_dim * static_cast<std::uint64_t>(mapping->permute_heads) != rows || head_dim % 2 != 0)
        fail("tensor '{}': {} rows do not split into {} heads of even size", t.name, rows, mapping->permute_heads);
      // Rows are whole (blocks never straddle them), so quantized rows permute as they are.
      g.produce = [inner = t.produce, rows, head_dim, size = t.size](const ByteEmitter& emit) {
        std::vector<std::uint8_t> whole;
        whole.reserve(size);
        inner([&](std::span<const std::uint8_t> piece) { whole.insert(whole.end(), piece.begin(), piece.end()); });
        const std::size_t row_bytes = whole.size() / rows;
        for (std::uint64_t r = 0; r < rows; ++r)
          emit(std::span(whole).subspan(permuted_source_row(r, head_dim) * row_bytes, row_bytes));
      };
    }
    out.push_back(std::move(g));
  }
  for (const auto& [key, by_expert] : experts) {
    std::vector<const OutTensor*> in_order;
    for (const auto& [e, t] : by_expert) {
      if (e != static_cast<std::int64_t>(in_order.size()) || e >= spec.experts)
        fail("layer {}: expert {} is missing or past the {} experts the config names", key.first, in_order.size(), spec.experts);
      in_order.push_back(t);
    }
    if (static_cast<std::int64_t>(in_order.size()) != spec.experts)
      fail("layer {}: {} experts where the config names {}", key.first, in_order.size(), spec.experts);
    const char* names[] = {"ffn_gate_exps", "ffn_up_exps", "ffn_down_exps"};
    out.push_back(stacked(fmt::format("blk.{}.{}.weight", key.first, names[key.second]), in_order));
  }
  // llama3 rope scaling travels as per-pair divisors of the base frequencies.
  if (spec.rope_scaling.kind == model::RopeScaling::Kind::Llama3) {
    auto base = spec;
    base.rope_scaling = {};
    const auto plain = base.rope_inv_freq(), scaled = spec.rope_inv_freq();
    auto factors = std::make_shared<std::vector<float>>();
    for (std::size_t i = 0; i < plain.size(); ++i) factors->push_back(static_cast<float>(plain[i] / scaled[i]));
    out.push_back({model::kGgufRopeFreqs, format::DType::F32, -1, {factors->size()}, factors->size() * 4,
                   [factors](const ByteEmitter& emit) {
                     emit({reinterpret_cast<const std::uint8_t*>(factors->data()), factors->size() * 4});
                   }});
  }
  return out;
}

}  // namespace aero::convert
