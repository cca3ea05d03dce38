// A weight matrix as it lies in a model file: `rows` outputs by `cols` inputs, each row a
// run of `type` blocks, rows `row_bytes` apart. Kernels compute on it in place.
#pragma once

#include <cstddef>
#include <cstdint>

#include "aero/quant/types.h"

namespace aero::quant {

struct Matrix {
  GgmlType type = GgmlType::F32;
  const std::uint8_t* data = nullptr;
  std::int64_t rows = 0;
  std::int64_t cols = 0;
  std::size_t row_bytes = 0;
  std::size_t bytes() const { return static_cast<std::size_t>(rows) * row_bytes; }
};

}  // namespace aero::quant
