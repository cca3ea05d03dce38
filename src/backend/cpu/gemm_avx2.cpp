// Batched products for prompt processing on AVX2 (no VNNI): y[t] = W · x[t] for many tokens.
//
// The scheme of gemm_avx512.cpp on 256-bit registers. Weights are unpacked once per panel of
// 8 rows × 256 columns into codes laid out so that a register holds the 8 rows' codes of a few
// columns, with per-sub-block scales; a micro-kernel meets two panels (16 rows) with 3 tokens at
// a time, each token's activations of those columns broadcast once into a multiply with each
// panel's 8 rows.
//
// Unsigned codes below 128 (most formats): [column / 4][8 rows][4 bytes], against four int8
// activations in a maddubs. Without VNNI its products land in int16 pairs, summed in int16 over
// a sub-block and widened once per sub-block (madd). That is exact when every int16 lane's final
// sum fits: maddubs adds two products of a code (< 2^7) and an activation (|x| ≤ 127), and a
// lane sums the products of kSub / 2 columns of a sub-block (columns 4g + 2p and 4g + 2p + 1 for
// lane p). Codes are centred where the plain sum could exceed int16: the sum runs over
// (q − c)·x, started from −c·Σx of the lane's columns (prepared with the activations), and the
// offset m becomes m − c·s. For the formats whose offset is a constant multiple z of the scale
// (Q4_0, Q5_0, Q3_K, Q6_K) c = z, so the offset disappears; int16 additions wrap, so only the
// final sum needs to fit.
//
// Signed codes (Q8_0, the IQ4 code books): [column / 2][8 rows][2 int16] against two int16
// activations in a madd, summed in int32: twice the instructions per column, but no bound.
#include <immintrin.h>

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <utility>

#include "aero/quant/types.h"
#include "backend/cpu/block_codes_avx2.h"
#include "backend/cpu/dot.h"
#include "backend/cpu/float_lanes_avx2.h"
#include "backend/cpu/next_panel.h"

