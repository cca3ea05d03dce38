// A model's tensor names in Hugging Face's and in GGUF's scheme, both ways, with llama.cpp's Q/K
// row permutation: the one table that HF → GGUF conversion and GGUF → HF state dicts share.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "aero/model/spec.h"

namespace aero::convert {

// A tensor's name on the other side, and how many heads its rows group into when the llama
// permutation applies (0: rows stay in place).
struct TensorMapping {
  std::string name;
  std::int64_t permute_heads = 0;
  // Added to every element on the way to GGUF, subtracted on the way back: Gemma's norm
  // weights, which llama.cpp stores as the 1 + w they multiply by.
  float offset = 0;
};

// HF name → GGUF name; GGUF row r then holds HF row permuted_source_row(r, head_dim).
std::optional<TensorMapping> gguf_name_of(const std::string& hf, const model::ModelSpec& spec);
// GGUF name → HF name; HF row permuted_source_row(r, head_dim) then holds GGUF row r.
// nullopt for names with no HF counterpart (rope_freqs, which transformers derives from the config).
std::optional<TensorMapping> hf_name_of(const std::string& gguf, const model::ModelSpec& spec);

// Within each head, row j·(d/2) + i moves to 2i + j: the two halves that HF rotates together
// become adjacent pairs. Returns the HF row that GGUF row `row` holds.
std::uint64_t permuted_source_row(std::uint64_t row, std::uint64_t head_dim);

}  // namespace aero::convert
