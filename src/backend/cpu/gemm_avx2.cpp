// Batched products for prompt processing on AVX2 (no VNNI): y[t] = W · x[t] for many tokens.
//
// The scheme of gemm_avx512.cpp on 256-bit registers. Weights are unpacked once per panel of
// 8 rows × 256 columns into unsigned codes laid out [column / 4][8 rows][4] (a register holds
// the 8 rows' codes of four columns) with per-sub-block scales; a micro-kernel meets 6 tokens at
// a time, each token's four int8 activations of those columns broadcast into one maddubs with
// every row at once.
//
// Without VNNI the products land in int16 pairs (maddubs), summed in int16 over a sub-block and
// widened once per sub-block (madd). That is exact when every int16 lane's final sum fits:
// maddubs adds two products of a code (< 2^7) and an activation (|x| ≤ 127), and a lane sums
// the products of kSub / 2 columns of a sub-block (columns 4g + 2p and 4g + 2p + 1 for lane
// p). Codes are centred where the plain sum could exceed int16: the sum runs over (q − c)·x,
// started from −c·Σx of the lane's columns (prepared with the activations), and the offset m
// becomes m − c·s. For the formats whose offset is a constant multiple z of the scale (Q4_0,
// Q5_0, Q3_K, Q6_K) c = z, so the offset disappears; int16 additions wrap, so only the final
// sum needs to fit. Q8_0 and the IQ4 code books (codes up to 255) stay with the row kernels.
#include <immintrin.h>

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <utility>
#include <vector>

#include "aero/quant/types.h"
#include "backend/cpu/block_codes_avx2.h"
#include "backend/cpu/dot.h"
#include "backend/cpu/next_panel.h"

namespace aero::backend::cpu {
namespace {

using quant::GgmlType;
using namespace codes_avx2;

constexpr int kRows = 8;              // rows of a panel: one register of 8 rows × 4 columns
constexpr std::int64_t kCols = 256;   // columns of a panel (one K-quant super-block)
constexpr int kTokens = 6;            // tokens per micro-kernel call: 6 int16 + 6 f32 sums

// The largest |sum| of one int16 lane over a sub-block, codes centred on c.
constexpr int lane_bound(int sub, int bits, int c) {
  const int top = (1 << bits) - 1;
  return sub / 2 * std::max(c, top - c) * 127;
}
// The centre of a format's codes: its constant offset z, else 0 where the plain sums fit, else
// the middle of the code range.
template <class F>
constexpr int kCenter = F::kZ != 0 ? F::kZ : lane_bound(F::kSub, F::kCodeBits, 0) <= 32767 ? 0 : 1 << (F::kCodeBits - 1);
template <class F>
constexpr bool kMins = F::kZ == 0;  // offsets of its own: an f32 term m·dx·Σx per sub-block

// One token's terms per sub-block: the scale dx of the activation block it lies in, the int16
// starts −c·Σx of its two lanes, and dx·Σx.
struct Term {
  float d;
  std::int16_t start[2];
  float dsum;
};

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

// A panel: codes [column / 4][8 rows][4], then per sub-block the 8 rows' scales s and offsets
// m − c·s.
struct Panel {
  std::uint8_t* q;
  float* s;
  float* m;
};

template <class F>
void pack(const std::uint8_t* w, std::size_t stride, int valid, std::int64_t k0, std::int64_t kc, const Panel& p) {
  const std::uint8_t* chunk = w + k0 / F::kBlockCols * F::kBlockBytes;
  for (int k = 0; k < kc; k += 32) {
    __m256i v[kRows];
    for (int r = 0; r < kRows; ++r)  // rows past `valid` (a last panel's) get zero codes
      v[r] = r < valid ? F::codes(chunk + r * stride, k) : _mm256_setzero_si256();
    transpose8(v);
    for (int g = 0; g < 8; ++g) _mm256_store_si256(reinterpret_cast<__m256i*>(p.q + (k / 4 + g) * 32), v[g]);
  }
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
      _mm256_store_si256(reinterpret_cast<__m256i*>(p.s + (8 * h + j) * kRows), s[j]);
      _mm256_store_si256(reinterpret_cast<__m256i*>(p.m + (8 * h + j) * kRows), m[j]);
    }
  }
}

