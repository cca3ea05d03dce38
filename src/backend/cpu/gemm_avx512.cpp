// Batched products for prompt processing on AVX-512: y[t] = W · x[t] for many tokens at once.
//
// The row kernels' tiles (4 rows × 4 tokens, dot-product form) spend as many instructions
// unpacking weights and reducing sums as multiplying. Here, as in a BLAS, weights are unpacked
// once per call into the layout a micro-kernel reads, which then meets every token with its
// sums in registers and one fused multiply-add (or one VNNI u8·s8 dot of four columns) per 16
// lanes, one operand broadcast from memory:
// - block formats: a panel of 32 rows × 256 columns as unsigned 8-bit codes (the 32 rows' codes
//   of four columns in one register) with per-sub-block scales; 32 rows × 6 tokens of sums;
// - float formats: 12 rows converted to f32, against tiles of 32 tokens packed once per call;
//   12 rows × 32 tokens of sums (see "Float formats").
// The weights stay where they lie; panels are per-thread scratch buffers.
//
// Block formats (block_codes_avx512.h): a weight is s·q − m per sub-block (q the unsigned code,
// s its scale, m its offset). Activations are quantized as the row kernels quantize them (Q8_0,
// or Q8_K for the super-block formats) and laid out as int8 rows plus, per sub-block, the
// scale and the offset's share: −z·Σx as an int32 that starts the integer sum when m = z·s for
// a constant z, else d·Σx for an f32 multiply by the panel's m.
#include "backend/cpu/avx512_intrinsics.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "aero/quant/types.h"
#include "backend/cpu/block_codes_avx512.h"
#include "backend/cpu/dot.h"
#include "backend/cpu/next_panel.h"
#include "backend/cpu/panels_avx512.h"

namespace aero::backend::cpu {
namespace {

using quant::GgmlType;
using namespace codes;

constexpr int kRows = kGemmRows;  // rows of a panel: two 16-lane registers

// Writes 16 rows' first `lanes` 32-bit lanes each (in[row]) to panel entries [lane][row0 + row],
// 32 rows apart.
__attribute__((always_inline)) inline void store_transposed(__m512i in[16], std::uint8_t* panel, int row0,
                                                            int lanes = 16) {
  transpose16(in);
  for (int j = 0; j < lanes; ++j) _mm512_storeu_si512(panel + (j * kRows + row0) * 4, in[j]);
}

// c[t][r] (+)= acc[t][r / 16] lane r % 16 for the panel's first `valid` rows.
template <int T>
__attribute__((always_inline)) inline void store_tile(const __m512 (&acc)[T][2], float* c, std::size_t c_stride,
                                                      int valid, bool accumulate) {
  const __mmask16 mask[2] = {static_cast<__mmask16>(valid >= 16 ? 0xFFFF : (1u << valid) - 1),
                             static_cast<__mmask16>(valid >= 32 ? 0xFFFF : valid <= 16 ? 0 : (1u << (valid - 16)) - 1)};
  for (int t = 0; t < T; ++t)
    for (int j = 0; j < 2; ++j) {
      float* out = c + t * c_stride + 16 * j;
      const __m512 v = accumulate ? _mm512_add_ps(acc[t][j], _mm512_maskz_loadu_ps(mask[j], out)) : acc[t][j];
      _mm512_mask_storeu_ps(out, mask[j], v);
    }
}

// ---- Float formats ----------------------------------------------------------------------
//
// Tokens in the lanes, weights broadcast: the batch is packed once per call as tiles of 32
// tokens, [column][token]; a group of 12 weight rows is converted to f32 once, column by column
// ([column][row]: the kernel's broadcasts then read one stream, not 12 — 1 thread on Zen 4, F16
// 82 → 100 GFLOP/s), and meets each tile over all its columns, 12 × 2 accumulators in registers
// and each weight broadcast from memory into two fused multiply-adds. Only the 12 × 32 sums are
// transposed, once per group and tile, on their way out.

std::size_t float_batch_bytes(std::int64_t n, std::int64_t cols) {
  return static_cast<std::size_t>(token_tiles(n) * cols * kFloatTokens) * sizeof(float);
}

// Packs tile `tile` (tokens past n are zero).
void float_batch_prepare(const float* x, std::int64_t n, std::int64_t cols, std::uint8_t* out, std::int64_t tile) {
  float* packed = reinterpret_cast<float*>(out) + tile * cols * kFloatTokens;
  const std::int64_t t0 = tile * kFloatTokens, tokens = std::min<std::int64_t>(kFloatTokens, n - t0);
  for (std::int64_t k = 0; k < cols; k += 16)  // 16 columns × the tile's tokens, transposed by 16 × 16
    for (int half = 0; half < 2; ++half) {
      __m512i v[16];
      for (int t = 0; t < 16; ++t) {
        const std::int64_t token = 16 * half + t;
        const std::int64_t left = std::min<std::int64_t>(16, cols - k);
        v[t] = token < tokens ? _mm512_castps_si512(_mm512_maskz_loadu_ps(static_cast<__mmask16>((1u << left) - 1),
                                                                          x + (t0 + token) * cols + k))
                              : _mm512_setzero_si512();
      }
      transpose16(v);
      for (int j = 0; j < 16 && k + j < cols; ++j)
        _mm512_storeu_si512(packed + (k + j) * kFloatTokens + 16 * half, v[j]);
    }
}

struct F32Src {
  static constexpr int kBytes = 4;
  static __m512 load16(const std::uint8_t* p, __mmask16 m) { return _mm512_maskz_loadu_ps(m, p); }
};
struct F16Src {
  static constexpr int kBytes = 2;
  static __m512 load16(const std::uint8_t* p, __mmask16 m) { return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, p)); }
};
struct Bf16Src {
  static constexpr int kBytes = 2;
  static __m512 load16(const std::uint8_t* p, __mmask16 m) {
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, p)), 16));
  }
};

