// Q8_0 and Q4_0 dot products on 512-bit registers, reading the blocks where they lie.
//
// A block's quants sit between 2-byte scales (18-byte Q4_0 blocks, 34-byte Q8_0 blocks), so
// 16-byte or 32-byte loads per block leave most of a 512-bit register idle and cost a scalar
// scale conversion and broadcast per block: that per-block work, not memory, bounded the
// 256-bit kernels. Here two loads cover a group of blocks (four Q4_0 or two Q8_0), one VBMI
// byte permute packs their quants into one register and another spreads their scales over the
// int32 lanes that hold each block's partial sums, so that one conversion, multiply and
// fused add serve the whole group.
//
// The activations are prepared once per row in the group's own order (prepare_*): the int8
// quants lined up with the weight quants, each block's offset correction as the starting
// value of its first lane, and each block's scale repeated over its lanes.
// GCC 12 flags its own _mm512_undefined_* placeholders inside the intrinsics headers.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <cstring>
#include <vector>

#include "aero/quant/types.h"
#include "backend/cpu/dot.h"
#include "quant/half.h"


namespace aero::backend::cpu {
namespace {

// How far ahead of the loads each weight row is prefetched. The kernels spend enough time per
// byte that the hardware prefetcher alone leaves the loads waiting on DRAM: compute and memory
// time added up instead of overlapping.
// (Measured on the dev VM: 640 bytes into L1 beat 256, 1536, and L2 hints at 2-4 KiB.)
constexpr int kPrefetchAhead = 640;

// Quantizes a row to Q8_0 blocks, bit for bit as the reference quantizer does (amax / 127,
// its reciprocal, products rounded half away from zero), but 32 values per two instructions:
// with the scalar reference, preparing the activations took longer than a small GEMV itself.
const std::uint8_t* q8_0_row(const float* x, std::int64_t cols) {
  thread_local std::vector<std::uint8_t> buf;
  buf.resize(static_cast<std::size_t>(cols / 32) * 34);
  quantize_q8_0_avx512(x, cols, buf.data());
  return buf.data();
}

int block_sum(const std::uint8_t* q8_block) {
  int sum = 0;
  for (int j = 0; j < 32; ++j) sum += static_cast<std::int8_t>(q8_block[2 + j]);
  return sum;
}

// ---- Q4_0: groups of four blocks (72 bytes of weights, 128 columns) --------------------------
//
// Prepared group (256 bytes): quants 0..15 of blocks 0..3 (matching the low nibbles), quants
// 16..31 (the high nibbles), int32 lanes with -8·Σx of block i in lane 4i (Q4_0 stores q + 8;
// the raw nibble goes through the unsigned side of the multiply), and d_x of block i in
// lanes 4i..4i+3. A short last group is padded with zero blocks.
constexpr std::size_t kQ4Group = 256;

std::size_t q4_0_bytes(std::int64_t cols) { return static_cast<std::size_t>((cols / 32 + 3) / 4) * kQ4Group; }

void prepare_q4_0(const float* x, std::int64_t cols, std::uint8_t* out) {
  const std::uint8_t* q8 = q8_0_row(x, cols);
  const std::int64_t blocks = cols / 32;
  std::memset(out, 0, q4_0_bytes(cols));
  for (std::int64_t b = 0; b < blocks; ++b) {
    std::uint8_t* g = out + (b / 4) * kQ4Group;
    const int i = static_cast<int>(b % 4);
    const std::uint8_t* blk = q8 + b * 34;
    std::memcpy(g + 16 * i, blk + 2, 16);
    std::memcpy(g + 64 + 16 * i, blk + 18, 16);
    const std::int32_t offset = -8 * block_sum(blk);
    std::memcpy(g + 128 + 16 * i, &offset, 4);
    const float d = quant::fp16_to_fp32(quant::load_u16(blk));
    for (int l = 0; l < 4; ++l) std::memcpy(g + 192 + 16 * i + 4 * l, &d, 4);
  }
}

// Byte permutes over the 128 bytes of two registers (the group's 72 bytes, then beyond).
struct Q4Permutes {
  __m512i quants, scales;
  Q4Permutes() {
    alignas(64) std::uint8_t q[64], s[64] = {};
    for (int i = 0; i < 4; ++i)
      for (int j = 0; j < 16; ++j) q[16 * i + j] = static_cast<std::uint8_t>(18 * i + 2 + j);
    for (int k = 0; k < 16; ++k) {  // f16 scale of block k/4 into word k
      s[2 * k] = static_cast<std::uint8_t>(18 * (k / 4));
      s[2 * k + 1] = static_cast<std::uint8_t>(18 * (k / 4) + 1);
    }
    quants = _mm512_load_si512(q);
    scales = _mm512_load_si512(s);
  }
};

// Quants (nibbles as bytes, low and high halves) and per-lane f32 scales of one group.
struct Q4Group {
  __m512i lo, hi;
  __m512 d;
};

inline Q4Group load_q4_group(const std::uint8_t* w, __mmask64 first, __mmask64 second, const Q4Permutes& p) {
  const __m512i a = _mm512_maskz_loadu_epi8(first, w);
  const __m512i b = _mm512_maskz_loadu_epi8(second, w + 64);
  const __m512i q = _mm512_permutex2var_epi8(a, p.quants, b);
  const __m512i s = _mm512_permutex2var_epi8(a, p.scales, b);
  const __m512i m4 = _mm512_set1_epi8(0x0F);
  return {_mm512_and_si512(q, m4), _mm512_and_si512(_mm512_srli_epi16(q, 4), m4),
          _mm512_cvtph_ps(_mm512_castsi512_si256(s))};
}

// Load masks for group g of a row of `blocks` blocks: whole groups read 72 bytes, a short
// last group only its own blocks (never past the row, which may end the mapping).
inline void q4_masks(std::int64_t g, std::int64_t blocks, __mmask64& first, __mmask64& second) {
  const std::int64_t left = blocks - 4 * g;
  if (left >= 4) {
    first = ~0ull;
    second = 0xFFull;
  } else {
    first = (1ull << (18 * left)) - 1;  // at most 54 bytes
    second = 0;
  }
}

template <int R>
void q4_0_rows(const std::uint8_t* w, std::size_t stride, const std::uint8_t* xq, std::int64_t n, float* out) {
  static const Q4Permutes perm;
  const std::int64_t blocks = n / 32, groups = (blocks + 3) / 4;
  __m512 acc[R];
  for (int r = 0; r < R; ++r) acc[r] = _mm512_setzero_ps();
  for (std::int64_t g = 0; g < groups; ++g) {
    const std::uint8_t* xg = xq + g * kQ4Group;
    const __m512i xlo = _mm512_loadu_si512(xg), xhi = _mm512_loadu_si512(xg + 64);
    const __m512i offset = _mm512_loadu_si512(xg + 128);
    const __m512 dx = _mm512_loadu_ps(xg + 192);
    __mmask64 first, second;
    q4_masks(g, blocks, first, second);
    for (int r = 0; r < R; ++r) {
      _mm_prefetch(reinterpret_cast<const char*>(w + r * stride + g * 72 + kPrefetchAhead), _MM_HINT_T0);
      const Q4Group q = load_q4_group(w + r * stride + g * 72, first, second, perm);
      const __m512i sum = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(offset, q.lo, xlo), q.hi, xhi);
      acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sum), _mm512_mul_ps(q.d, dx), acc[r]);
    }
  }
  for (int r = 0; r < R; ++r) out[r] = _mm512_reduce_add_ps(acc[r]);
}

