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

// Like convert(), quantizing every float weight matrix (two or more dimensions, rows a whole
// number of blocks) to `type` with the reference quantizer, row by row as it streams; other
// tensors (norms, biases) are copied. Throws for a type without a quantizer.
ConvertSummary quantize(const std::filesystem::path& in, const std::filesystem::path& out, OutputKind kind,
                        quant::GgmlType type, const ConvertOptions& options);

}  // namespace aero::convert
