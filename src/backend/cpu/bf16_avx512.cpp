// BF16 weights on CPUs with AVX512_BF16 (Zen 4 and later, Cooper Lake, Sapphire Rapids): one
// VDPBF16PS multiplies 16 pairs of bf16 weights by 16 pairs of bf16 activations and adds both
// products to 16 f32 sums. As llama.cpp does for BF16 weights, the activations are rounded to
// bf16 (to nearest even) for it, in one token's products and in a batch's alike (so that a batch
// equals its tokens one by one): 2^-9 of each activation at most; sums stay f32.
//
// One token's products (the row kernels): a 64-byte load of weights and one VDPBF16PS per 32
// columns, where the f32 kernels widen them with a shift first. From DRAM that is what reaches
// the read probe on Zen 4 (2 threads: 100-102% against 69-94% for the 256-bit f32 kernel).
//
// Prompt processing (the panels): twice the work per instruction of the f32 fused multiply-adds
// that gemm_avx512.cpp's float panels run on weights widened to f32. The layout follows theirs:
// tokens in the lanes, weights broadcast. The batch is packed once per call as tiles of 32
// tokens, [column pair][token] with a token's two consecutive columns in one 32-bit lane (the
// first in the low half, as the instruction pairs them); 12 weight rows are packed once per
// group as [column pair][row] (bf16 already: a pair of columns is the 32-bit word at their
// offset; the width padded to even), and meet each tile with 12 × 2 sums in registers and each
// weight pair broadcast from memory into two VDPBF16PS.
#include "backend/cpu/avx512_intrinsics.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "aero/quant/types.h"
#include "backend/cpu/dot.h"
#include "backend/cpu/panels_avx512.h"

