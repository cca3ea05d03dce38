#include "aero/quant/types.h"

#include <array>
#include <cctype>

namespace aero::quant {
namespace {

using enum GgmlType;
constexpr std::array kTable = {
    TypeTraits{F32, "F32", 1, 4, false},          TypeTraits{F16, "F16", 1, 2, false},
    TypeTraits{Q4_0, "Q4_0", 32, 18, true},       TypeTraits{Q4_1, "Q4_1", 32, 20, true},
    TypeTraits{Q5_0, "Q5_0", 32, 22, true},       TypeTraits{Q5_1, "Q5_1", 32, 24, true},
    TypeTraits{Q8_0, "Q8_0", 32, 34, true},       TypeTraits{Q8_1, "Q8_1", 32, 36, true},
    TypeTraits{Q2_K, "Q2_K", 256, 84, true},      TypeTraits{Q3_K, "Q3_K", 256, 110, true},
    TypeTraits{Q4_K, "Q4_K", 256, 144, true},     TypeTraits{Q5_K, "Q5_K", 256, 176, true},
    TypeTraits{Q6_K, "Q6_K", 256, 210, true},     TypeTraits{Q8_K, "Q8_K", 256, 292, true},
    TypeTraits{IQ2_XXS, "IQ2_XXS", 256, 66, true}, TypeTraits{IQ2_XS, "IQ2_XS", 256, 74, true},
    TypeTraits{IQ3_XXS, "IQ3_XXS", 256, 98, true}, TypeTraits{IQ1_S, "IQ1_S", 256, 50, true},
    TypeTraits{IQ4_NL, "IQ4_NL", 32, 18, true},   TypeTraits{IQ3_S, "IQ3_S", 256, 110, true},
    TypeTraits{IQ2_S, "IQ2_S", 256, 82, true},    TypeTraits{IQ4_XS, "IQ4_XS", 256, 136, true},
    TypeTraits{I8, "I8", 1, 1, false},            TypeTraits{I16, "I16", 1, 2, false},
    TypeTraits{I32, "I32", 1, 4, false},          TypeTraits{I64, "I64", 1, 8, false},
    TypeTraits{F64, "F64", 1, 8, false},          TypeTraits{IQ1_M, "IQ1_M", 256, 56, true},
    TypeTraits{BF16, "BF16", 1, 2, false},        TypeTraits{TQ1_0, "TQ1_0", 256, 54, true},
    TypeTraits{TQ2_0, "TQ2_0", 256, 66, true},    TypeTraits{MXFP4, "MXFP4", 32, 17, true},
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

std::optional<std::uint64_t> row_bytes(const TypeTraits& traits, std::uint64_t elements) {
  if (elements % traits.block_elements != 0) return std::nullopt;
  return elements / traits.block_elements * traits.block_bytes;
}

}  // namespace aero::quant
