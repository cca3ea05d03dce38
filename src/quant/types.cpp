#include "aero/quant/types.h"

#include <array>
#include <cctype>

#include "aero/error.h"
#include "quant/decode.h"
#include "quant/encode.h"

namespace aero::quant {
namespace {

using enum GgmlType;
constexpr std::array kTable = {
    TypeTraits{F32, "F32", 1, 4, false, decode::f32},          TypeTraits{F16, "F16", 1, 2, false, decode::f16},
    TypeTraits{Q4_0, "Q4_0", 32, 18, true, decode::q4_0, encode::q4_0},       TypeTraits{Q4_1, "Q4_1", 32, 20, true, decode::q4_1, encode::q4_1},
    TypeTraits{Q5_0, "Q5_0", 32, 22, true, decode::q5_0, encode::q5_0},       TypeTraits{Q5_1, "Q5_1", 32, 24, true, decode::q5_1, encode::q5_1},
    TypeTraits{Q8_0, "Q8_0", 32, 34, true, decode::q8_0, encode::q8_0},       TypeTraits{Q8_1, "Q8_1", 32, 36, true, decode::q8_1},
    TypeTraits{Q2_K, "Q2_K", 256, 84, true, decode::q2_k, encode::q2_k}, TypeTraits{Q3_K, "Q3_K", 256, 110, true, decode::q3_k, encode::q3_k},
    TypeTraits{Q4_K, "Q4_K", 256, 144, true, decode::q4_k, encode::q4_k}, TypeTraits{Q5_K, "Q5_K", 256, 176, true, decode::q5_k, encode::q5_k},
    TypeTraits{Q6_K, "Q6_K", 256, 210, true, decode::q6_k, encode::q6_k},     TypeTraits{Q8_K, "Q8_K", 256, 292, true, decode::q8_k, encode::q8_k},
    TypeTraits{IQ2_XXS, "IQ2_XXS", 256, 66, true, decode::iq2_xxs}, TypeTraits{IQ2_XS, "IQ2_XS", 256, 74, true, decode::iq2_xs},
    TypeTraits{IQ3_XXS, "IQ3_XXS", 256, 98, true, decode::iq3_xxs}, TypeTraits{IQ1_S, "IQ1_S", 256, 50, true, decode::iq1_s},
    TypeTraits{IQ4_NL, "IQ4_NL", 32, 18, true, decode::iq4_nl, encode::iq4_nl},   TypeTraits{IQ3_S, "IQ3_S", 256, 110, true, decode::iq3_s},
    TypeTraits{IQ2_S, "IQ2_S", 256, 82, true, decode::iq2_s},    TypeTraits{IQ4_XS, "IQ4_XS", 256, 136, true, decode::iq4_xs, encode::iq4_xs},
    TypeTraits{I8, "I8", 1, 1, false, nullptr},            TypeTraits{I16, "I16", 1, 2, false, nullptr},
    TypeTraits{I32, "I32", 1, 4, false, nullptr},          TypeTraits{I64, "I64", 1, 8, false, nullptr},
    TypeTraits{F64, "F64", 1, 8, false, nullptr},          TypeTraits{IQ1_M, "IQ1_M", 256, 56, true, decode::iq1_m},
    TypeTraits{BF16, "BF16", 1, 2, false, decode::bf16},        TypeTraits{TQ1_0, "TQ1_0", 256, 54, true, decode::tq1_0},
    TypeTraits{TQ2_0, "TQ2_0", 256, 66, true, decode::tq2_0},    TypeTraits{MXFP4, "MXFP4", 32, 17, true, decode::mxfp4},
};

}  // namespace

std::optional<TypeTraits> type_traits(std::uint32_t ggml_type) {
  for (const auto& t : kTable)
    if (static_cast<std::uint32_t>(t.type) == ggml_type) return t;
  return std::nullopt;
}

std::optional<TypeTraits> type_traits_by_name(std::string_view name) {
  for (const auto& t : kTable) {
    if (t.name.size() != name.size()) continue;
    bool same = true;
    for (std::size_t i = 0; i < name.size() && same; ++i)
      same = std::toupper(static_cast<unsigned char>(name[i])) == t.name[i];
    if (same) return t;
  }
  return std::nullopt;
}

namespace {

// The traits of `type` once its function `pick` exists and `bytes` hold exactly `elements`.
template <class Pick>
TypeTraits checked(GgmlType type, Pick pick, const char* what, std::uint64_t elements, std::size_t bytes) {
  auto traits = type_traits(static_cast<std::uint32_t>(type));
  if (!traits || !pick(*traits)) fail("no {} for tensor type {}", what, traits ? traits->name : "?");
  auto needed = row_bytes(*traits, elements);
  if (!needed || *needed != bytes) fail("{}: {} bytes do not hold {} elements", traits->name, bytes, elements);
  return *traits;
}

}  // namespace

void decode_to_f32(GgmlType type, std::span<const std::uint8_t> blocks, std::span<float> out) {
  auto traits = checked(type, [](const TypeTraits& t) { return t.decode != nullptr; }, "decoder", out.size(),
                        blocks.size());
  traits.decode(blocks.data(), out.data(), static_cast<std::int64_t>(out.size()));
}

void encode_from_f32(GgmlType type, std::span<const float> in, std::span<std::uint8_t> blocks) {
  auto traits = checked(type, [](const TypeTraits& t) { return t.encode != nullptr; }, "quantizer", in.size(),
                        blocks.size());
  traits.encode(in.data(), blocks.data(), static_cast<std::int64_t>(in.size()));
}

std::optional<std::uint64_t> row_bytes(const TypeTraits& traits, std::uint64_t elements) {
  if (elements % traits.block_elements != 0) return std::nullopt;
  return elements / traits.block_elements * traits.block_bytes;
}

}  // namespace aero::quant
