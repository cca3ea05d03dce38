// A tile of a float-weight product with the columns in the lanes, for the 256-bit kernels (the
// float tiles of dot_simd.inc, the AVX2 GEMM's float formats). Include only from files compiled
// with AVX2, FMA and F16C. In an anonymous namespace, as float_loads_avx2.h says why.
#pragma once

#include <immintrin.h>

#include <cstddef>
#include <cstdint>

#include "backend/cpu/float_loads_avx2.h"
#include "backend/cpu/lane_sums_avx2.h"

namespace aero::backend::cpu {
namespace {

// y[t·ys + r] = Σ_k w[r][k] · x[t·xs + k] for RM weight rows (`stride` bytes apart, format S)
// and RN f32 activation rows: each step converts 8 columns of the RM rows to f32 where they lie
// and loads 8 of each token's, RM·RN fused multiply-adds; one horizontal sum per output at the
// end, the columns past a multiple of 8 added one by one.
template <class S, int RM, int RN>
void float_lanes_tile(const std::uint8_t* w, std::size_t stride, const float* x, std::size_t xs, std::int64_t cols,
                      float* y, std::size_t ys) {
  __m256 acc[RM][RN];
#pragma GCC unroll 4
  for (int r = 0; r < RM; ++r)
#pragma GCC unroll 4
    for (int t = 0; t < RN; ++t) acc[r][t] = _mm256_setzero_ps();
  std::int64_t k = 0;
  for (; k + 8 <= cols; k += 8) {
    __m256 xv[RN];
#pragma GCC unroll 4
    for (int t = 0; t < RN; ++t) xv[t] = _mm256_loadu_ps(x + t * xs + k);
#pragma GCC unroll 4
    for (int r = 0; r < RM; ++r) {
      const __m256 wv = S::load8(w + r * stride + k * S::kBytes);
#pragma GCC unroll 4
      for (int t = 0; t < RN; ++t) acc[r][t] = _mm256_fmadd_ps(wv, xv[t], acc[r][t]);
    }
  }
  for (int r = 0; r < RM; ++r)
    for (int t = 0; t < RN; ++t) {
      float sum = hsum(acc[r][t]);
      for (std::int64_t j = k; j < cols; ++j) sum += S::load1(w + r * stride + j * S::kBytes) * x[t * xs + j];
      y[t * ys + r] = sum;
    }
}

}  // namespace
}  // namespace aero::backend::cpu
