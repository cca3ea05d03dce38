#include "aero/model/spec.h"

#include <cmath>
#include <numbers>

#include "aero/error.h"

namespace aero::model {
namespace {

Family family_of(std::string_view name, std::string_view where) {
  // Hugging Face model_type / GGUF general.architecture.
  if (name == "llama" || name == "mistral" || name == "mixtral") return Family::Llama;
  if (name == "qwen2") return Family::Qwen2;
  if (name == "qwen3" || name == "qwen3_moe" || name == "qwen3moe") return Family::Qwen3;
  if (name == "phi3") return Family::Phi3;
  if (name == "gemma2") return Family::Gemma2;
  if (name == "gemma3" || name == "gemma3_text") return Family::Gemma3;
  fail("{}: unsupported architecture '{}' (aero runs llama, mistral, mixtral, qwen2, qwen3, qwen3_moe, phi3, gemma2 and "
       "gemma3)", where,
       name);
}

std::int64_t positive(std::int64_t v, std::string_view key, std::string_view where) {
  if (v <= 0 || v > (std::int64_t{1} << 32)) fail("{}: {} = {} is out of range", where, key, v);
  return v;
}

void check(const ModelSpec& s, std::string_view where) {
  if (s.moe() && (s.experts_used < 1 || s.experts_used > s.experts || s.expert_ffn < 1))
    fail("{}: {} of {} experts per token (each {} wide) is not a mixture of experts", where, s.experts_used, s.experts,
         s.expert_ffn);
  if (s.heads % s.kv_heads != 0)
    fail("{}: {} attention heads cannot share {} key/value heads evenly", where, s.heads, s.kv_heads);
  if (s.head_dim % 2 != 0) fail("{}: head dimension {} is odd; rotary embedding needs pairs", where, s.head_dim);
  if (!(s.norm_eps > 0) || !(s.rope_theta > 0)) fail("{}: norm epsilon and rope theta must be positive", where);
  if (s.rope_scaling.kind != RopeScaling::Kind::None && !(s.rope_scaling.factor > 0))
    fail("{}: rope scaling factor must be positive", where);
  for (double v : {s.attention_scale, s.attn_softcap, s.final_softcap, s.rope_theta_local, s.embedding_scale})
    if (!(v >= 0) || std::isinf(v)) fail("{}: attention scale, soft-caps and rope bases must be finite and positive", where);
  if (s.sliding_window < 0) fail("{}: sliding window {} is negative", where, s.sliding_window);
  if (s.sliding_window > 0 && s.sliding_layers.size() != static_cast<std::size_t>(s.layers))
    fail("{}: {} layer types for {} layers", where, s.sliding_layers.size(), s.layers);
}

// Gemma's facts that are the same whatever the file says: the embedding scaled by √hidden
// (rounded to f32, as transformers and llama.cpp compute it) and the GELU-tanh gate.
void gemma_facts(ModelSpec& s) {
  s.embedding_scale = static_cast<float>(std::sqrt(static_cast<double>(s.hidden)));
  s.activation = Activation::GeluTanh;
}

// Gemma's layer pattern as llama.cpp reads a period: the last layer of every `period` global,
// the others sliding (a period of 0: every layer slides).
std::vector<bool> sliding_every(std::int64_t layers, std::int64_t period) {
  std::vector<bool> v(static_cast<std::size_t>(layers));
  for (std::int64_t i = 0; i < layers; ++i) v[static_cast<std::size_t>(i)] = period <= 0 || (i + 1) % period != 0;
  return v;
}

// Typed reads of optional config.json fields: a field of the wrong type is the file's error,
// said in one line (nlohmann's own value() would throw its type_error instead).
std::string text_field(const Json& obj, const char* key, const std::string& fallback) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return fallback;
  if (!it->is_string()) fail("config.json: '{}' must be a string", key);
  return it->get<std::string>();
}

double number_field(const Json& obj, const char* key, double fallback) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return fallback;
  if (!it->is_number()) fail("config.json: '{}' must be a number", key);
  return it->get<double>();
}