namespace aero::backend::cpu {
namespace {

using quant::GgmlType;
using namespace codes_avx2;

constexpr int kRows = 8;              // rows of a panel: one register of 8 rows × 4 columns
constexpr int kPanelRows = 2 * kRows; // rows per micro-kernel call: two panels
constexpr std::int64_t kCols = 256;   // columns of a panel (one K-quant super-block)
constexpr int kTokens = 3;            // tokens per micro-kernel call: 2 × 3 integer + 2 × 3 f32 sums

// The largest |sum| of one int16 lane over a sub-block, codes centred on c.
constexpr int lane_bound(int sub, int bits, int c) {
  const int top = (1 << bits) - 1;
  return sub / 2 * std::max(c, top - c) * 127;
}
// The centre of a format's unsigned codes: its constant offset z, else 0 where the plain sums
// fit, else the middle of the code range. (Signed codes are summed in int32, uncentred.)
template <class F>
constexpr int kCenter = F::kSigned                                            ? 0
                        : F::kZ != 0                                          ? F::kZ
                        : lane_bound(F::kSub, F::kCodeBits, 0) <= 32767 ? 0
                                                                              : 1 << (F::kCodeBits - 1);
// Offsets of its own: an f32 term (m − c·s)·dx·Σx per sub-block.
template <class F>
constexpr bool kMins = !F::kSigned && F::kZ == 0;

// One token's terms per sub-block: the scale dx of the activation block it lies in, the int16
// starts −c·Σx of its two lanes, and dx·Σx.
struct Term {
  float d;
  std::int16_t start[2];
  float dsum;
};

inline float load_f32(const std::uint8_t* p) {
  float v;
  std::memcpy(&v, p, 4);
  return v;
}

// 8 × 8 transpose of 32-bit lanes: out[j] lane i = in[i] lane j.
__attribute__((always_inline)) inline void transpose8(__m256i r[8]) {
  __m256i t[8];
  for (int i = 0; i < 8; i += 2) {
    t[i] = _mm256_unpacklo_epi32(r[i], r[i + 1]);
    t[i + 1] = _mm256_unpackhi_epi32(r[i], r[i + 1]);
  }
  for (int i = 0; i < 8; i += 4) {
    r[i] = _mm256_unpacklo_epi64(t[i], t[i + 2]);
    r[i + 1] = _mm256_unpackhi_epi64(t[i], t[i + 2]);
    r[i + 2] = _mm256_unpacklo_epi64(t[i + 1], t[i + 3]);
    r[i + 3] = _mm256_unpackhi_epi64(t[i + 1], t[i + 3]);
  }
  // r[j] and r[j + 4] now hold column j (low halves) and j + 4 (high) of rows 0-3 and 4-7.
  for (int j = 0; j < 4; ++j) {
    t[j] = _mm256_permute2x128_si256(r[j], r[j + 4], 0x20);
    t[j + 4] = _mm256_permute2x128_si256(r[j], r[j + 4], 0x31);
  }
  for (int j = 0; j < 8; ++j) r[j] = t[j];
}

// ---- Float formats ----------------------------------------------------------------------
//
// Columns in the lanes (llama.cpp's scheme for f16 on AVX2): 4 weight rows × 3 tokens, each
// step 8 columns of the 4 rows converted to f32 straight from where they lie and 8 of the 3
// tokens' activations, 12 fused multiply-adds; one horizontal sum per output at the end (a
// row's columns are few thousand, so that is a few percent). The 4 rows (8-22 KiB as f16) stay
// in L1 while every token passes. No packing: it replaced tiles of 16 tokens against 6 rows
// converted per 256-column block into a buffer (that GEMM's micro-kernel ran at 98-99% of the
// FMA peak from L1 but about 83% in place; this one equalled it in a harness and ran F16
// prompts 2-5% faster with 2 threads, as fast with one). The tile is the row kernels' float tile
// (float_lanes_avx2.h) with 3 tokens where those take 4: 4 × 4 sums and their operands need 21
// of AVX2's 16 registers.
constexpr int kLaneRows = 4, kLaneTokens = 3;

// x: the f32 activation rows themselves, x_stride bytes apart.
template <class S>
void gemm_float(const std::uint8_t* w, std::size_t stride, std::int64_t rows, std::int64_t cols, const std::uint8_t* xb,
                std::size_t x_stride, std::int64_t n, float* y, std::size_t y_stride) {
  using Tile = void (*)(const std::uint8_t*, std::size_t, const float*, std::size_t, std::int64_t, float*, std::size_t);
  static constexpr Tile tiles[kLaneRows][kLaneTokens] = {
      {float_lanes_tile<S, 1, 1>, float_lanes_tile<S, 1, 2>, float_lanes_tile<S, 1, 3>},
      {float_lanes_tile<S, 2, 1>, float_lanes_tile<S, 2, 2>, float_lanes_tile<S, 2, 3>},
      {float_lanes_tile<S, 3, 1>, float_lanes_tile<S, 3, 2>, float_lanes_tile<S, 3, 3>},
      {float_lanes_tile<S, 4, 1>, float_lanes_tile<S, 4, 2>, float_lanes_tile<S, 4, 3>}};
  const auto* x = reinterpret_cast<const float*>(xb);
  const std::size_t xs = x_stride / sizeof(float);
  for (std::int64_t r0 = 0; r0 < rows; r0 += kLaneRows) {
    const auto rm = std::min<std::int64_t>(kLaneRows, rows - r0);
    for (std::int64_t t0 = 0; t0 < n; t0 += kLaneTokens) {
      const auto rn = std::min<std::int64_t>(kLaneTokens, n - t0);
      tiles[rm - 1][rn - 1](w + r0 * stride, stride, x + t0 * xs, xs, cols, y + t0 * y_stride + r0, y_stride);
    }
  }
}

// No preparation: the products read the activation rows as they are.
constexpr GemmKernel float_gemm(decltype(GemmKernel::run) run) { return {{}, nullptr, nullptr, 0, kLaneRows, run}; }

// ---- Block formats -----------------------------------------------------------------------

// A panel: codes (either layout), then per sub-block the 8 rows' scales s and offsets m − c·s.
struct Panel {
  std::uint8_t* q;
  float* s;
  float* m;
};

// Codes of columns k..k+31 of the panel's 8 rows (rows past `valid`, a last panel's, zero).
template <class F>
__attribute__((always_inline)) inline void row_codes(const std::uint8_t* chunk, std::size_t stride, int valid, int k,
                                                     __m256i v[kRows]) {
  for (int r = 0; r < kRows; ++r) v[r] = r < valid ? F::codes(chunk + r * stride, k) : _mm256_setzero_si256();
}

inline void store32(std::uint8_t* p, __m256i v) { _mm256_store_si256(reinterpret_cast<__m256i*>(p), v); }

template <class F>
void pack_scales(const std::uint8_t* chunk, std::size_t stride, int valid, std::int64_t kc, const Panel& p) {
  Scales sm[kRows];
  for (int r = 0; r < kRows; ++r) {
    if (r < valid) {
      sm[r] = F::scales(chunk + r * stride, kc);
    } else {
      const __m256 zero = _mm256_setzero_ps();
      sm[r] = {{zero, zero}, {zero, zero}};
    }
  }
  for (int h = 0; h < (F::kSub == 16 ? 2 : 1); ++h) {
    __m256i s[kRows], m[kRows];
    for (int r = 0; r < kRows; ++r) {
      s[r] = _mm256_castps_si256(sm[r].s[h]);
      m[r] = _mm256_castps_si256(_mm256_fnmadd_ps(_mm256_set1_ps(kCenter<F>), sm[r].s[h], sm[r].m[h]));
    }
    transpose8(s);
    transpose8(m);
    for (int j = 0; j < 8; ++j) {
      store32(reinterpret_cast<std::uint8_t*>(p.s + (8 * h + j) * kRows), s[j]);
      store32(reinterpret_cast<std::uint8_t*>(p.m + (8 * h + j) * kRows), m[j]);
    }
  }
}

template <class F>
void pack(const std::uint8_t* w, std::size_t stride, int valid, std::int64_t k0, std::int64_t kc, const Panel& p) {
  const std::uint8_t* chunk = w + k0 / F::kBlockCols * F::kBlockBytes;
  for (int k = 0; k < kc; k += 32) {
    __m256i v[kRows];
    row_codes<F>(chunk, stride, valid, k, v);
    if constexpr (F::kSigned) {  // each half of a row's 32 codes as 16 int16: 8 pairs of columns
      __m256i high[kRows];
      for (int r = 0; r < kRows; ++r) {
        high[r] = _mm256_cvtepi8_epi16(_mm256_extracti128_si256(v[r], 1));
        v[r] = _mm256_cvtepi8_epi16(_mm256_castsi256_si128(v[r]));
      }
      transpose8(v);
      transpose8(high);
      for (int g = 0; g < 8; ++g) {
        store32(p.q + (k / 2 + g) * 32, v[g]);
        store32(p.q + (k / 2 + 8 + g) * 32, high[g]);
      }
    } else {
      transpose8(v);
      for (int g = 0; g < 8; ++g) store32(p.q + (k / 4 + g) * 32, v[g]);
    }
  }
  pack_scales<F>(chunk, stride, valid, kc, p);
}

inline __m256i broadcast32(const std::uint8_t* p) {
  std::int32_t v;
  std::memcpy(&v, p, 4);
  return _mm256_set1_epi32(v);
}

// c[t][0..7] (+)= acc[t] for the first `valid` rows.
template <int T>
__attribute__((always_inline)) inline void store_rows(const __m256 (&acc)[T], float* c, std::size_t cs, int valid,
                                                      bool accumulate) {
  const __m256i mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(valid), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  for (int t = 0; t < T; ++t) {
    float* out = c + t * cs;
    if (valid == kRows) {
      _mm256_storeu_ps(out, accumulate ? _mm256_add_ps(acc[t], _mm256_loadu_ps(out)) : acc[t]);
    } else {
      _mm256_maskstore_ps(out, mask, accumulate ? _mm256_add_ps(acc[t], _mm256_maskload_ps(out, mask)) : acc[t]);
    }
  }
}

// c[t][0..15] (+)= Σ over the panels' sub-blocks of (s·Σ (q − c)·x)·dx − (m − c·s)·dx·Σx for T
// tokens (T ≤ 3), whose quants (at the panels' first column) and terms (of their first
// sub-block) lie `xs` bytes apart; rows 0-7 from panel 0, 8-15 from panel 1. Unsigned codes:
// int8 quants; signed: int16. Each broadcast of a token's activations meets both panels: with
// one panel of 8 rows and 6 tokens, a step (one load of codes, six broadcasts, six multiplies)
// was bound by its seven loads, 3.75-4.0 cycles on Zen 3 where the six multiplies alone take
// 2.9-3.1; with two panels and 3 tokens (two loads of codes, three broadcasts) 3.15.
template <int T, int kSub, bool kWithMins, bool kSigned>
void kernel(const Panel (&p)[2], const std::uint8_t* x, const std::uint8_t* terms, std::size_t xs, std::int64_t kc,
            float* c, std::size_t cs, int valid, bool accumulate) {
  __m256 acc[2][T];
  for (int t = 0; t < T; ++t) acc[0][t] = acc[1][t] = _mm256_setzero_ps();
  const __m256i ones = _mm256_set1_epi16(1);
  for (std::int64_t sb = 0; sb < kc / kSub; ++sb) {
    const std::uint8_t* term = terms + sb * sizeof(Term);
    __m256i isum[2][T];
    if constexpr (kSigned) {
      for (int t = 0; t < T; ++t) isum[0][t] = isum[1][t] = _mm256_setzero_si256();
      const std::int64_t at = sb * kSub / 2 * 32;
#pragma GCC unroll 2
      for (int g = 0; g < kSub / 2; ++g) {
        const __m256i w0 = _mm256_load_si256(reinterpret_cast<const __m256i*>(p[0].q + at + 32 * g));
        const __m256i w1 = _mm256_load_si256(reinterpret_cast<const __m256i*>(p[1].q + at + 32 * g));
        for (int t = 0; t < T; ++t) {
          const __m256i xv = broadcast32(x + t * xs + 2 * (sb * kSub + 2 * g));
          isum[0][t] = _mm256_add_epi32(isum[0][t], _mm256_madd_epi16(w0, xv));
          isum[1][t] = _mm256_add_epi32(isum[1][t], _mm256_madd_epi16(w1, xv));
        }
      }
    } else {
      for (int t = 0; t < T; ++t) isum[0][t] = isum[1][t] = broadcast32(term + t * xs + offsetof(Term, start));
      const std::int64_t at = sb * kSub / 4 * 32;
#pragma GCC unroll 2
      for (int g = 0; g < kSub / 4; ++g) {
        const __m256i w0 = _mm256_load_si256(reinterpret_cast<const __m256i*>(p[0].q + at + 32 * g));
        const __m256i w1 = _mm256_load_si256(reinterpret_cast<const __m256i*>(p[1].q + at + 32 * g));
        for (int t = 0; t < T; ++t) {
          const __m256i xv = broadcast32(x + t * xs + sb * kSub + 4 * g);
          isum[0][t] = _mm256_add_epi16(isum[0][t], _mm256_maddubs_epi16(w0, xv));
          isum[1][t] = _mm256_add_epi16(isum[1][t], _mm256_maddubs_epi16(w1, xv));
        }
      }
      for (int t = 0; t < T; ++t) {
        isum[0][t] = _mm256_madd_epi16(isum[0][t], ones);
        isum[1][t] = _mm256_madd_epi16(isum[1][t], ones);
      }
    }
    const __m256 s0 = _mm256_load_ps(p[0].s + sb * kRows), s1 = _mm256_load_ps(p[1].s + sb * kRows);
    for (int t = 0; t < T; ++t) {
      const __m256 d = _mm256_set1_ps(load_f32(term + t * xs + offsetof(Term, d)));
      acc[0][t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[0][t]), _mm256_mul_ps(s0, d), acc[0][t]);
      acc[1][t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[1][t]), _mm256_mul_ps(s1, d), acc[1][t]);
    }
    if constexpr (kWithMins) {
      const __m256 m0 = _mm256_load_ps(p[0].m + sb * kRows), m1 = _mm256_load_ps(p[1].m + sb * kRows);
      for (int t = 0; t < T; ++t) {
        const __m256 dsum = _mm256_set1_ps(load_f32(term + t * xs + offsetof(Term, dsum)));
        acc[0][t] = _mm256_fnmadd_ps(m0, dsum, acc[0][t]);
        acc[1][t] = _mm256_fnmadd_ps(m1, dsum, acc[1][t]);
      }
    }
  }
  store_rows<T>(acc[0], c, cs, std::min(valid, kRows), accumulate);
  if (valid > kRows) store_rows<T>(acc[1], c + kRows, cs, valid - kRows, accumulate);
}

