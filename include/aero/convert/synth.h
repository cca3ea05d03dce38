// Random-weight models of real shapes, so that benchmarks and the README's first command run
// on any machine without a download. Weights are N(0, 0.02)-like noise, norms are ones;
// the tokenizer section, when given, is copied from a real GGUF.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>

#include "aero/convert/convert.h"
#include "aero/model/spec.h"
#include "aero/quant/types.h"

namespace aero::convert {

// arch: llama | qwen2 | qwen3 | mixtral | qwen3moe; preset: tiny (a few MB, for tests and
// demos), 1b (TinyLlama-1.1B, Qwen2.5-1.5B, Qwen3-1.7B shapes; qwen3moe: a quarter of
// Qwen3-30B-A3B's width), 8b (Llama-3-8B, Qwen2.5-7B, Qwen3-8B, Mixtral-8x7B, Qwen3-30B-A3B).
model::ModelSpec synth_spec(const std::string& arch, const std::string& preset);

struct SynthOptions {
  std::string arch = "llama";
  std::string preset = "1b";
  quant::GgmlType type = quant::GgmlType::F16;  // of the weight matrices; norms stay f32
  std::filesystem::path vocab;                  // GGUF whose tokenizer.* keys to copy (optional)
  std::uint64_t seed = 1;
  std::function<void(std::uint64_t total)> on_start;
  std::function<void(std::uint64_t bytes)> on_progress;
};

// Writes a GGUF file, or a .aero by way of one.
ConvertSummary synthesize(const std::filesystem::path& out, const SynthOptions& options);

}  // namespace aero::convert