// rope_parameters (transformers 5) or rope_scaling (older configs); null or "default" is none.
RopeScaling hf_rope_scaling(const Json& r) {
  RopeScaling s;
  if (!r.is_object()) return s;
  const std::string type = text_field(r, "rope_type", text_field(r, "type", "default"));
  if (type == "default") return s;
  if (type == "linear") s.kind = RopeScaling::Kind::Linear;
  else if (type == "llama3") s.kind = RopeScaling::Kind::Llama3;
  else fail("config.json: rope scaling '{}' is not supported yet (default, linear and llama3 are)", type);
  s.factor = number_field(r, "factor", 1.0);
  s.low_freq_factor = number_field(r, "low_freq_factor", 1.0);
  s.high_freq_factor = number_field(r, "high_freq_factor", 4.0);
  s.original_context = number_field(r, "original_max_position_embeddings", 8192.0);
  return s;
}

std::vector<std::int32_t> ids_of(const Json& v) {
  std::vector<std::int32_t> ids;
  if (v.is_number_integer()) ids.push_back(v.get<std::int32_t>());
  if (v.is_array())
    for (const auto& e : v)
      if (e.is_number_integer()) ids.push_back(e.get<std::int32_t>());
  return ids;
}

}  // namespace

std::string_view family_name(Family family) {
  switch (family) {
    case Family::Llama: return "llama";
    case Family::Qwen2: return "qwen2";
    case Family::Qwen3: return "qwen3";
    case Family::Phi3: return "phi3";
    case Family::Gemma2: return "gemma2";
    case Family::Gemma3: return "gemma3";
  }
  return "?";
}

std::int64_t ModelSpec::forward_macs(std::int64_t n) const {
  const std::int64_t q_width = heads * head_dim, kv_width = kv_heads * head_dim;
  // A sparse block runs its router and the experts a token is routed to.
  const std::int64_t ffn_macs = moe() ? hidden * (experts + 3 * experts_used * expert_ffn) : 3 * hidden * ffn;
  const std::int64_t per_layer = hidden * (2 * q_width + 2 * kv_width) + ffn_macs;
  // Token t attends to t + 1 positions: q·k for each, then the weighted sum of as many values.
  const std::int64_t attention = layers * heads * head_dim * 2 * (n * (n + 1) / 2);
  return n * layers * per_layer + attention + hidden * vocab;  // logits of the last token only
}