// c[t][r] (+)= Σ_k w[k][r] · x[k][t] for the 12 rows of `w` (f32, [column][row]) and a tile.
void float_kernel(const float* w, const float* x, std::int64_t cols, float* c, std::size_t c_stride, int valid_rows,
                  int valid_tokens) {
  constexpr int R = kFloatRowGroup;
  __m512 acc[R][2];
  for (int r = 0; r < R; ++r) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
  for (std::int64_t k = 0; k < cols; ++k) {
    const __m512 x0 = _mm512_loadu_ps(x + k * kFloatTokens), x1 = _mm512_loadu_ps(x + k * kFloatTokens + 16);
    for (int r = 0; r < R; ++r) {
      const __m512 wv = _mm512_set1_ps(w[k * R + r]);
      acc[r][0] = _mm512_fmadd_ps(wv, x0, acc[r][0]);
      acc[r][1] = _mm512_fmadd_ps(wv, x1, acc[r][1]);
    }
  }
  store_group_sums(acc, c, c_stride, valid_rows, valid_tokens);
}

template <class S>
void gemm_float(const std::uint8_t* w, std::size_t stride, std::int64_t rows, std::int64_t cols,
                const std::uint8_t* packed_x, std::size_t, std::int64_t n, float* y, std::size_t y_stride) {
  thread_local std::vector<float> group_buffer;
  group_buffer.resize(static_cast<std::size_t>(kFloatRowGroup * cols));
  float* group = group_buffer.data();
  const auto* x = reinterpret_cast<const float*>(packed_x);
  for (std::int64_t r = 0; r < rows; r += kFloatRowGroup) {
    const int valid = static_cast<int>(std::min<std::int64_t>(kFloatRowGroup, rows - r));
    // Converted to f32 16 columns at a time; the next group's rows are asked for early.
    pack_group(group, cols, valid, [&](int i, std::int64_t k) __attribute__((always_inline)) {
      const std::uint8_t* row = w + (r + i) * stride + k * S::kBytes;
      if (i < kFloatRowGroup && r + i + kFloatRowGroup < rows)
        _mm_prefetch(reinterpret_cast<const char*>(row + kFloatRowGroup * stride), _MM_HINT_T0);
      const auto mask = static_cast<__mmask16>(cols - k >= 16 ? 0xFFFF : (1u << (cols - k)) - 1);
      return _mm512_castps_si512(S::load16(row, mask));
    });
    for (std::int64_t tile = 0; tile < token_tiles(n); ++tile)
      float_kernel(group, x + tile * cols * kFloatTokens, cols, y + tile * kFloatTokens * y_stride + r, y_stride, valid,
                   static_cast<int>(std::min<std::int64_t>(kFloatTokens, n - tile * kFloatTokens)));
  }
}

