// What the AVX-512 panel products share (gemm_avx512.cpp, bf16_avx512.cpp): a 16×16 transpose,
// and the shape of the float formats' micro-kernels (12 weight rows against tiles of 32 tokens in
// the lanes) with the way their sums leave. Always inlined, in an anonymous namespace: the
// includers are compiled for different instruction sets (see next_panel.h).
#pragma once

#include "backend/cpu/avx512_intrinsics.h"

#include <cstddef>
#include <cstdint>

namespace aero::backend::cpu {
namespace {

// 16×16 transpose of 32-bit lanes: out[j] lane i = in[i] lane j.
__attribute__((always_inline)) inline void transpose16(__m512i r[16]) {
  __m512i t[16];
  for (int i = 0; i < 16; i += 2) {
    t[i] = _mm512_unpacklo_epi32(r[i], r[i + 1]);
    t[i + 1] = _mm512_unpackhi_epi32(r[i], r[i + 1]);
  }
  for (int i = 0; i < 16; i += 4) {
    r[i] = _mm512_unpacklo_epi64(t[i], t[i + 2]);
    r[i + 1] = _mm512_unpackhi_epi64(t[i], t[i + 2]);
    r[i + 2] = _mm512_unpacklo_epi64(t[i + 1], t[i + 3]);
    r[i + 3] = _mm512_unpackhi_epi64(t[i + 1], t[i + 3]);
  }
  // Lanes now hold 4×4 blocks: 128-bit lane l of r[i] belongs to output rows 4l..4l+3.
  for (int i = 0; i < 4; ++i) {
    t[i] = _mm512_shuffle_i32x4(r[i], r[i + 4], 0x88);
    t[i + 4] = _mm512_shuffle_i32x4(r[i], r[i + 4], 0xDD);
    t[i + 8] = _mm512_shuffle_i32x4(r[i + 8], r[i + 12], 0x88);
    t[i + 12] = _mm512_shuffle_i32x4(r[i + 8], r[i + 12], 0xDD);
  }
  for (int i = 0; i < 4; ++i) {
    r[i] = _mm512_shuffle_i32x4(t[i], t[i + 8], 0x88);
    r[i + 8] = _mm512_shuffle_i32x4(t[i], t[i + 8], 0xDD);
    r[i + 4] = _mm512_shuffle_i32x4(t[i + 4], t[i + 12], 0x88);
    r[i + 12] = _mm512_shuffle_i32x4(t[i + 4], t[i + 12], 0xDD);
  }
}

constexpr int kFloatTokens = 32;    // a tile: two 16-lane registers of tokens
constexpr int kFloatRowGroup = 12;  // rows per pass of the micro-kernel

inline std::int64_t token_tiles(std::int64_t n) { return (n + kFloatTokens - 1) / kFloatTokens; }

// Packs a group's 12 rows as 32-bit units (an f32 column, or a pair of bf16 columns) in the order
// [unit][row], 16 units at a time through one transpose, so that the micro-kernel broadcasts a
// unit's 12 rows from one 48-byte stretch. load(i, u) gives row i's units u..u+15 (rows past
// `valid`, a last group's, are zero; so are units past `units`, as the loads mask them).
template <class Load>
__attribute__((always_inline)) inline void pack_group(void* group, std::int64_t units, int valid, Load load) {
  auto* out = static_cast<std::uint8_t*>(group);
  for (std::int64_t u = 0; u < units; u += 16) {
    __m512i v[16];
    for (int i = 0; i < 16; ++i) v[i] = i < valid ? load(i, u) : _mm512_setzero_si512();
    transpose16(v);
    for (int j = 0; j < 16 && u + j < units; ++j)
      _mm512_mask_storeu_epi32(out + (u + j) * kFloatRowGroup * 4, (1u << kFloatRowGroup) - 1, v[j]);
  }
}

// c[t][r] = acc[r][t / 16] lane t % 16 for the group's first valid_rows rows and the tile's first
// valid_tokens tokens: the 12 × 32 sums transposed on their way out, once per group and tile.
__attribute__((always_inline)) inline void store_group_sums(const __m512 (&acc)[kFloatRowGroup][2], float* c,
                                                            std::size_t c_stride, int valid_rows, int valid_tokens) {
  alignas(64) float sums[kFloatRowGroup][kFloatTokens];
  for (int r = 0; r < kFloatRowGroup; ++r) {
    _mm512_store_ps(sums[r], acc[r][0]);
    _mm512_store_ps(sums[r] + 16, acc[r][1]);
  }
  for (int t = 0; t < valid_tokens; ++t)
    for (int r = 0; r < valid_rows; ++r) c[t * c_stride + r] = sums[r][t];
}

}  // namespace
}  // namespace aero::backend::cpu