namespace aero::backend::cpu {
namespace {

std::int64_t pairs_of(std::int64_t cols) { return (cols + 1) / 2; }

// Masks for loads of the first 16 f32 / 32 bf16 values of a row with `left` columns still to go.
__mmask16 columns_mask16(std::int64_t left) {
  return static_cast<__mmask16>(left >= 16 ? 0xFFFF : left <= 0 ? 0 : (1u << left) - 1);
}
__mmask32 columns_mask32(std::int64_t left) {
  return static_cast<__mmask32>(left >= 32 ? 0xFFFFFFFFu : left <= 0 ? 0 : (1u << left) - 1);
}

std::size_t batch_bytes(std::int64_t n, std::int64_t cols) {
  return static_cast<std::size_t>(token_tiles(n) * pairs_of(cols) * kFloatTokens) * sizeof(std::uint32_t);
}

// Packs tile `tile`: 32 columns of 16 tokens at a time, rounded to bf16 (tokens past n and the
// column past an odd width are zero), then transposed so that each column pair's 16 tokens lie
// in one register.
void batch_prepare(const float* x, std::int64_t n, std::int64_t cols, std::uint8_t* out, std::int64_t tile) {
  const std::int64_t pairs = pairs_of(cols);
  auto* packed = reinterpret_cast<std::uint32_t*>(out) + tile * pairs * kFloatTokens;
  const std::int64_t t0 = tile * kFloatTokens, tokens = std::min<std::int64_t>(kFloatTokens, n - t0);
  for (std::int64_t k = 0; k < cols; k += 32)
    for (int half = 0; half < 2; ++half) {
      __m512i v[16];
      for (int t = 0; t < 16; ++t) {
        const std::int64_t token = 16 * half + t;
        if (token >= tokens) {
          v[t] = _mm512_setzero_si512();
          continue;
        }
        const float* row = x + (t0 + token) * cols + k;
        const __m512 lo = _mm512_maskz_loadu_ps(columns_mask16(cols - k), row);
        const __m512 hi = _mm512_maskz_loadu_ps(columns_mask16(cols - k - 16), row + 16);
        v[t] = reinterpret_cast<__m512i>(_mm512_cvtne2ps_pbh(hi, lo));  // columns k..k+31 in order
      }
      transpose16(v);
      for (int j = 0; j < 16 && k / 2 + j < pairs; ++j)
        _mm512_storeu_si512(packed + (k / 2 + j) * kFloatTokens + 16 * half, v[j]);
    }
}

// c[t][r] = Σ_k w[k][r] · x[k][t] for the 12 rows of `w` ([column pair][row]) and a tile.
void bf16_kernel(const std::uint32_t* w, const std::uint32_t* x, std::int64_t pairs, float* c, std::size_t c_stride,
                 int valid_rows, int valid_tokens) {
  constexpr int R = kFloatRowGroup;
  __m512 acc[R][2];
  for (int r = 0; r < R; ++r) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
  for (std::int64_t p = 0; p < pairs; ++p) {
    const auto x0 = reinterpret_cast<__m512bh>(_mm512_loadu_si512(x + p * kFloatTokens));
    const auto x1 = reinterpret_cast<__m512bh>(_mm512_loadu_si512(x + p * kFloatTokens + 16));
    for (int r = 0; r < R; ++r) {
      const auto wv = reinterpret_cast<__m512bh>(_mm512_set1_epi32(static_cast<int>(w[p * kFloatRowGroup + r])));
      acc[r][0] = _mm512_dpbf16_ps(acc[r][0], wv, x0);
      acc[r][1] = _mm512_dpbf16_ps(acc[r][1], wv, x1);
    }
  }
  store_group_sums(acc, c, c_stride, valid_rows, valid_tokens);
}

void gemm_bf16(const std::uint8_t* w, std::size_t stride, std::int64_t rows, std::int64_t cols,
               const std::uint8_t* packed_x, std::size_t, std::int64_t n, float* y, std::size_t y_stride) {
  const std::int64_t pairs = pairs_of(cols);
  thread_local std::vector<std::uint32_t> group_buffer;
  group_buffer.resize(static_cast<std::size_t>(kFloatRowGroup * pairs));
  std::uint32_t* group = group_buffer.data();
  const auto* x = reinterpret_cast<const std::uint32_t*>(packed_x);
  for (std::int64_t r = 0; r < rows; r += kFloatRowGroup) {
    const int valid = static_cast<int>(std::min<std::int64_t>(kFloatRowGroup, rows - r));
    // Bf16 as it lies, 16 column pairs (32 columns) at a time.
    pack_group(group, pairs, valid, [&](int i, std::int64_t p) __attribute__((always_inline)) {
      return _mm512_maskz_loadu_epi16(columns_mask32(cols - 2 * p), w + (r + i) * stride + 4 * p);
    });
    for (std::int64_t tile = 0; tile < token_tiles(n); ++tile)
      bf16_kernel(group, x + tile * pairs * kFloatTokens, pairs, y + tile * kFloatTokens * y_stride + r, y_stride, valid,
                  static_cast<int>(std::min<std::int64_t>(kFloatTokens, n - tile * kFloatTokens)));
  }
}

// ---- One token's products ---------------------------------------------------------------

// The activations as bf16, zero up to a multiple of 32 columns.
std::size_t row_x_bytes(std::int64_t cols) { return static_cast<std::size_t>((cols + 31) / 32 * 32) * 2; }
void row_x_prepare(const float* x, std::int64_t cols, std::uint8_t* out) {
  for (std::int64_t k = 0; k < cols; k += 32) {
    const __m512 lo = _mm512_maskz_loadu_ps(columns_mask16(cols - k), x + k);
    const __m512 hi = _mm512_maskz_loadu_ps(columns_mask16(cols - k - 16), x + k + 16);
    _mm512_storeu_si512(out + 2 * k, reinterpret_cast<__m512i>(_mm512_cvtne2ps_pbh(hi, lo)));
  }
}

template <int R>
void bf16_rows(const std::uint8_t* w, std::size_t stride, const std::uint8_t* xq, std::int64_t n, float* out) {
  __m512 acc[R][2];
  for (int r = 0; r < R; ++r) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
  std::int64_t k = 0;
  for (; k + 64 <= n; k += 64) {
    const auto x0 = reinterpret_cast<__m512bh>(_mm512_loadu_si512(xq + 2 * k));
    const auto x1 = reinterpret_cast<__m512bh>(_mm512_loadu_si512(xq + 2 * k + 64));
    for (int r = 0; r < R; ++r) {
      const std::uint8_t* row = w + r * stride + 2 * k;
      prefetch_next_rows(row, stride, R, 2);
      acc[r][0] = _mm512_dpbf16_ps(acc[r][0], reinterpret_cast<__m512bh>(_mm512_loadu_si512(row)), x0);
      acc[r][1] = _mm512_dpbf16_ps(acc[r][1], reinterpret_cast<__m512bh>(_mm512_loadu_si512(row + 64)), x1);
    }
  }
  for (; k < n; k += 32) {
    const __mmask32 mask = columns_mask32(n - k);
    const auto xv = reinterpret_cast<__m512bh>(_mm512_loadu_si512(xq + 2 * k));
    for (int r = 0; r < R; ++r)
      acc[r][0] = _mm512_dpbf16_ps(acc[r][0], reinterpret_cast<__m512bh>(_mm512_maskz_loadu_epi16(mask, w + r * stride + 2 * k)), xv);
  }
  for (int r = 0; r < R; ++r) out[r] = _mm512_reduce_add_ps(_mm512_add_ps(acc[r][0], acc[r][1]));
}

void dot_bf16(const std::uint8_t* w, std::size_t stride, int rows, const float*, const std::uint8_t* xq,
              std::int64_t n, float* out) {
  switch (rows) {
    case 4: return bf16_rows<4>(w, stride, xq, n, out);
    case 3: return bf16_rows<3>(w, stride, xq, n, out);
    case 2: return bf16_rows<2>(w, stride, xq, n, out);
    default: return bf16_rows<1>(w, stride, xq, n, out);
  }
}

}  // namespace

bool rounds_bf16_activations(Isa isa) { return isa == Isa::Avx512 && cpu_has_avx512_bf16(); }

void use_bf16_kernels(DotKernels& k) {
  k.bf16 = dot_bf16;
  k.act_bf16 = {row_x_bytes, row_x_prepare};
  k.tile_bf16 = nullptr;  // (it reads f32 activations) a few tokens take the row kernel each
  k.gemm = avx512_bf16_gemm;
}

const GemmKernel* avx512_bf16_gemm(quant::GgmlType type) {
  static constexpr GemmKernel bf16{{}, batch_bytes, batch_prepare, kFloatTokens, kFloatRowGroup, gemm_bf16};
  return type == quant::GgmlType::BF16 ? &bf16 : avx512_gemm(type);
}

}  // namespace aero::backend::cpu