template <class F, int... T>
void kernel_n(int n, const Panel (&p)[2], const std::uint8_t* x, const std::uint8_t* terms, std::size_t xs,
              std::int64_t kc, float* c, std::size_t cs, int valid, bool acc, std::integer_sequence<int, T...>) {
  ((n == T + 1 ? kernel<T + 1, F::kSub, kMins<F>, F::kSigned>(p, x, terms, xs, kc, c, cs, valid, acc) : void()), ...);
}

// Bytes per activation: int8, or int16 for signed codes.
template <class F>
constexpr int kQuantBytes = F::kSigned ? 2 : 1;

// One token's prepared activations: the quants of every column, then a Term per sub-block.
template <class F>
std::size_t x_bytes(std::int64_t cols) {
  return static_cast<std::size_t>(cols * kQuantBytes<F>) + static_cast<std::size_t>(cols / F::kSub) * sizeof(Term);
}

// Quantized as the row kernels quantize them (Q8_0 for the legacy formats, Q8_K for the
// K-quants), so that a batch equals its tokens run one by one.
template <class F>
void x_prepare(const float* x, std::int64_t cols, std::uint8_t* out) {
  constexpr int kBlock = F::kQ8K ? 256 : 32;
  const ActivationBlocks blocks = quantize_activation_blocks(F::kQ8K, x, cols);
  std::uint8_t* terms = out + cols * kQuantBytes<F>;
  for (std::int64_t b = 0; b < cols / kBlock; ++b) {
    const std::int8_t* q = blocks.quants(b);
    if constexpr (F::kSigned) {
      for (int j = 0; j < kBlock; ++j) {
        const std::int16_t wide = q[j];
        std::memcpy(out + 2 * (kBlock * b + j), &wide, 2);
      }
    } else {
      std::memcpy(out + kBlock * b, q, kBlock);
    }
    const float d = blocks.scale(b);
    for (int part = 0; part < kBlock / F::kSub; ++part) {
      std::int32_t lane[2] = {0, 0};  // columns 0, 1 and 2, 3 of each group of four
      for (int j = 0; j < F::kSub; ++j) lane[(j / 2) % 2] += q[part * F::kSub + j];
      const Term term{d,
                      {static_cast<std::int16_t>(-kCenter<F> * lane[0]), static_cast<std::int16_t>(-kCenter<F> * lane[1])},
                      d * static_cast<float>(lane[0] + lane[1])};
      std::memcpy(terms + ((b * kBlock) / F::kSub + part) * sizeof(Term), &term, sizeof(Term));
    }
  }
}

