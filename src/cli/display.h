// Text helpers shared by the CLI commands.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "aero/format/aero.h"
#include "aero/quant/types.h"

namespace aero::cli {

inline std::string human_bytes(std::uint64_t bytes) {
  static constexpr const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double value = static_cast<double>(bytes);
  int unit = 0;
  while (value >= 1024 && unit < 4) {
    value /= 1024;
    ++unit;
  }
  return unit == 0 ? fmt::format("{} B", bytes) : fmt::format("{:.2f} {}", value, kUnits[unit]);
}

inline std::string shape_text(const std::vector<std::uint64_t>& shape) {
  return fmt::format("[{}]", fmt::join(shape, ", "));
}

// "f32", "bf16", or the block format of a packed tensor ("Q4_K").
inline std::string element_type_text(const format::Tensor& t) {
  if (t.dtype != format::DType::Packed) return std::string(format::dtype_name(t.dtype));
  if (auto traits = quant::type_traits(static_cast<std::uint32_t>(t.ggml_type))) return std::string(traits->name);
  return fmt::format("ggml#{}", t.ggml_type);
}

}  // namespace aero::cli
