// Folding vectors of partial sums, for the AVX2 kernels: all lanes into one (dot_simd.inc's row
// kernels, gemm_avx2.cpp's float products), or lanes that belong to different blocks
// (dot_simd.inc's Q4_0, rows_avx2.cpp's generic block rows). In an anonymous namespace:
// dot_simd.inc is also compiled for AVX-512, and an out-of-line copy must not be shared between
// files built for different instruction sets.
#pragma once

#include <immintrin.h>

namespace aero::backend::cpu {
namespace {

// The sum of the 8 lanes.
inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// a = [p p p p | q q q q] and b = [r r r r | s s s s] (by the block each lane belongs to) as
// [p r p r | q s q s]: their 32-bit units interleaved and added, as int32 or (kAdd16) int16 lanes.
template <bool kAdd16 = false>
inline __m256i interleave32(__m256i a, __m256i b) {
  const __m256i lo = _mm256_unpacklo_epi32(a, b), hi = _mm256_unpackhi_epi32(a, b);
  return kAdd16 ? _mm256_add_epi16(lo, hi) : _mm256_add_epi32(lo, hi);
}

// [p r . . | q s . .] and [t u . . | v w . .] as [p r t u | q s v w] (int32 lanes).
inline __m256i interleave64(__m256i a, __m256i b) {
  return _mm256_add_epi32(_mm256_unpacklo_epi64(a, b), _mm256_unpackhi_epi64(a, b));
}

}  // namespace
}  // namespace aero::backend::cpu