void q4_0_tile(const std::uint8_t* w, std::size_t stride, const std::uint8_t* xq, std::size_t xq_stride,
               std::int64_t n, float* out, std::size_t out_stride) {
  static const Q4Permutes perm;
  constexpr int R = kTileRows, T = kTileTokens;
  const std::int64_t blocks = n / 32, groups = (blocks + 3) / 4;
  __m512 acc[R][T];
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < T; ++t) acc[r][t] = _mm512_setzero_ps();
  for (std::int64_t g = 0; g < groups; ++g) {
    __mmask64 first, second;
    q4_masks(g, blocks, first, second);
    Q4Group q[R];
    for (int r = 0; r < R; ++r) q[r] = load_q4_group(w + r * stride + g * 72, first, second, perm);
    for (int t = 0; t < T; ++t) {
      const std::uint8_t* xg = xq + t * xq_stride + g * kQ4Group;
      const __m512i xlo = _mm512_loadu_si512(xg), xhi = _mm512_loadu_si512(xg + 64);
      const __m512i offset = _mm512_loadu_si512(xg + 128);
      const __m512 dx = _mm512_loadu_ps(xg + 192);
      for (int r = 0; r < R; ++r) {
        const __m512i sum = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(offset, q[r].lo, xlo), q[r].hi, xhi);
        acc[r][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sum), _mm512_mul_ps(q[r].d, dx), acc[r][t]);
      }
    }
  }
  for (int t = 0; t < T; ++t)
    for (int r = 0; r < R; ++r) out[t * out_stride + r] = _mm512_reduce_add_ps(acc[r][t]);
}