template <class F>
void gemm_int(const std::uint8_t* w, std::size_t stride, std::int64_t rows, std::int64_t cols, const std::uint8_t* xq,
              std::size_t x_stride, std::int64_t n, float* y, std::size_t y_stride) {
  static_assert(F::kSigned || lane_bound(F::kSub, F::kCodeBits, kCenter<F>) <= 32767,
                "int16 sums of a sub-block could overflow");
  static_assert(F::kSigned ? F::kZ == 0 : F::kCodeBits <= 7, "unsigned codes must stay below 128");
  constexpr std::int64_t kSubs = kCols / F::kSub;
  alignas(32) static thread_local std::uint8_t codes[2][kCols * kRows * 2];
  alignas(32) static thread_local float scales[2][2][kSubs * kRows];
  const Panel p[2] = {{codes[0], scales[0][0], scales[0][1]}, {codes[1], scales[1][0], scales[1][1]}};
  const std::uint8_t* terms = xq + cols * kQuantBytes<F>;
  const std::int64_t blocks = (n + kTokens - 1) / kTokens;
  for (std::int64_t r = 0; r < rows; r += kPanelRows) {
    const int valid = static_cast<int>(std::min<std::int64_t>(kPanelRows, rows - r));
    for (std::int64_t k0 = 0; k0 < cols; k0 += kCols) {
      const std::int64_t kc = std::min(kCols, cols - k0);
      pack<F>(w + r * stride, stride, std::min(valid, kRows), k0, kc, p[0]);
      pack<F>(w + (r + kRows) * stride, stride, std::max(valid - kRows, 0), k0, kc, p[1]);  // zeros past the last row
      const NextPanel next(w, stride, rows, kPanelRows, r, k0, kCols, cols,
                           [](std::int64_t k) { return k / F::kBlockCols * F::kBlockBytes; });
      for (std::int64_t t = 0; t < n; t += kTokens) {
        next.prefetch(t / kTokens, blocks);
        kernel_n<F>(static_cast<int>(std::min<std::int64_t>(kTokens, n - t)), p, xq + t * x_stride + k0 * kQuantBytes<F>,
                    terms + t * x_stride + (k0 / F::kSub) * sizeof(Term), x_stride, kc, y + t * y_stride + r, y_stride,
                    valid, k0 > 0, std::make_integer_sequence<int, kTokens>{});
      }
    }
  }
}

