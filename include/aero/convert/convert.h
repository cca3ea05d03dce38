// Model conversion between every container aero reads and writes.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>

#include "aero/format/aero_writer.h"
#include "aero/quant/types.h"

namespace aero::convert {

enum class OutputKind { Aero, AeroSet, Gguf, Safetensors };

struct ConvertOptions {
  format::WriteOptions write;
  std::size_t part_shards = 2;  // AEROSET: shards per part file
  std::string model_name;       // overrides what the source says
  std::string architecture;
  // An HF folder or GGUF file supplying metadata (config, tokenizer, chat template) that the
  // source lacks, e.g. a .aero written by the reference converter.
  std::filesystem::path config;
  // Told the total bytes of tensor data once, then of every piece written.
  std::function<void(std::uint64_t total)> on_start;
  std::function<void(std::uint64_t bytes)> on_progress;
};

// By --to when given ("aero", "aeroset", "gguf", "safetensors"), else by the output name
// (.aero, .gguf, .safetensors; a folder or model.aeroset.json means AEROSET).
OutputKind output_kind(const std::filesystem::path& out, const std::string& to);

struct ConvertSummary {
  std::uint64_t file_bytes = 0;
  std::size_t tensors = 0;
};

ConvertSummary convert(const std::filesystem::path& in, const std::filesystem::path& out, OutputKind kind,
                       const ConvertOptions& options);

// What the weight matrices become: one block format for all, or one of llama.cpp's mixes
// (Q4_K_M / Q5_K_M: Q6_K for the output head, and for attn_v and ffn_down of the first and
// last eighth of the layers and every third one between).
struct QuantRecipe {
  quant::GgmlType base = quant::GgmlType::Q8_0;
  bool k_mix = false;
  QuantRecipe(quant::GgmlType type) : base(type) {}  // NOLINT: a plain type is a recipe
  QuantRecipe(quant::GgmlType type, bool mix) : base(type), k_mix(mix) {}
};
// "Q8_0", "Q4_K", "Q4_K_M", ... (case-insensitive); throws listing what exists.
QuantRecipe quant_recipe(std::string_view name);
inline constexpr const char* kQuantRecipeNames =
    "Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ4_NL, IQ4_XS, Q4_K_M, Q5_K_M";

// Like convert(), quantizing every float weight matrix (two or more dimensions) with the
// reference quantizers, row by row as it streams; other tensors (norms, biases) are copied.
// A matrix whose rows are not whole 256-blocks takes llama.cpp's fallback for K formats
// (Q2_K, Q3_K, IQ4_XS -> IQ4_NL; Q4_K -> Q5_0; Q5_K -> Q5_1; Q6_K -> Q8_0); one that fits no
// block format stays as it is.
ConvertSummary quantize(const std::filesystem::path& in, const std::filesystem::path& out, OutputKind kind,
                        const QuantRecipe& recipe, const ConvertOptions& options);

}  // namespace aero::convert
