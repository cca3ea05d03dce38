// Hugging Face → GGUF: what llama.cpp's convert_hf_to_gguf.py does for the families aero
// runs — GGUF tensor names, hyper-parameter keys, Q/K row permutation for llama, and
// llama3 rope scaling as a rope_freqs tensor.
#include <cmath>
#include <cstring>
#include <map>
#include <memory>

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

}  // namespace

std::string gguf_architecture(model::Family family) {
  return family == model::Family::Llama ? "llama" : std::string(model::family_name(family));
}

void put_gguf_hyper_parameters(const model::ModelSpec& spec, const std::string& name, format::GgufMetadata& m) {
  const std::string arch = gguf_architecture(spec.family);
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
  const std::string arch = gguf_architecture(spec.family);
  put_gguf_hyper_parameters(spec, src.metadata().name.empty() ? arch : src.metadata().name, m);
  if (auto vocab = tokenizer::vocab_from_metadata(src.metadata())) {
    if (vocab->algorithm == tokenizer::Algorithm::Bpe && vocab->pre.empty())
      fail("tokenizer.json: its pre-tokenizer regexes are not ones llama.cpp names, so a GGUF could not say them");
    tokenizer::put_gguf_tokenizer(*vocab, m);
  }

  std::vector<OutTensor> out;
  for (const auto& t : tensors) {
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