inline __m256i broadcast32(const std::uint8_t* p) {
  std::int32_t v;
  std::memcpy(&v, p, 4);
  return _mm256_set1_epi32(v);
}

// c[t][0..7] (+)= Σ over the panel's sub-blocks of (s·Σ (q − c)·x)·dx − (m − c·s)·dx·Σx for T
// tokens, whose quants (at the panel's first column) and terms (of its first sub-block) lie
// `xs` bytes apart.
template <int T, int kSub, bool kWithMins>
void kernel(const Panel& p, const std::uint8_t* x, const std::uint8_t* terms, std::size_t xs, std::int64_t kc, float* c,
            std::size_t cs, int valid, bool accumulate) {
  __m256 acc[T];
  for (int t = 0; t < T; ++t) acc[t] = _mm256_setzero_ps();
  const __m256i ones = _mm256_set1_epi16(1);
  for (std::int64_t sb = 0; sb < kc / kSub; ++sb) {
    const std::uint8_t* term = terms + sb * sizeof(Term);
    __m256i isum[T];
    for (int t = 0; t < T; ++t) isum[t] = broadcast32(term + t * xs + offsetof(Term, start));
    const std::uint8_t* q = p.q + sb * kSub / 4 * 32;
#pragma GCC unroll 8
    for (int g = 0; g < kSub / 4; ++g) {
      const __m256i wv = _mm256_load_si256(reinterpret_cast<const __m256i*>(q + 32 * g));
      for (int t = 0; t < T; ++t)
        isum[t] = _mm256_add_epi16(isum[t], _mm256_maddubs_epi16(wv, broadcast32(x + t * xs + sb * kSub + 4 * g)));
    }
    const __m256 s = _mm256_load_ps(p.s + sb * kRows);
    for (int t = 0; t < T; ++t) {
      float d;
      std::memcpy(&d, term + t * xs + offsetof(Term, d), 4);
      const __m256 sums = _mm256_cvtepi32_ps(_mm256_madd_epi16(isum[t], ones));
      acc[t] = _mm256_fmadd_ps(sums, _mm256_mul_ps(s, _mm256_set1_ps(d)), acc[t]);
    }
    if constexpr (kWithMins) {
      const __m256 m = _mm256_load_ps(p.m + sb * kRows);
      for (int t = 0; t < T; ++t) {
        float dsum;
        std::memcpy(&dsum, term + t * xs + offsetof(Term, dsum), 4);
        acc[t] = _mm256_fnmadd_ps(m, _mm256_set1_ps(dsum), acc[t]);
      }
    }
  }
  const __m256i mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(valid), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  for (int t = 0; t < T; ++t) {
    float* out = c + t * cs;
    if (valid == kRows) {
      _mm256_storeu_ps(out, accumulate ? _mm256_add_ps(acc[t], _mm256_loadu_ps(out)) : acc[t]);
    } else {
      const __m256 v = accumulate ? _mm256_add_ps(acc[t], _mm256_maskload_ps(out, mask)) : acc[t];
      _mm256_maskstore_ps(out, mask, v);
    }
  }
}

template <class F, int... T>
void kernel_n(int n, const Panel& p, const std::uint8_t* x, const std::uint8_t* terms, std::size_t xs, std::int64_t kc,
              float* c, std::size_t cs, int valid, bool acc, std::integer_sequence<int, T...>) {
  ((n == T + 1 ? kernel<T + 1, F::kSub, kMins<F>>(p, x, terms, xs, kc, c, cs, valid, acc) : void()), ...);
}

// One token's prepared activations: the int8 quants of every column, then a Term per sub-block.
template <class F>
std::size_t x_bytes(std::int64_t cols) {
  return static_cast<std::size_t>(cols) + static_cast<std::size_t>(cols / F::kSub) * sizeof(Term);
}

