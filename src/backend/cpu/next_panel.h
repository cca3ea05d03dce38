// Prefetching for the packed-panel GEMMs (gemm_avx512.cpp, gemm_avx2.cpp).
//
// Packing is where the weights come from memory, a few lines of each of a panel's rows: too
// short for the hardware prefetcher. So while a panel meets its tokens, the next panel's bytes
// (the same rows' next column block, or the next rows' first) are asked for, a share of its
// rows before each token block: issued all at once they would overrun the miss buffers.
//
// In an anonymous namespace: the files including this are compiled for different instruction
// sets, and one shared out-of-line copy (which the linker would pick from any of them) could
// carry instructions that the running CPU lacks.
#pragma once

#include <xmmintrin.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>

namespace aero::backend::cpu {
namespace {

struct NextPanel {
  const std::uint8_t* first = nullptr;  // null: this is the last panel
  std::size_t stride = 0, bytes = 0;    // per row
  int rows = 0;

  // Panels of `panel_rows` rows × `block_cols` columns; this one starts at row r, column k0.
  // `offset(k)`: the byte at which column k starts in a row.
  template <class Offset>
  NextPanel(const std::uint8_t* w, std::size_t row_stride, std::int64_t total_rows, int panel_rows, std::int64_t r,
            std::int64_t k0, std::int64_t block_cols, std::int64_t cols, Offset offset)
      : stride(row_stride) {
    std::int64_t k = k0 + block_cols;
    if (k >= cols) k = 0, r += panel_rows;
    if (r >= total_rows) return;
    first = w + r * static_cast<std::int64_t>(stride) + offset(k);
    bytes = static_cast<std::size_t>(offset(std::min(cols, k + block_cols)) - offset(k));
    rows = static_cast<int>(std::min<std::int64_t>(panel_rows, total_rows - r));
  }

  void prefetch(std::int64_t part, std::int64_t parts) const {
    if (!first) return;
    for (auto r = part * rows / parts; r < (part + 1) * rows / parts; ++r)
      for (std::size_t at = 0; at < bytes; at += 64)
        _mm_prefetch(reinterpret_cast<const char*>(first + r * stride + at), _MM_HINT_T0);
  }
};

}  // namespace
}  // namespace aero::backend::cpu