template <class F>
constexpr GemmKernel int_gemm() {
  return {{x_bytes<F>, x_prepare<F>}, nullptr, nullptr, 0, kPanelRows, gemm_int<F>};
}

}  // namespace

const GemmKernel* avx2_gemm(GgmlType type) {
  static const std::pair<GgmlType, GemmKernel> table[] = {
      {GgmlType::F32, float_gemm(gemm_float<F32Load>)},   {GgmlType::F16, float_gemm(gemm_float<F16Load>)},
      {GgmlType::BF16, float_gemm(gemm_float<Bf16Load>)},
      {GgmlType::Q4_0, int_gemm<Q4_0>()}, {GgmlType::Q4_1, int_gemm<Q4_1>()},     {GgmlType::Q5_0, int_gemm<Q5_0>()},
      {GgmlType::Q5_1, int_gemm<Q5_1>()}, {GgmlType::Q8_0, int_gemm<Q8_0>()},     {GgmlType::Q2_K, int_gemm<Q2_K>()},
      {GgmlType::Q3_K, int_gemm<Q3_K>()}, {GgmlType::Q4_K, int_gemm<Q4_K>()},     {GgmlType::Q5_K, int_gemm<Q5_K>()},
      {GgmlType::Q6_K, int_gemm<Q6_K>()}, {GgmlType::IQ4_NL, int_gemm<IQ4_NL>()}, {GgmlType::IQ4_XS, int_gemm<IQ4_XS>()}};
  return find_kernel(table, type);
}

}  // namespace aero::backend::cpu
