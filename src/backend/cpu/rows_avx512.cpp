// Row kernels (token generation) for the block formats that have no hand-tuned kernel, on any
// AVX-512 VNNI machine: Q8_0, Q4_1, Q5_0, Q5_1, Q2_K, Q3_K, IQ4_NL, IQ4_XS, TQ2_0, MXFP4 (and
// Q5_K without VBMI).
// They read each format through the same traits as the packed panels (block_codes_avx512.h):
// 64 unsigned codes per step meet the row's int8 activations in one VNNI dot, whose 16 lanes
// hold partial sums of two (32-column) or four (16-column) sub-blocks; one permute spreads
// those sub-blocks' scales s·dx over their lanes for a fused multiply-add. The offsets m of a
// whole 256-column chunk meet the activation sums d·Σx in one more multiply-add, so per 256
// columns a row costs the format's scale unpacking plus four steps of a few instructions.
#include "backend/cpu/avx512_intrinsics.h"

#include <algorithm>

#include "aero/quant/types.h"
#include "backend/cpu/block_codes_avx512.h"
#include "backend/cpu/dot.h"

namespace aero::backend::cpu {
namespace {

using quant::GgmlType;
using namespace codes;

constexpr int kChunk = 256;  // columns whose scales are unpacked at once (16 lanes' worth)

template <class F, int R>
void block_rows(const std::uint8_t* w, std::size_t stride, const std::uint8_t* xq, std::int64_t cols, float* out) {
  const auto* dx = reinterpret_cast<const float*>(xq + sub_block_quant_bytes(cols));
  const float* dsum = dx + cols / F::kSub;
  // Lane l of a step's VNNI sums covers columns 4l..4l+3: sub-block l / (kSub / 4) of the step.
  const __m512i lane_sub = _mm512_srli_epi32(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
                                             F::kSub == 32 ? 3 : 2);
  constexpr std::size_t kChunkBytes = kChunk / F::kBlockCols * F::kBlockBytes;
  __m512 acc[R], offsets[R];
  for (int r = 0; r < R; ++r) acc[r] = offsets[r] = _mm512_setzero_ps();
  for (std::int64_t k0 = 0; k0 < cols; k0 += kChunk) {
    const std::int64_t kc = std::min<std::int64_t>(kChunk, cols - k0);
    const std::uint8_t* chunk = w + k0 / F::kBlockCols * F::kBlockBytes;
    const auto mask = static_cast<__mmask16>((1u << (kc / F::kSub)) - 1);
    const __m512 chunk_dx = _mm512_maskz_loadu_ps(mask, dx + k0 / F::kSub);
    const __m512 chunk_dsum = _mm512_maskz_loadu_ps(mask, dsum + k0 / F::kSub);
    __m512 sd[R];
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) {
      prefetch_next_rows(chunk + r * stride, stride, R, kChunkBytes / 64 + 1);
      const Scales sm = F::scales(chunk + r * stride, kc);
      sd[r] = _mm512_mul_ps(sm.s, chunk_dx);
      offsets[r] = _mm512_fmadd_ps(sm.m, chunk_dsum, offsets[r]);
    }
    auto step = [&](int k, int blocks) __attribute__((always_inline)) {
      const __m512i xv = _mm512_loadu_si512(xq + k0 + k);
      const __m512i sub = _mm512_add_epi32(lane_sub, _mm512_set1_epi32(k / F::kSub));
#pragma GCC unroll 4
      for (int r = 0; r < R; ++r) {
        const __m512i isum = _mm512_dpbusd_epi32(_mm512_setzero_si512(), F::codes(chunk + r * stride, k, blocks), xv);
        acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum), _mm512_permutexvar_ps(sub, sd[r]), acc[r]);
      }
    };
    if (kc == kChunk) {
#pragma GCC unroll 4
      for (int k = 0; k < kChunk; k += 64) step(k, 2);
    } else {  // a legacy-format row's last columns
      for (int k = 0; k < kc; k += 64) step(k, kc - k >= 64 ? 2 : 1);
    }
  }
  for (int r = 0; r < R; ++r) out[r] = _mm512_reduce_add_ps(acc[r]) - _mm512_reduce_add_ps(offsets[r]);
}

template <class F>
void block_dot(const std::uint8_t* w, std::size_t stride, int rows, const float*, const std::uint8_t* xq,
               std::int64_t cols, float* out) {
  switch (rows) {
    case 4: return block_rows<F, 4>(w, stride, xq, cols, out);
    case 3: return block_rows<F, 3>(w, stride, xq, cols, out);
    case 2: return block_rows<F, 2>(w, stride, xq, cols, out);
    default: return block_rows<F, 1>(w, stride, xq, cols, out);
  }
}

template <class F>
RowKernel row_kernel() {
  return {block_dot<F>, sub_block_layout(F::kQ8K, F::kSub)};
}

}  // namespace

const RowKernel* avx512_block_rows(GgmlType type) {
  static const std::pair<GgmlType, RowKernel> table[] = {
      {GgmlType::Q8_0, row_kernel<Q8_0Fmt>()},     {GgmlType::Q4_1, row_kernel<Q4_1Fmt>()},
      {GgmlType::Q5_0, row_kernel<Q5_0Fmt>()},     {GgmlType::Q5_1, row_kernel<Q5_1Fmt>()},
      {GgmlType::Q5_K, row_kernel<Q5_KFmt>()},     {GgmlType::Q2_K, row_kernel<Q2_KFmt>()},
      {GgmlType::Q3_K, row_kernel<Q3_KFmt>()},     {GgmlType::IQ4_NL, row_kernel<IQ4_NLFmt>()},
      {GgmlType::IQ4_XS, row_kernel<IQ4_XSFmt>()}, {GgmlType::TQ2_0, row_kernel<TQ2_0Fmt>()},
      {GgmlType::MXFP4, row_kernel<MXFP4Fmt>()}};
  return find_kernel(table, type);
}

}  // namespace aero::backend::cpu