// ---- Block formats -----------------------------------------------------------------------

constexpr std::int64_t kIntCols = 256;  // columns per panel (one K-quant super-block)
constexpr int kIntTokens = 6;

// A panel: codes [column/4][32 rows][4], then per sub-block the 32 rows' scales s and offsets m.
struct Panel {
  std::uint8_t* q;
  float* s;
  float* m;
};


template <class F>
void pack_int(const std::uint8_t* w, std::size_t stride, int valid, std::int64_t k0, std::int64_t kc, const Panel& p) {
  const std::uint8_t* chunk = w + k0 / F::kBlockCols * F::kBlockBytes;
  for (std::int64_t k = 0; k < kc; k += 64)
    for (int half = 0; half < 2; ++half) {
      __m512i v[16];
      for (int r = 0; r < 16; ++r)  // rows past `valid` (a last panel's) get zero codes
        v[r] = 16 * half + r < valid ? F::codes(chunk + (16 * half + r) * stride, static_cast<int>(k), k + 64 <= kc ? 2 : 1)
                                     : _mm512_setzero_si512();
      store_transposed(v, p.q + k * kRows, 16 * half);
    }
  for (int half = 0; half < 2; ++half) {
    __m512i s[16], m[16];
    for (int r = 0; r < 16; ++r) {
      const Scales sm = 16 * half + r < valid ? F::scales(chunk + (16 * half + r) * stride, kc)
                                              : Scales{_mm512_setzero_ps(), _mm512_setzero_ps()};
      s[r] = _mm512_castps_si512(sm.s);
      m[r] = _mm512_castps_si512(sm.m);
    }
    const int subs = static_cast<int>(kc / F::kSub);
    store_transposed(s, reinterpret_cast<std::uint8_t*>(p.s), 16 * half, subs);
    store_transposed(m, reinterpret_cast<std::uint8_t*>(p.m), 16 * half, subs);
  }
}

