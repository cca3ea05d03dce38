#include "aero/convert/synth.h"

#include <cstring>
#include <map>

#include <fmt/format.h>

#include "aero/error.h"
#include "aero/format/gguf.h"
#include "aero/model/weights.h"
#include "convert/out_tensor.h"
#include "quant/half.h"

namespace aero::convert {
namespace {

struct Shape {
  std::int64_t hidden, layers, heads, kv_heads, head_dim, ffn, vocab, context;
  double theta, eps;
  std::int64_t experts = 0, experts_used = 0, expert_ffn = 0;  // a mixture of experts
};

// Published shapes of the models each preset stands for.
const std::map<std::string, Shape>& presets() {
  static const std::map<std::string, Shape> p = {
      {"llama/tiny", {256, 4, 8, 4, 32, 704, 32000, 2048, 10000, 1e-5}},
      {"llama/1b", {2048, 22, 32, 4, 64, 5632, 32000, 2048, 10000, 1e-5}},      // TinyLlama-1.1B
      {"llama/8b", {4096, 32, 32, 8, 128, 14336, 128256, 8192, 500000, 1e-5}},  // Llama-3-8B
      {"qwen2/tiny", {256, 4, 8, 2, 32, 704, 151936, 4096, 1e6, 1e-6}},
      {"qwen2/1b", {1536, 28, 12, 2, 128, 8960, 151936, 32768, 1e6, 1e-6}},   // Qwen2.5-1.5B
      {"qwen2/8b", {3584, 28, 28, 4, 128, 18944, 152064, 32768, 1e6, 1e-6}},  // Qwen2.5-7B
      {"qwen3/tiny", {256, 4, 8, 4, 64, 704, 151936, 4096, 1e6, 1e-6}},
      {"qwen3/1b", {2048, 28, 16, 8, 128, 6144, 151936, 40960, 1e6, 1e-6}},   // Qwen3-1.7B
      {"qwen3/8b", {4096, 36, 32, 8, 128, 12288, 151936, 40960, 1e6, 1e-6}},  // Qwen3-8B
      {"mixtral/tiny", {256, 4, 8, 4, 32, 704, 32000, 2048, 1e6, 1e-5, 4, 2, 704}},
      {"mixtral/8b", {4096, 32, 32, 8, 128, 14336, 32000, 32768, 1e6, 1e-5, 8, 2, 14336}},  // Mixtral-8x7B
      {"qwen3moe/tiny", {256, 4, 8, 4, 64, 704, 151936, 4096, 1e6, 1e-6, 8, 2, 128}},
      {"qwen3moe/1b", {1024, 24, 16, 4, 64, 3072, 151936, 40960, 1e6, 1e-6, 64, 8, 384}},  // a quarter of Qwen3-30B-A3B's width
      {"qwen3moe/8b", {2048, 48, 32, 4, 128, 6144, 151936, 40960, 1e6, 1e-6, 128, 8, 768}},  // Qwen3-30B-A3B
  };
  return p;
}

// splitmix64: fast, and every tensor gets its own stream from (seed, tensor index).
struct Noise {
  std::uint64_t state;
  float next() {  // uniform in [-0.0346, 0.0346]: standard deviation 0.02
    std::uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return (static_cast<float>(z >> 40) / 16777216.0f * 2.0f - 1.0f) * 0.034641f;
  }
};

struct Planned {
  std::string name;
  std::vector<std::uint64_t> shape;  // row-major
  bool is_norm;                      // ones, f32
};

}  // namespace

model::ModelSpec synth_spec(const std::string& arch, const std::string& preset) {
  auto it = presets().find(arch + "/" + preset);
  if (it == presets().end())
    fail("no synthetic preset '{}' for '{}' (architectures: llama, qwen2, qwen3, mixtral, qwen3moe; presets: tiny, 1b, 8b)",
         preset, arch);
  const Shape& s = it->second;
  model::ModelSpec spec;
  spec.family = arch == "llama" || arch == "mixtral" ? model::Family::Llama
                : arch == "qwen2"                    ? model::Family::Qwen2
                                                     : model::Family::Qwen3;
  spec.architecture = arch;
  spec.experts = s.experts, spec.experts_used = s.experts_used, spec.expert_ffn = s.expert_ffn;
  spec.hidden = s.hidden, spec.layers = s.layers, spec.heads = s.heads, spec.kv_heads = s.kv_heads;
  spec.head_dim = s.head_dim, spec.ffn = s.ffn, spec.vocab = s.vocab, spec.context = s.context;
  spec.rope_theta = s.theta, spec.norm_eps = s.eps;
  return spec;
}

ConvertSummary synthesize(const std::filesystem::path& out, const SynthOptions& options) {
  auto spec = synth_spec(options.arch, options.preset);
  auto traits = quant::type_traits(static_cast<std::uint32_t>(options.type));
  const bool float_type = options.type == quant::GgmlType::F32 || options.type == quant::GgmlType::F16 ||
                          options.type == quant::GgmlType::BF16;
  if (!traits || (!float_type && !traits->encode))
    fail("synth writes F32, F16, BF16 or a type aero can quantize to (Q8_0, Q4_0, Q4_1, Q5_0, Q5_1)");

  // The tokenizer section of the vocab GGUF, its special ids winning over the spec's.
  format::GgufMetadata tokenizer;
  if (!options.vocab.empty()) {
    const auto vocab = format::GgufFile::open(options.vocab);  // bound: the loop reads into it
    for (const auto& kv : vocab.metadata().entries)
      if (kv.key.starts_with("tokenizer.")) tokenizer.set(kv);
    const auto* tokens = tokenizer.find("tokenizer.ggml.tokens");
    if (!tokens || !tokens->value.is_array()) fail("{}: has no tokenizer.ggml.tokens", options.vocab.string());
    spec.vocab = static_cast<std::int64_t>(tokens->value.size());
  }
  format::GgufMetadata metadata;
  put_gguf_hyper_parameters(spec, fmt::format("synthetic {} {}", options.arch, options.preset), metadata);
  for (const auto& kv : tokenizer.entries) metadata.set(kv);

  const auto h = static_cast<std::uint64_t>(spec.hidden), f = static_cast<std::uint64_t>(spec.ffn);
  const auto q = static_cast<std::uint64_t>(spec.heads * spec.head_dim), kv = static_cast<std::uint64_t>(spec.kv_heads * spec.head_dim);
  std::vector<Planned> plan{{model::kGgufEmbedding, {static_cast<std::uint64_t>(spec.vocab), h}, false}};
  for (std::int64_t i = 0; i < spec.layers; ++i) {
    auto name = [&](const char* role) { return fmt::format("blk.{}.{}", i, role); };
    plan.push_back({name("attn_norm.weight"), {h}, true});
    plan.push_back({name("attn_q.weight"), {q, h}, false});
    plan.push_back({name("attn_k.weight"), {kv, h}, false});
    plan.push_back({name("attn_v.weight"), {kv, h}, false});
    if (spec.family == model::Family::Qwen2) {
      plan.push_back({name("attn_q.bias"), {q}, false});
      plan.push_back({name("attn_k.bias"), {kv}, false});
      plan.push_back({name("attn_v.bias"), {kv}, false});
    }
    if (spec.family == model::Family::Qwen3) {
      plan.push_back({name("attn_q_norm.weight"), {static_cast<std::uint64_t>(spec.head_dim)}, true});
      plan.push_back({name("attn_k_norm.weight"), {static_cast<std::uint64_t>(spec.head_dim)}, true});
    }
    plan.push_back({name("attn_output.weight"), {h, q}, false});
    plan.push_back({name("ffn_norm.weight"), {h}, true});
    if (spec.moe()) {
      // llama.cpp's layout: the router, and each kind of expert matrix stacked [experts, rows, cols].
      const auto e = static_cast<std::uint64_t>(spec.experts), ef = static_cast<std::uint64_t>(spec.expert_ffn);
      plan.push_back({name("ffn_gate_inp.weight"), {e, h}, false});
      plan.push_back({name("ffn_gate_exps.weight"), {e, ef, h}, false});
      plan.push_back({name("ffn_up_exps.weight"), {e, ef, h}, false});
      plan.push_back({name("ffn_down_exps.weight"), {e, h, ef}, false});
      continue;
    }
    plan.push_back({name("ffn_gate.weight"), {f, h}, false});
    plan.push_back({name("ffn_up.weight"), {f, h}, false});
    plan.push_back({name("ffn_down.weight"), {h, f}, false});
  }
  plan.push_back({model::kGgufOutputNorm, {h}, true});
  if (spec.family == model::Family::Llama) plan.push_back({model::kGgufOutput, {static_cast<std::uint64_t>(spec.vocab), h}, false});

  std::vector<format::GgufTensorWrite> tensors;
  std::uint64_t total = 0;
  for (std::size_t index = 0; index < plan.size(); ++index) {
    const Planned& p = plan[index];
    // Matrices (and stacked experts) in the asked type; norms and the router (which picks the
    // experts: llama-quantize keeps it float too) in f32.
    const bool matrix = p.shape.size() >= 2 && !p.is_norm && !is_router_tensor(p.name);
    const quant::GgmlType type = matrix ? options.type : quant::GgmlType::F32;
    const auto type_traits = *quant::type_traits(static_cast<std::uint32_t>(type));
    std::uint64_t rows = 1;
    for (std::size_t d = 0; d + 1 < p.shape.size(); ++d) rows *= p.shape[d];
    const std::uint64_t cols = p.shape.back();
    const std::uint64_t row_out = *quant::row_bytes(type_traits, cols);
    format::GgufTensorWrite t{p.name, type, {p.shape.rbegin(), p.shape.rend()}, rows * row_out, {}};
    t.write_data = [=, &options](const auto& emit) {
      Noise noise{options.seed * 0x100000001B3ull + index};
      std::vector<float> row(cols);
      std::vector<std::uint8_t> bytes(row_out);
      for (std::uint64_t r = 0; r < rows; ++r) {
        for (auto& v : row) v = p.is_norm ? 1.0f : noise.next();
        if (type == quant::GgmlType::F32) std::memcpy(bytes.data(), row.data(), row_out);
        else if (type == quant::GgmlType::F16 || type == quant::GgmlType::BF16)
          for (std::uint64_t c = 0; c < cols; ++c) {
            const std::uint16_t v = type == quant::GgmlType::F16 ? quant::fp32_to_fp16(row[c]) : quant::fp32_to_bf16(row[c]);
            std::memcpy(bytes.data() + 2 * c, &v, 2);
          }
        else quant::encode_from_f32(type, row, bytes);
        emit(std::span<const std::uint8_t>(bytes));
        if (options.on_progress) options.on_progress(bytes.size());
      }
    };
    total += t.size;
    tensors.push_back(std::move(t));
  }
  if (options.on_start) options.on_start(total);
  const bool to_aero = out.extension() != ".gguf";
  if (!to_aero) return {format::write_gguf(out, metadata, tensors), tensors.size()};
  // .aero: through a GGUF beside the output, converted (mapped, streamed), then removed.
  auto staging = out;
  staging += ".synth.gguf";
  format::write_gguf(staging, metadata, tensors);
  try {
    auto summary = convert(staging, out, output_kind(out, ""), {});
    std::filesystem::remove(staging);
    return summary;
  } catch (...) {
    std::filesystem::remove(staging);
    throw;
  }
}

}  // namespace aero::convert