// ---- Q8_0: groups of two blocks (68 bytes of weights, 64 columns) ----------------------------
//
// Prepared group (192 bytes): the 64 int8 quants of both blocks, int32 lanes with -128·Σx of
// block i in lane 8i (the weight quants get 128 added, by flipping their sign bit, to go
// through the unsigned side of the multiply), and d_x of block i in lanes 8i..8i+7.
constexpr std::size_t kQ8Group = 192;

std::size_t q8_0_bytes(std::int64_t cols) { return static_cast<std::size_t>((cols / 32 + 1) / 2) * kQ8Group; }

void prepare_q8_0(const float* x, std::int64_t cols, std::uint8_t* out) {
  const std::uint8_t* q8 = q8_0_row(x, cols);
  const std::int64_t blocks = cols / 32;
  std::memset(out, 0, q8_0_bytes(cols));
  for (std::int64_t b = 0; b < blocks; ++b) {
    std::uint8_t* g = out + (b / 2) * kQ8Group;
    const int i = static_cast<int>(b % 2);
    const std::uint8_t* blk = q8 + b * 34;
    std::memcpy(g + 32 * i, blk + 2, 32);
    const std::int32_t offset = -128 * block_sum(blk);
    std::memcpy(g + 64 + 32 * i, &offset, 4);
    const float d = quant::fp16_to_fp32(quant::load_u16(blk));
    for (int l = 0; l < 8; ++l) std::memcpy(g + 128 + 32 * i + 4 * l, &d, 4);
  }
}

struct Q8Permutes {
  __m512i quants, scales;
  Q8Permutes() {
    alignas(64) std::uint8_t q[64], s[64] = {};
    for (int i = 0; i < 2; ++i)
      for (int j = 0; j < 32; ++j) q[32 * i + j] = static_cast<std::uint8_t>(34 * i + 2 + j);
    for (int k = 0; k < 16; ++k) {  // f16 scale of block k/8 into word k
      s[2 * k] = static_cast<std::uint8_t>(34 * (k / 8));
      s[2 * k + 1] = static_cast<std::uint8_t>(34 * (k / 8) + 1);
    }
    quants = _mm512_load_si512(q);
    scales = _mm512_load_si512(s);
  }
};

struct Q8Group {
  __m512i q;  // quants + 128, as unsigned bytes
  __m512 d;
};

inline Q8Group load_q8_group(const std::uint8_t* w, __mmask64 first, __mmask64 second, const Q8Permutes& p) {
  const __m512i a = _mm512_maskz_loadu_epi8(first, w);
  const __m512i b = _mm512_maskz_loadu_epi8(second, w + 64);
  const __m512i q = _mm512_permutex2var_epi8(a, p.quants, b);
  const __m512i s = _mm512_permutex2var_epi8(a, p.scales, b);
  return {_mm512_xor_si512(q, _mm512_set1_epi8(static_cast<char>(0x80))), _mm512_cvtph_ps(_mm512_castsi512_si256(s))};
}

inline void q8_masks(std::int64_t g, std::int64_t blocks, __mmask64& first, __mmask64& second) {
  if (blocks - 2 * g >= 2) {
    first = ~0ull;
    second = 0xFull;
  } else {
    first = (1ull << 34) - 1;
    second = 0;
  }
}