// c[t][0..31] (+)= Σ over the panel's sub-blocks of (s·Σ q·x)·dx − (m·dx·Σx) for T tokens;
// with kZ the offset term is the int32 −z·Σx that starts each sub-block's integer sum.
template <int T, int kSub, bool kMins>
void int_kernel(const Panel& p, const std::uint8_t* x, std::size_t x_stride, const std::uint8_t* terms,
                std::size_t terms_stride, std::int64_t kc, float* c, std::size_t c_stride, int valid, bool accumulate) {
  __m512 acc[T][2];
  for (int t = 0; t < T; ++t) acc[t][0] = acc[t][1] = _mm512_setzero_ps();
  for (std::int64_t sb = 0; sb < kc / kSub; ++sb) {
    __m512i isum[T][2];
    for (int t = 0; t < T; ++t) {
      if constexpr (kMins) {
        isum[t][0] = isum[t][1] = _mm512_setzero_si512();
      } else {
        std::int32_t start;
        std::memcpy(&start, terms + t * terms_stride + sb * 8 + 4, 4);
        isum[t][0] = isum[t][1] = _mm512_set1_epi32(start);
      }
    }
    for (int g = 0; g < kSub / 4; ++g) {
      const std::uint8_t* q = p.q + (sb * kSub / 4 + g) * kRows * 4;
      const __m512i w0 = _mm512_loadu_si512(q), w1 = _mm512_loadu_si512(q + 64);
      for (int t = 0; t < T; ++t) {
        std::int32_t four;
        std::memcpy(&four, x + t * x_stride + sb * kSub + 4 * g, 4);
        const __m512i xv = _mm512_set1_epi32(four);
        isum[t][0] = _mm512_dpbusd_epi32(isum[t][0], w0, xv);
        isum[t][1] = _mm512_dpbusd_epi32(isum[t][1], w1, xv);
      }
    }
    const __m512 s0 = _mm512_loadu_ps(p.s + sb * kRows), s1 = _mm512_loadu_ps(p.s + sb * kRows + 16);
    __m512 m0, m1;
    if constexpr (kMins) m0 = _mm512_loadu_ps(p.m + sb * kRows), m1 = _mm512_loadu_ps(p.m + sb * kRows + 16);
    for (int t = 0; t < T; ++t) {
      float dx;
      std::memcpy(&dx, terms + t * terms_stride + sb * 8, 4);
      const __m512 d = _mm512_set1_ps(dx);
      acc[t][0] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum[t][0]), _mm512_mul_ps(s0, d), acc[t][0]);
      acc[t][1] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum[t][1]), _mm512_mul_ps(s1, d), acc[t][1]);
      if constexpr (kMins) {
        float ds;
        std::memcpy(&ds, terms + t * terms_stride + sb * 8 + 4, 4);
        const __m512 dsv = _mm512_set1_ps(ds);
        acc[t][0] = _mm512_fnmadd_ps(m0, dsv, acc[t][0]);
        acc[t][1] = _mm512_fnmadd_ps(m1, dsv, acc[t][1]);
      }
    }
  }
  store_tile<T>(acc, c, c_stride, valid, accumulate);
}

template <class F, int... T>
void int_kernel_n(int n, const Panel& p, const std::uint8_t* x, std::size_t xs, const std::uint8_t* terms,
                  std::size_t ts, std::int64_t kc, float* c, std::size_t cs, int valid, bool acc,
                  std::integer_sequence<int, T...>) {
  ((n == T + 1 ? int_kernel<T + 1, F::kSub, F::kZ == 0>(p, x, xs, terms, ts, kc, c, cs, valid, acc) : void()), ...);
}

// The prepared activations of one token: the int8 quants of every column, then per sub-block
// {f32 d, 4 bytes}: the scale of the activation block it lies in, and −z·Σx (int32, formats
// with kZ) or d·Σx (f32).
template <class F>
std::size_t int_x_bytes(std::int64_t cols) {
  return static_cast<std::size_t>(cols) + static_cast<std::size_t>(cols / F::kSub) * 8;
}

// Writes one sub-block's terms from its int8 quants and the scale d of their block.
template <class F>
void write_terms(const std::int8_t* q, float d, std::uint8_t* term) {
  std::int32_t sum = 0;
  for (int j = 0; j < F::kSub; ++j) sum += q[j];
  std::memcpy(term, &d, 4);
  if constexpr (F::kZ == 0) {
    const float ds = d * static_cast<float>(sum);
    std::memcpy(term + 4, &ds, 4);
  } else {
    const std::int32_t start = -F::kZ * sum;
    std::memcpy(term + 4, &start, 4);
  }
}

// Quantized as the row kernels quantize them (Q8_0 for the legacy formats, Q8_K for the
// K-quants), so that a batch equals its tokens run one by one.
template <class F>
void int_x_prepare(const float* x, std::int64_t cols, std::uint8_t* out) {
  constexpr int kBlock = F::kQ8K ? 256 : 32;
  const ActivationBlocks blocks = quantize_activation_blocks(F::kQ8K, x, cols);
  std::uint8_t* terms = out + cols;
  for (std::int64_t b = 0; b < cols / kBlock; ++b) {
    const std::int8_t* q = blocks.quants(b);
    std::memcpy(out + kBlock * b, q, kBlock);
    const float d = blocks.scale(b);
    for (int part = 0; part < kBlock / F::kSub; ++part)
      write_terms<F>(q + part * F::kSub, d, terms + ((b * kBlock) / F::kSub + part) * 8);
  }
}