// Quantized as the row kernels quantize them (Q8_0 for the legacy formats, Q8_K for the
// K-quants), so that a batch equals its tokens run one by one.
template <class F>
void x_prepare(const float* x, std::int64_t cols, std::uint8_t* out) {
  constexpr int kBlock = F::kQ8K ? 256 : 32, kBlockBytes = F::kQ8K ? 292 : 34, kQuants = F::kQ8K ? 4 : 2;
  thread_local std::vector<std::uint8_t> blocks;
  blocks.resize(static_cast<std::size_t>(cols / kBlock) * kBlockBytes);
  quantize_activations(F::kQ8K, x, cols, blocks.data());
  std::uint8_t* terms = out + cols;
  for (std::int64_t b = 0; b < cols / kBlock; ++b) {
    const std::uint8_t* blk = blocks.data() + b * kBlockBytes;
    const auto* q = reinterpret_cast<const std::int8_t*>(blk + kQuants);
    std::memcpy(out + kBlock * b, q, kBlock);
    float d;
    if constexpr (F::kQ8K) std::memcpy(&d, blk, 4);
    else d = half(blk);
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
  static_assert(lane_bound(F::kSub, F::kCodeBits, kCenter<F>) <= 32767, "int16 sums of a sub-block could overflow");
  static_assert(F::kCodeBits <= 7 && !F::kSigned, "codes must be unsigned bytes below 128");
  constexpr std::int64_t kSubs = kCols / F::kSub;
  alignas(32) static thread_local std::uint8_t codes[kCols * kRows];
  alignas(32) static thread_local float scales[2][kSubs * kRows];
  const Panel p{codes, scales[0], scales[1]};
  const std::uint8_t* terms = xq + cols;
  const std::int64_t blocks = (n + kTokens - 1) / kTokens;
  for (std::int64_t r = 0; r < rows; r += kRows) {
    const int valid = static_cast<int>(std::min<std::int64_t>(kRows, rows - r));
    for (std::int64_t k0 = 0; k0 < cols; k0 += kCols) {
      const std::int64_t kc = std::min(kCols, cols - k0);
      pack<F>(w + r * stride, stride, valid, k0, kc, p);
      const NextPanel next(w, stride, rows, kRows, r, k0, kCols, cols,
                           [](std::int64_t k) { return k / F::kBlockCols * F::kBlockBytes; });
      for (std::int64_t t = 0; t < n; t += kTokens) {
        next.prefetch(t / kTokens, blocks);
        kernel_n<F>(static_cast<int>(std::min<std::int64_t>(kTokens, n - t)), p, xq + t * x_stride + k0,
                    terms + t * x_stride + (k0 / F::kSub) * sizeof(Term), x_stride, kc, y + t * y_stride + r, y_stride,
                    valid, k0 > 0, std::make_integer_sequence<int, kTokens>{});
      }
    }
  }
}

template <class F>
constexpr GemmKernel int_gemm() {
  return {{x_bytes<F>, x_prepare<F>}, nullptr, nullptr, 0, kRows, gemm_int<F>};
}

}  // namespace

const GemmKernel* avx2_gemm(GgmlType type) {
  static const std::pair<GgmlType, GemmKernel> table[] = {
      {GgmlType::Q4_0, int_gemm<Q4_0>()}, {GgmlType::Q4_1, int_gemm<Q4_1>()}, {GgmlType::Q5_0, int_gemm<Q5_0>()},
      {GgmlType::Q5_1, int_gemm<Q5_1>()}, {GgmlType::Q2_K, int_gemm<Q2_K>()}, {GgmlType::Q3_K, int_gemm<Q3_K>()},
      {GgmlType::Q4_K, int_gemm<Q4_K>()}, {GgmlType::Q5_K, int_gemm<Q5_K>()}, {GgmlType::Q6_K, int_gemm<Q6_K>()}};
  return find_kernel(table, type);
}

}  // namespace aero::backend::cpu
