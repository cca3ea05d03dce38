// Row kernels (token generation) for the block formats without a hand-tuned AVX2 kernel: Q4_1,
// Q5_0, Q5_1, Q2_K, Q3_K, Q5_K, IQ4_NL, IQ4_XS, on AVX2 machines (the AVX-512 ones take
// rows_avx512.cpp's). The same scheme on 256-bit registers: 32 codes per step meet the row's
// int8 activations (sub_block_layout) in a maddubs + madd, whose 8 lanes hold partial sums of one
// 32-column sub-block or two 16-column ones; one permute spreads their scales s·dx over the
// lanes for a fused multiply-add, and the offsets m of a 256-column chunk meet d·Σx at once.
//
// maddubs multiplies unsigned by signed bytes into saturating int16 pairs, so codes stay below
// 128: unsigned q for every format but the IQ4 ones, whose code book (−127..113) is used signed,
// its signs moved onto the activations.
#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <type_traits>

#include "aero/quant/types.h"
#include "backend/cpu/block_codes_avx2.h"
#include "backend/cpu/dot.h"
#include "backend/cpu/lane_sums_avx2.h"

namespace aero::backend::cpu {
namespace {

using quant::GgmlType;
using namespace codes_avx2;

constexpr int kChunk = 256;

// A chunk's eight steps of int32 partial sums meet in one or two vectors of sub-block sums
// (interleave32, interleave64 and a cross of 128-bit halves), where a conversion, permute and
// multiply-add per step cost more than the step's multiplies.

// R (1 or 2) rows; `ahead`: the rows of the whole call, whose successors are prefetched.
template <class F, int R>
void block_rows(const std::uint8_t* w, std::size_t stride, int ahead, const std::uint8_t* xq, std::int64_t cols,
                float* out) {
  constexpr int kHalves = F::kSub == 16 ? 2 : 1;
  constexpr std::size_t kChunkBytes = kChunk / F::kBlockCols * F::kBlockBytes;
  const auto* dx = reinterpret_cast<const float*>(xq + sub_block_quant_bytes(cols));
  const float* dsum = dx + cols / F::kSub;
  const __m256i ones = _mm256_set1_epi16(1);
  // 16-column sub-blocks come out of the sums below in the order 0 2 4 6 1 3 5 7 per half.
  const __m256i even_odd = _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7);
  __m256 acc[R], offsets[R];
  for (int r = 0; r < R; ++r) acc[r] = offsets[r] = _mm256_setzero_ps();
  for (std::int64_t k0 = 0; k0 < cols; k0 += kChunk) {
    const std::int64_t kc = std::min<std::int64_t>(kChunk, cols - k0);
    const std::uint8_t* chunk = w + k0 / F::kBlockCols * F::kBlockBytes;
    // The chunk's sub-blocks: 16 of 16 columns, or up to 8 of 32.
    const __m256i valid = _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(kc / F::kSub)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    __m256 chunk_dx[2], chunk_dsum[2];
    for (int h = 0; h < kHalves; ++h) {
      chunk_dx[h] = _mm256_maskload_ps(dx + k0 / F::kSub + 8 * h, h ? _mm256_set1_epi32(-1) : valid);
      chunk_dsum[h] = _mm256_maskload_ps(dsum + k0 / F::kSub + 8 * h, h ? _mm256_set1_epi32(-1) : valid);
    }
    // Step k's 32 columns of row r as 8 int32 partial sums: lanes of 32-column sub-block k / 32,
    // or of 16-column ones 2i and 2i + 1 (i = k / 32); zeros past a short chunk's end.
    auto step = [&](int r, int k, auto full) __attribute__((always_inline)) {
      if (!decltype(full)::value && k >= kc) return _mm256_setzero_si256();
      const __m256i xv = load32(xq + k0 + k);
      const __m256i c = F::codes(chunk + r * stride, k);
      const __m256i pairs = F::kSigned ? _mm256_maddubs_epi16(_mm256_sign_epi8(c, c), _mm256_sign_epi8(xv, c))
                                       : _mm256_maddubs_epi16(c, xv);
      return _mm256_madd_epi16(pairs, ones);
    };
    auto rows = [&](auto full) __attribute__((always_inline)) {
#pragma GCC unroll 2
      for (int r = 0; r < R; ++r) {
        const std::uint8_t* row = chunk + r * stride;
        prefetch_next_rows(row, stride, ahead, kChunkBytes / 64 + 1);
        const Scales sm = F::scales(row, kc);
        __m256 sd[2];
        for (int h = 0; h < kHalves; ++h) {
          sd[h] = _mm256_mul_ps(kHalves == 2 ? _mm256_permutevar8x32_ps(sm.s[h], even_odd) : sm.s[h], chunk_dx[h]);
          offsets[r] = _mm256_fmadd_ps(sm.m[h], chunk_dsum[h], offsets[r]);
        }
        // Sub-blocks 0..3 (or 0 2 4 6 | 1 3 5 7) from the first four steps, then the next four.
        const __m256i first = interleave64(interleave32(step(r, 0, full), step(r, 32, full)),
                                           interleave32(step(r, 64, full), step(r, 96, full)));
        const __m256i second = interleave64(interleave32(step(r, 128, full), step(r, 160, full)),
                                            interleave32(step(r, 192, full), step(r, 224, full)));
        if constexpr (kHalves == 2) {
          acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(first), sd[0], acc[r]);
          acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(second), sd[1], acc[r]);
        } else {  // [0 1 2 3 | 0 1 2 3] and [4 5 6 7 | 4 5 6 7]: their halves added across
          const __m256i sums = _mm256_add_epi32(_mm256_permute2x128_si256(first, second, 0x20),
                                                _mm256_permute2x128_si256(first, second, 0x31));
          acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sums), sd[0], acc[r]);
        }
      }
    };
    if (kc == kChunk) rows(std::true_type{});
    else rows(std::false_type{});  // a legacy-format row's last columns
  }
  for (int r = 0; r < R; ++r) out[r] = hsum(acc[r]) - hsum(offsets[r]);
}

// Rows in pairs: 16 registers hold two rows' sums and scales, not four.
template <class F>
void block_dot(const std::uint8_t* w, std::size_t stride, int rows, const float*, const std::uint8_t* xq,
               std::int64_t cols, float* out) {
  int r = 0;
  for (; r + 2 <= rows; r += 2) block_rows<F, 2>(w + r * stride, stride, rows, xq, cols, out + r);
  if (r < rows) block_rows<F, 1>(w + r * stride, stride, rows, xq, cols, out + r);
}

template <class F>
RowKernel row_kernel() {
  return {block_dot<F>, sub_block_layout(F::kQ8K, F::kSub)};
}

}  // namespace

const RowKernel* avx2_block_rows(GgmlType type) {
  static const std::pair<GgmlType, RowKernel> table[] = {
      {GgmlType::Q4_1, row_kernel<Q4_1>()}, {GgmlType::Q5_0, row_kernel<Q5_0>()},     {GgmlType::Q5_1, row_kernel<Q5_1>()},
      {GgmlType::Q5_K, row_kernel<Q5_K>()}, {GgmlType::Q2_K, row_kernel<Q2_K>()},     {GgmlType::Q3_K, row_kernel<Q3_K>()},
      {GgmlType::IQ4_NL, row_kernel<IQ4_NL>()}, {GgmlType::IQ4_XS, row_kernel<IQ4_XS>()}};
  return find_kernel(table, type);
}

}  // namespace aero::backend::cpu