std::vector<double> ModelSpec::rope_inv_freq(const std::vector<float>& freq_factors) const {
  const std::int64_t pairs = head_dim / 2;
  std::vector<double> inv(static_cast<std::size_t>(pairs));
  for (std::int64_t i = 0; i < pairs; ++i) {
    double f = 1.0 / std::pow(rope_theta, static_cast<double>(2 * i) / static_cast<double>(head_dim));
    const auto& s = rope_scaling;
    if (s.kind == RopeScaling::Kind::Linear) f /= s.factor;
    if (s.kind == RopeScaling::Kind::Llama3) {
      // Long wavelengths are slowed by `factor`, short ones kept, the band between blended.
      const double wavelen = 2 * std::numbers::pi / f;
      const double low_wavelen = s.original_context / s.low_freq_factor;
      const double high_wavelen = s.original_context / s.high_freq_factor;
      if (wavelen > low_wavelen) {
        f /= s.factor;
      } else if (wavelen >= high_wavelen) {
        const double smooth = (s.original_context / wavelen - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
        f = (1 - smooth) * f / s.factor + smooth * f;
      }
    }
    if (!freq_factors.empty()) f /= freq_factors[static_cast<std::size_t>(i)];
    inv[static_cast<std::size_t>(i)] = f;
  }
  return inv;
}

std::vector<double> ModelSpec::rope_inv_freq_local() const {
  if (rope_theta_local <= 0) return {};
  ModelSpec local = *this;
  local.rope_theta = rope_theta_local;
  local.rope_scaling = {};
  return local.rope_inv_freq();
}

ModelSpec spec_from_hf_config(const Json& c) {
  const std::string where = "config.json";
  if (!c.is_object()) fail("{}: not a JSON object", where);
  ModelSpec s;
  const std::string type = text_field(c, "model_type", "");
  if (type.empty()) fail("{}: no model_type", where);
  s.family = family_of(type, where);
  s.architecture = type;
  auto integer = [&](const char* key) -> std::int64_t {
    auto it = c.find(key);
    if (it == c.end() || !it->is_number_integer()) fail("{}: missing integer '{}'", where, key);
    return positive(it->get<std::int64_t>(), key, where);
  };
  s.vocab = integer("vocab_size");
  s.hidden = integer("hidden_size");
  s.layers = integer("num_hidden_layers");
  s.heads = integer("num_attention_heads");
  s.kv_heads = c.contains("num_key_value_heads") && c["num_key_value_heads"].is_number_integer()
                   ? integer("num_key_value_heads") : s.heads;
  s.head_dim = c.contains("head_dim") && c["head_dim"].is_number_integer() ? integer("head_dim") : s.hidden / s.heads;
  s.ffn = integer("intermediate_size");
  s.context = c.contains("max_position_embeddings") ? integer("max_position_embeddings") : 4096;
  s.norm_eps = number_field(c, "rms_norm_eps", 1e-6);
  const bool gemma = s.family == Family::Gemma2 || s.family == Family::Gemma3;
  const std::string act = text_field(c, "hidden_activation", text_field(c, "hidden_act", gemma ? "gelu_pytorch_tanh" : "silu"));
  if (act != (gemma ? "gelu_pytorch_tanh" : "silu"))
    fail("{}: activation '{}' is not supported for {} (silu for llama-like models, gelu_pytorch_tanh for gemma is)",
         where, act, type);
  if (c.contains("rope_parameters") && c["rope_parameters"].is_object()) {
    // transformers 5: one set, or one per layer type (Gemma 3: full_attention, sliding_attention).
    const Json& r = c["rope_parameters"];
    const Json& full = r.contains("full_attention") ? r["full_attention"] : r;
    s.rope_theta = number_field(full, "rope_theta", 10000.0);
    s.rope_scaling = hf_rope_scaling(full);
    if (r.contains("sliding_attention") && r["sliding_attention"].is_object()) {
      if (hf_rope_scaling(r["sliding_attention"]).kind != RopeScaling::Kind::None)
        fail("{}: rope scaling of sliding layers is not supported", where);
      s.rope_theta_local = number_field(r["sliding_attention"], "rope_theta", 10000.0);
    }
    if (number_field(r, "partial_rotary_factor", 1.0) != 1.0)
      fail("{}: a partial rotary factor is not supported", where);
  } else {
    s.rope_theta = number_field(c, "rope_theta", 10000.0);
    if (c.contains("rope_scaling")) s.rope_scaling = hf_rope_scaling(c["rope_scaling"]);
    s.rope_theta_local = number_field(c, "rope_local_base_freq", 0.0);
  }
  if (number_field(c, "partial_rotary_factor", 1.0) != 1.0) fail("{}: a partial rotary factor is not supported", where);
  if (s.family != Family::Gemma3) s.rope_theta_local = 0;
  if (gemma) {
    gemma_facts(s);
    if (double scalar = number_field(c, "query_pre_attn_scalar", 0.0); scalar > 0) s.attention_scale = 1.0 / std::sqrt(scalar);
    s.attn_softcap = number_field(c, "attn_logit_softcapping", 0.0);
    s.final_softcap = number_field(c, "final_logit_softcapping", 0.0);
  }
  if (s.family == Family::Phi3 || gemma) {
    // Sliding windows: Phi-3 on every layer, Gemma per layer_types (else its default pattern).
    s.sliding_window = static_cast<std::int64_t>(number_field(c, "sliding_window", 0.0));
    if (s.sliding_window > 0) {
      s.sliding_layers.assign(static_cast<std::size_t>(s.layers), true);
      if (auto it = c.find("layer_types"); gemma && it != c.end() && it->is_array()) {
        s.sliding_layers.clear();
        for (const auto& t : *it) {
          if (!t.is_string() || (t != "sliding_attention" && t != "full_attention"))
            fail("{}: layer_types holds something other than sliding_attention and full_attention", where);
          s.sliding_layers.push_back(t == "sliding_attention");
        }
      } else if (gemma) {
        const double period = number_field(c, "sliding_window_pattern", number_field(c, "_sliding_window_pattern", 0.0));
        s.sliding_layers = sliding_every(s.layers, s.family == Family::Gemma2 ? 2 : period > 0 ? static_cast<std::int64_t>(period) : 6);
      }
    }
  }
  if (type == "mixtral" || type == "qwen3_moe") {
    // Mixtral's experts are as wide as its intermediate_size; Qwen3-MoE's have their own. Both
    // renormalize the chosen experts' weights (Qwen3-MoE when norm_topk_prob, its default).
    s.experts = c.contains("num_local_experts") ? integer("num_local_experts") : integer("num_experts");
    s.experts_used = integer("num_experts_per_tok");
    s.expert_ffn = type == "mixtral" ? s.ffn : integer("moe_intermediate_size");
    if (type == "qwen3_moe") {
      auto norm = c.find("norm_topk_prob");
      s.normalize_routing = norm == c.end() || !norm->is_boolean() || norm->get<bool>();
      const double step = number_field(c, "decoder_sparse_step", 1.0);
      auto dense = c.find("mlp_only_layers");
      if (step != 1.0 || (dense != c.end() && dense->is_array() && !dense->empty()))
        fail("{}: dense layers among the sparse ones (decoder_sparse_step, mlp_only_layers) are not supported", where);
    }
  }
  if (c.contains("bos_token_id") && c["bos_token_id"].is_number_integer()) s.bos_id = c["bos_token_id"].get<std::int32_t>();
  if (c.contains("eos_token_id")) s.eos_ids = ids_of(c["eos_token_id"]);
  s.rope_layout = RopeLayout::HalfSplit;
  check(s, where);
  return s;
}

ModelSpec spec_from_gguf(const format::GgufMetadata& m) {
  const std::string where = "GGUF metadata";
  const auto arch = m.get_string("general.architecture");
  if (!arch) fail("{}: no general.architecture", where);
  ModelSpec s;
  s.family = family_of(*arch, where);
  s.architecture = *arch;
  auto integer = [&](const std::string& key) -> std::int64_t {
    auto v = m.get_int(*arch + "." + key);
    if (!v) fail("{}: missing {}.{}", where, *arch, key);
    return positive(*v, key, where);
  };
  auto optional_int = [&](const std::string& key, std::int64_t fallback) {
    auto v = m.get_int(*arch + "." + key);
    return v ? positive(*v, key, where) : fallback;
  };
  s.hidden = integer("embedding_length");
  s.layers = integer("block_count");
  s.heads = integer("attention.head_count");
  s.kv_heads = optional_int("attention.head_count_kv", s.heads);
  s.head_dim = optional_int("attention.key_length", s.hidden / s.heads);
  s.ffn = integer("feed_forward_length");
  s.context = optional_int("context_length", 4096);
  s.norm_eps = m.get_float(*arch + ".attention.layer_norm_rms_epsilon").value_or(1e-5);
  s.rope_theta = m.get_float(*arch + ".rope.freq_base").value_or(10000.0);
  if (auto type = m.get_string(*arch + ".rope.scaling.type"); type && *type != "none") {
    if (*type != "linear") fail("{}: rope scaling '{}' is not supported yet (linear is)", where, *type);
    s.rope_scaling.kind = RopeScaling::Kind::Linear;
    s.rope_scaling.factor = m.get_float(*arch + ".rope.scaling.factor").value_or(1.0);
  }
  if (auto experts = m.get_int(*arch + ".expert_count"); experts && *experts > 0) {
    s.experts = positive(*experts, "expert_count", where);
    s.experts_used = integer("expert_used_count");
    s.expert_ffn = optional_int("expert_feed_forward_length", s.ffn);
  }
  if (auto v = m.get_int(*arch + ".vocab_size")) s.vocab = positive(*v, "vocab_size", where);
  else if (const auto* tokens = m.find("tokenizer.ggml.tokens"); tokens && tokens->value.is_array())
    s.vocab = static_cast<std::int64_t>(tokens->value.size());
  if (auto v = m.get_int("tokenizer.ggml.bos_token_id")) s.bos_id = static_cast<std::int32_t>(*v);
  for (const char* key : {"tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id", "tokenizer.ggml.eom_token_id"})
    if (auto v = m.get_int(key)) s.eos_ids.push_back(static_cast<std::int32_t>(*v));
  if (s.family == Family::Phi3) {
    // llama.cpp leaves Phi-3's window off; aero runs it as transformers does.
    s.sliding_window = m.get_int(*arch + ".attention.sliding_window").value_or(0);  // 0: none
    if (s.sliding_window > 0) s.sliding_layers.assign(static_cast<std::size_t>(s.layers), true);
  }
  if (s.family == Family::Gemma2 || s.family == Family::Gemma3) {
    // As llama.cpp reads them: its defaults, and the attention scale it derives from the size
    // (unless aero's converter wrote the model's own).
    gemma_facts(s);
    const bool gemma2 = s.family == Family::Gemma2;
    const bool largest = s.layers == (gemma2 ? 46 : 62);  // the 27B models scale by hidden / heads
    s.attention_scale = m.get_float(*arch + ".attention.scale")
                            .value_or(1.0 / std::sqrt(static_cast<double>(largest ? s.hidden / s.heads : s.head_dim)));
    s.attn_softcap = gemma2 ? m.get_float(*arch + ".attn_logit_softcapping").value_or(50.0) : 0.0;
    s.final_softcap = m.get_float(*arch + ".final_logit_softcapping").value_or(gemma2 ? 30.0 : 0.0);
    s.sliding_window = m.get_int(*arch + ".attention.sliding_window").value_or(gemma2 ? 4096 : 0);  // 0: none
    if (s.sliding_window > 0) {
      const auto* pattern = m.find(*arch + ".attention.sliding_window_pattern");
      if (pattern && pattern->value.is_array()) {
        for (const auto& v : pattern->value) s.sliding_layers.push_back(v.is_boolean() ? v.get<bool>() : v.is_number() && v.get<double>() != 0);
      } else {
        s.sliding_layers = sliding_every(s.layers, m.get_int(*arch + ".attention.sliding_window_pattern").value_or(gemma2 ? 2 : 6));
      }
    }
    if (!gemma2) s.rope_theta_local = m.get_float(*arch + ".rope.freq_base_swa").value_or(10000.0);
  }
  // llama.cpp's converter permutes Q/K rows only for the llama family; others keep HF's layout.
  s.rope_layout = s.family == Family::Llama ? RopeLayout::Interleaved : RopeLayout::HalfSplit;
  check(s, where);
  return s;
}

ModelSpec read_spec(const format::ModelSource& source) {
  const auto& meta = source.metadata();
  ModelSpec s;
  if (meta.gguf && meta.gguf->get_string("general.architecture")) {
    s = spec_from_gguf(*meta.gguf);
  } else if (auto it = meta.hf_files.find("config.json"); it != meta.hf_files.end()) {
    s = spec_from_hf_config(parse_json(it->second, "config.json"));
  } else {
    fail("the model carries no hyper-parameters (no GGUF metadata, no config.json); give them with --config");
  }
  // The tensor names say which convention the weights follow, whatever the metadata says.
  const bool gguf_names = source.find("token_embd.weight") != nullptr;
  if (!gguf_names) s.rope_layout = RopeLayout::HalfSplit;
  else if (s.family == Family::Llama) s.rope_layout = RopeLayout::Interleaved;
  if (const auto* embd = source.find(gguf_names ? "token_embd.weight" : "model.embed_tokens.weight");
      embd && embd->shape.size() == 2) {
    if (s.vocab == 0) s.vocab = static_cast<std::int64_t>(embd->shape[0]);
  }
  if (s.vocab == 0) fail("the model does not say its vocabulary size");
  return s;
}

}  // namespace aero::model