template <int R>
void q8_0_rows(const std::uint8_t* w, std::size_t stride, const std::uint8_t* xq, std::int64_t n, float* out) {
  static const Q8Permutes perm;
  const std::int64_t blocks = n / 32, groups = (blocks + 1) / 2;
  __m512 acc[R];
  for (int r = 0; r < R; ++r) acc[r] = _mm512_setzero_ps();
  for (std::int64_t g = 0; g < groups; ++g) {
    const std::uint8_t* xg = xq + g * kQ8Group;
    const __m512i xv = _mm512_loadu_si512(xg), offset = _mm512_loadu_si512(xg + 64);
    const __m512 dx = _mm512_loadu_ps(xg + 128);
    __mmask64 first, second;
    q8_masks(g, blocks, first, second);
    for (int r = 0; r < R; ++r) {
      _mm_prefetch(reinterpret_cast<const char*>(w + r * stride + g * 68 + kPrefetchAhead), _MM_HINT_T0);
      const Q8Group q = load_q8_group(w + r * stride + g * 68, first, second, perm);
      const __m512i sum = _mm512_dpbusd_epi32(offset, q.q, xv);
      acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sum), _mm512_mul_ps(q.d, dx), acc[r]);
    }
  }
  for (int r = 0; r < R; ++r) out[r] = _mm512_reduce_add_ps(acc[r]);
}

void q8_0_tile(const std::uint8_t* w, std::size_t stride, const std::uint8_t* xq, std::size_t xq_stride,
               std::int64_t n, float* out, std::size_t out_stride) {
  static const Q8Permutes perm;
  constexpr int R = kTileRows, T = kTileTokens;
  const std::int64_t blocks = n / 32, groups = (blocks + 1) / 2;
  __m512 acc[R][T];
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < T; ++t) acc[r][t] = _mm512_setzero_ps();
  for (std::int64_t g = 0; g < groups; ++g) {
    __mmask64 first, second;
    q8_masks(g, blocks, first, second);
    Q8Group q[R];
    for (int r = 0; r < R; ++r) q[r] = load_q8_group(w + r * stride + g * 68, first, second, perm);
    for (int t = 0; t < T; ++t) {
      const std::uint8_t* xg = xq + t * xq_stride + g * kQ8Group;
      const __m512i xv = _mm512_loadu_si512(xg), offset = _mm512_loadu_si512(xg + 64);
      const __m512 dx = _mm512_loadu_ps(xg + 128);
      for (int r = 0; r < R; ++r) {
        const __m512i sum = _mm512_dpbusd_epi32(offset, q[r].q, xv);
        acc[r][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sum), _mm512_mul_ps(q[r].d, dx), acc[r][t]);
      }
    }
  }
  for (int t = 0; t < T; ++t)
    for (int r = 0; r < R; ++r) out[t * out_stride + r] = _mm512_reduce_add_ps(acc[r][t]);
}

template <void (*Kernel1)(const std::uint8_t*, std::size_t, const std::uint8_t*, std::int64_t, float*),
          void (*Kernel2)(const std::uint8_t*, std::size_t, const std::uint8_t*, std::int64_t, float*),
          void (*Kernel3)(const std::uint8_t*, std::size_t, const std::uint8_t*, std::int64_t, float*),
          void (*Kernel4)(const std::uint8_t*, std::size_t, const std::uint8_t*, std::int64_t, float*)>
void by_rows(const std::uint8_t* w, std::size_t stride, int rows, const float*, const std::uint8_t* xq,
             std::int64_t n, float* out) {
  switch (rows) {
    case 4: return Kernel4(w, stride, xq, n, out);
    case 3: return Kernel3(w, stride, xq, n, out);
    case 2: return Kernel2(w, stride, xq, n, out);
    default: return Kernel1(w, stride, xq, n, out);
  }
}

}  // namespace

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

void use_vbmi_kernels(DotKernels& k) {
  k.q4_0 = by_rows<q4_0_rows<1>, q4_0_rows<2>, q4_0_rows<3>, q4_0_rows<4>>;
  k.q8_0 = by_rows<q8_0_rows<1>, q8_0_rows<2>, q8_0_rows<3>, q8_0_rows<4>>;
  k.tile_q4_0 = q4_0_tile;
  k.tile_q8_0 = q8_0_tile;
  k.act_q4_0 = {q4_0_bytes, prepare_q4_0};
  k.act_q8_0 = {q8_0_bytes, prepare_q8_0};
}

}  // namespace aero::backend::cpu