template <class F>
void gemm_int(const std::uint8_t* w, std::size_t stride, std::int64_t rows, std::int64_t cols, const std::uint8_t* xq,
              std::size_t x_stride, std::int64_t n, float* y, std::size_t y_stride) {
  constexpr std::int64_t kSubs = kIntCols / F::kSub;
  thread_local std::vector<std::uint8_t> buffer;
  buffer.resize(kIntCols * kRows + 2 * kSubs * kRows * sizeof(float) + 64);
  auto* base = reinterpret_cast<std::uint8_t*>((reinterpret_cast<std::uintptr_t>(buffer.data()) + 63) & ~std::uintptr_t{63});
  const Panel p{base, reinterpret_cast<float*>(base + kIntCols * kRows),
                reinterpret_cast<float*>(base + kIntCols * kRows) + kSubs * kRows};
  const std::uint8_t* terms = xq + cols;
  for (std::int64_t r = 0; r < rows; r += kRows) {
    const int valid = static_cast<int>(std::min<std::int64_t>(kRows, rows - r));
    for (std::int64_t k0 = 0; k0 < cols; k0 += kIntCols) {
      const std::int64_t kc = std::min(kIntCols, cols - k0);
      pack_int<F>(w + r * stride, stride, valid, k0, kc, p);
      const NextPanel next(w, stride, rows, kRows, r, k0, kIntCols, cols,
                           [](std::int64_t k) { return k / F::kBlockCols * F::kBlockBytes; });
      const std::int64_t blocks = (n + kIntTokens - 1) / kIntTokens;
      for (std::int64_t t = 0; t < n; t += kIntTokens) {
        next.prefetch(t / kIntTokens, blocks);
        int_kernel_n<F>(static_cast<int>(std::min<std::int64_t>(kIntTokens, n - t)), p, xq + t * x_stride + k0,
                        x_stride, terms + t * x_stride + (k0 / F::kSub) * 8, x_stride, kc, y + t * y_stride + r,
                        y_stride, valid, k0 > 0, std::make_integer_sequence<int, kIntTokens>{});
      }
    }
  }
}

template <class F>
constexpr GemmKernel int_gemm() {
  return {{int_x_bytes<F>, int_x_prepare<F>}, nullptr, nullptr, 0, kRows, gemm_int<F>};
}

}  // namespace

// Compiled here, without VBMI, because it serves every AVX-512 F machine.
void quantize_q8_0_avx512(const float* x, std::int64_t cols, std::uint8_t* blocks) {
  const __m512i sign = _mm512_set1_epi32(static_cast<int>(0x80000000u)), one = _mm512_castps_si512(_mm512_set1_ps(1.0f));
  const __m512 half = _mm512_set1_ps(0.5f);
  for (std::int64_t b = 0; b < cols / 32; ++b, x += 32, blocks += 34) {
    const __m512 v0 = _mm512_loadu_ps(x), v1 = _mm512_loadu_ps(x + 16);
    // max(|v|, amax) keeps amax when v is NaN, as std::max(amax, |v|) does.
    const float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(v1), _mm512_abs_ps(v0)));
    const float d = amax / 127.0f;
    const __m512 id = _mm512_set1_ps(d != 0.0f ? 1.0f / d : 0.0f);
    const std::uint16_t dh = quant::fp32_to_fp16(d);
    std::memcpy(blocks, &dh, 2);
    for (int h = 0; h < 2; ++h) {
      const __m512 v = _mm512_mul_ps(h ? v1 : v0, id);
      const __m512 t = _mm512_roundscale_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
      const __mmask16 up = _mm512_cmp_ps_mask(_mm512_abs_ps(_mm512_sub_ps(v, t)), half, _CMP_GE_OQ);
      const __m512 away = _mm512_castsi512_ps(_mm512_or_si512(one, _mm512_and_si512(_mm512_castps_si512(v), sign)));
      const __m512 r = _mm512_mask_add_ps(t, up, t, away);
      _mm_storeu_si128(reinterpret_cast<__m128i*>(blocks + 2 + 16 * h), _mm512_cvtepi32_epi8(_mm512_cvttps_epi32(r)));
    }
  }
}

