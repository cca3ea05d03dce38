#include "convert/tensor_names.h"

#include <cstdio>

#include <fmt/format.h>

#include "aero/model/weights.h"

namespace aero::convert {
namespace {

// The permutation llama.cpp's converter applies: llama-family q and k (weights and biases).
std::int64_t permute_heads(model::Role role, const model::ModelSpec& spec) {
  if (spec.family != model::Family::Llama) return 0;
  using model::Role;
  if (role == Role::AttnQ || role == Role::AttnQBias) return spec.heads;
  if (role == Role::AttnK || role == Role::AttnKBias) return spec.kv_heads;
  return 0;
}

// "{prefix}{layer}.{rest}" → layer and rest; nullopt for other names.
std::optional<std::pair<std::int64_t, std::string>> split_layer(const std::string& name, const char* format) {
  std::int64_t layer = -1;
  int consumed = 0;
  if (std::sscanf(name.c_str(), format, &layer, &consumed) != 1 || consumed == 0 || layer < 0) return std::nullopt;
  return std::pair{layer, name.substr(static_cast<std::size_t>(consumed))};
}

float offset_of(model::Role role, const model::ModelSpec& spec) {
  return spec.norm_adds_one() && model::is_norm(role) ? 1.0f : 0.0f;
}

}  // namespace

std::optional<TensorMapping> gguf_name_of(const std::string& hf, const model::ModelSpec& spec) {
  if (hf == model::kHfEmbedding) return TensorMapping{model::kGgufEmbedding};
  if (hf == model::kHfOutputNorm) return TensorMapping{model::kGgufOutputNorm, 0, offset_of(model::Role::FfnNorm, spec)};
  if (hf == model::kHfOutput) return TensorMapping{model::kGgufOutput};
  const auto split = split_layer(hf, "model.layers.%ld.%n");
  if (!split) return std::nullopt;
  for (const auto& r : model::layer_roles(spec.family))
    if (split->second == r.hf)
      return TensorMapping{fmt::format("blk.{}.{}", split->first, r.gguf), permute_heads(r.role, spec), offset_of(r.role, spec)};
  return std::nullopt;
}

std::optional<TensorMapping> hf_name_of(const std::string& gguf, const model::ModelSpec& spec) {
  if (gguf == model::kGgufEmbedding) return TensorMapping{model::kHfEmbedding};
  if (gguf == model::kGgufOutputNorm) return TensorMapping{model::kHfOutputNorm, 0, offset_of(model::Role::FfnNorm, spec)};
  if (gguf == model::kGgufOutput) return TensorMapping{model::kHfOutput};
  const auto split = split_layer(gguf, "blk.%ld.%n");
  if (!split) return std::nullopt;
  for (const auto& r : model::layer_roles(spec.family))
    if (split->second == r.gguf)
      return TensorMapping{fmt::format("model.layers.{}.{}", split->first, r.hf), permute_heads(r.role, spec),
                           offset_of(r.role, spec)};
  return std::nullopt;
}

std::uint64_t permuted_source_row(std::uint64_t row, std::uint64_t head_dim) {
  const std::uint64_t head = row / head_dim, within = row % head_dim;
  const std::uint64_t i = within / 2, j = within % 2;
  return head * head_dim + j * (head_dim / 2) + i;
}

}  // namespace aero::convert
