// The ggml element types, numbered as in GGUF. This table is the one place a block format's
// geometry is described; decoders and dot products are attached to it by the quant library.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

namespace aero::quant {

enum class GgmlType : std::uint32_t {
  F32 = 0, F16 = 1, Q4_0 = 2, Q4_1 = 3, Q5_0 = 6, Q5_1 = 7, Q8_0 = 8, Q8_1 = 9,
  Q2_K = 10, Q3_K = 11, Q4_K = 12, Q5_K = 13, Q6_K = 14, Q8_K = 15,
  IQ2_XXS = 16, IQ2_XS = 17, IQ3_XXS = 18, IQ1_S = 19, IQ4_NL = 20, IQ3_S = 21, IQ2_S = 22, IQ4_XS = 23,
  I8 = 24, I16 = 25, I32 = 26, I64 = 27, F64 = 28, IQ1_M = 29, BF16 = 30,
  TQ1_0 = 34, TQ2_0 = 35, MXFP4 = 39,
};

struct TypeTraits {
  GgmlType type;
  std::string_view name;
  std::uint32_t block_elements;  // elements per block (1 for plain types)
  std::uint32_t block_bytes;     // bytes per block
  bool quantized;
  // Scalar reference decoder to f32 (bit-exact with ggml); null where aero cannot decode yet.
  void (*decode)(const std::uint8_t* blocks, float* out, std::int64_t elements);
  // Scalar reference quantizer from f32 (byte-identical with llama.cpp); null where none yet.
  void (*encode)(const float* in, std::uint8_t* blocks, std::int64_t elements) = nullptr;
};

// nullopt for numbers ggml never used or has retired (e.g. the 4x4 repacked types).
std::optional<TypeTraits> type_traits(std::uint32_t ggml_type);
std::optional<TypeTraits> type_traits_by_name(std::string_view name);  // case-insensitive

// Decodes `out.size()` elements (whole blocks) of `type` from `blocks` into f32. Throws
// aero::Error for a type without a decoder or a size that is not whole blocks.
void decode_to_f32(GgmlType type, std::span<const std::uint8_t> blocks, std::span<float> out);

// Quantizes `in` (whole blocks) into `blocks` of `type`. Throws for a type without an encoder.
void encode_from_f32(GgmlType type, std::span<const float> in, std::span<std::uint8_t> blocks);

// Bytes of a row of `elements` elements, or nullopt when the row is not whole blocks.
std::optional<std::uint64_t> row_bytes(const TypeTraits& traits, std::uint64_t elements);

}  // namespace aero::quant