// As the reference: the block's largest magnitude (its first occurrence, with its sign) sets
// iscale = −127 / max; quants round half to even (nearbyint) and stay ≤ 127; sums per 16.
void quantize_q8_k_avx512(const float* x, std::int64_t cols, std::uint8_t* blocks) {
  for (std::int64_t b = 0; b < cols / 256; ++b, x += 256, blocks += 292) {
    __m512 amax_v = _mm512_setzero_ps();
    for (int i = 0; i < 16; ++i) amax_v = _mm512_max_ps(_mm512_abs_ps(_mm512_loadu_ps(x + 16 * i)), amax_v);  // NaN: kept out
    const float amax = _mm512_reduce_max_ps(amax_v);
    std::memset(blocks, 0, 292);
    if (amax == 0.0f) continue;
    float max = 0.0f;
    for (int i = 0; i < 16; ++i) {
      const __mmask16 at = _mm512_cmp_ps_mask(_mm512_abs_ps(_mm512_loadu_ps(x + 16 * i)), _mm512_set1_ps(amax), _CMP_EQ_OQ);
      if (at) {
        max = x[16 * i + __builtin_ctz(at)];
        break;
      }
    }
    const float iscale = -127.0f / max;
    const __m512 scale = _mm512_set1_ps(iscale);
    for (int i = 0; i < 16; ++i) {
      const __m512 v = _mm512_roundscale_ps(_mm512_mul_ps(_mm512_loadu_ps(x + 16 * i), scale),
                                            _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
      const __m512i q = _mm512_min_epi32(_mm512_cvtps_epi32(v), _mm512_set1_epi32(127));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(blocks + 4 + 16 * i), _mm512_cvtepi32_epi8(q));
      const auto sum = static_cast<std::int16_t>(_mm512_reduce_add_epi32(q));
      std::memcpy(blocks + 260 + 2 * i, &sum, 2);
    }
    const float d = 1 / iscale;
    std::memcpy(blocks, &d, 4);
  }
}

const GemmKernel* avx512_gemm(GgmlType type) {
  static const std::pair<GgmlType, GemmKernel> table[] = {
      {GgmlType::F32, {{}, float_batch_bytes, float_batch_prepare, kFloatTokens, kFloatRowGroup, gemm_float<F32Src>}},
      {GgmlType::F16, {{}, float_batch_bytes, float_batch_prepare, kFloatTokens, kFloatRowGroup, gemm_float<F16Src>}},
      {GgmlType::BF16, {{}, float_batch_bytes, float_batch_prepare, kFloatTokens, kFloatRowGroup, gemm_float<Bf16Src>}},
      {GgmlType::Q4_0, int_gemm<Q4_0Fmt>()},     {GgmlType::Q4_1, int_gemm<Q4_1Fmt>()},
      {GgmlType::Q5_0, int_gemm<Q5_0Fmt>()},     {GgmlType::Q5_1, int_gemm<Q5_1Fmt>()},
      {GgmlType::Q8_0, int_gemm<Q8_0Fmt>()},     {GgmlType::IQ4_NL, int_gemm<IQ4_NLFmt>()},
      {GgmlType::Q2_K, int_gemm<Q2_KFmt>()},     {GgmlType::Q3_K, int_gemm<Q3_KFmt>()},
      {GgmlType::Q4_K, int_gemm<Q4_KFmt>()},     {GgmlType::Q5_K, int_gemm<Q5_KFmt>()},
      {GgmlType::Q6_K, int_gemm<Q6_KFmt>()},     {GgmlType::IQ4_XS, int_gemm<IQ4_XSFmt>()},
      {GgmlType::TQ2_0, int_gemm<TQ2_0Fmt>()},   {GgmlType::MXFP4, int_gemm<MXFP4Fmt>()}};
  return find_kernel(table, type);
}

}  // namespace aero::backend::cpu
