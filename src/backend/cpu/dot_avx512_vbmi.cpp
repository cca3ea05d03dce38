// Q4_0, Q4_K, Q5_K and Q6_K dot products on 512-bit registers, reading the blocks where they
// lie (no repacking at load). (Q8_0 and the other block formats take rows_avx512.cpp's generic
// kernels, which measured as fast or faster for them.)
//
// A block's quants sit between its scales (18-byte Q4_0 blocks), so 16-byte loads per block leave most of a 512-bit register idle and cost a scalar
// scale conversion and broadcast per block: that per-block work, not memory, bounded the
// 256-bit kernels. Here VBMI byte permutes gather the quants and scales of several blocks per
// instruction, so that one conversion, multiply and fused add serve them all; the K-quants'
// sub-block scales are spread into madd lanes by permutes instead of scalar unpacking.
//
// Each format's activations are prepared once per row in the order its kernel reads them
// (ActivationLayout): int8 quants lined up with the weight quants, the constant offsets of the
// unsigned weight codes folded in as sums, and each block's scale repeated over its lanes.
#include "backend/cpu/avx512_intrinsics.h"

#include <cstring>
#include <vector>

#include "aero/quant/types.h"
#include "backend/cpu/dot.h"
#include "quant/half.h"
#include "quant/k_scales.h"


namespace aero::backend::cpu {
namespace {

// The row as Q8_0 blocks, in a per-thread buffer.
const std::uint8_t* q8_0_row(const float* x, std::int64_t cols) {
  thread_local std::vector<std::uint8_t> buf;
  buf.resize(static_cast<std::size_t>(cols / 32) * 34);
  quantize_activations(false, x, cols, buf.data());
  return buf.data();
}

// F16C's conversion: the portable one branches, and it ran once or twice per super-block per row.
inline float half(const std::uint8_t* p) { return _cvtsh_ss(quant::load_u16(p)); }

int block_sum(const std::uint8_t* q8_block) {
  int sum = 0;
  for (int j = 0; j < 32; ++j) sum += static_cast<std::int8_t>(q8_block[2 + j]);
  return sum;
}

// ---- Q4_0: groups of blocks gathered into one register ----------------------------------------
//
// A group is four Q4_0 blocks (72 bytes, 128 columns). Two loads cover it; one two-source byte permute packs its quants (block i's at
// bytes 64/kBlocks·i onwards), a one-source permute spreads its f16 scales (all within the
// first 64 bytes) over the int32 lanes holding each block's partial sums.
//
// Prepared group: the int8 activation quants in `kXRegs` registers lined up with the unpacked
// weight quants, then int32 lanes with kOffset·Σx of block i in block i's first lane (Q4_0
// stores q + 8, so that it goes through the unsigned side of VNNI's multiply), then d_x of
// block i in all of block i's lanes. A short
// last group is padded with zero blocks.
struct Q4_0Group {
  static constexpr int kBlocks = 4, kBlockBytes = 18, kXRegs = 2, kOffset = -8;
  // Register byte of quant j of block i: low nibbles (j < 16) in the first register, high in
  // the second.
  static int x_byte(int i, int j) { return j < 16 ? 16 * i + j : 64 + 16 * i + (j - 16); }
  static void unpack(__m512i q, __m512i* v) {
    const __m512i m4 = _mm512_set1_epi8(0x0F);
    v[0] = _mm512_and_si512(q, m4);
    v[1] = _mm512_and_si512(_mm512_srli_epi16(q, 4), m4);
  }
};

template <class F>
struct Groups {
  static constexpr int kLanes = 16 / F::kBlocks;                     // int32 lanes per block
  static constexpr int kQuantBytes = 64 / F::kBlocks;                // packed quant bytes per block
  static constexpr int kGroupWeightBytes = F::kBlocks * F::kBlockBytes;
  static constexpr std::size_t kGroupBytes = 64 * F::kXRegs + 128;  // prepared activations

  static std::size_t bytes(std::int64_t cols) {
    return static_cast<std::size_t>((cols / 32 + F::kBlocks - 1) / F::kBlocks) * kGroupBytes;
  }

  static void prepare(const float* x, std::int64_t cols, std::uint8_t* out) {
    const std::uint8_t* q8 = q8_0_row(x, cols);
    std::memset(out, 0, bytes(cols));
    for (std::int64_t b = 0; b < cols / 32; ++b) {
      std::uint8_t* g = out + (b / F::kBlocks) * kGroupBytes;
      const int i = static_cast<int>(b % F::kBlocks);
      const std::uint8_t* blk = q8 + b * 34;
      for (int j = 0; j < 32; ++j) g[F::x_byte(i, j)] = blk[2 + j];
      const std::int32_t offset = F::kOffset * block_sum(blk);
      std::memcpy(g + 64 * F::kXRegs + 4 * kLanes * i, &offset, 4);
      const float d = half(blk);
      for (int l = 0; l < kLanes; ++l) std::memcpy(g + 64 * F::kXRegs + 64 + 4 * (kLanes * i + l), &d, 4);
    }
  }

  // Byte permutes over the 128 bytes of the group's two loads.
  struct Permutes {
    __m512i quants, scales;
    Permutes() {
      alignas(64) std::uint8_t q[64], s[64] = {};
      for (int i = 0; i < F::kBlocks; ++i)
        for (int j = 0; j < kQuantBytes; ++j) q[kQuantBytes * i + j] = static_cast<std::uint8_t>(F::kBlockBytes * i + 2 + j);
      for (int k = 0; k < 16; ++k) {  // f16 scale of block k / kLanes into word k
        s[2 * k] = static_cast<std::uint8_t>(F::kBlockBytes * (k / kLanes));
        s[2 * k + 1] = static_cast<std::uint8_t>(F::kBlockBytes * (k / kLanes) + 1);
      }
      quants = _mm512_load_si512(q);
      scales = _mm512_load_si512(s);
    }
  };

  // One row's group, unpacked: quants as unsigned bytes and per-lane f32 scales.
  struct Weights {
    __m512i v[F::kXRegs];
    __m512 d;
  };

  // Load masks of group g in a row of `blocks` blocks: a whole group reads its bytes past the
  // first 64 from the second load; a short last group only its own blocks (never past the row,
  // which may end the mapping).
  static void masks(std::int64_t g, std::int64_t blocks, __mmask64& first, __mmask64& second) {
    const std::int64_t left = blocks - F::kBlocks * g;
    if (left >= F::kBlocks) {
      first = ~0ull;
      second = (1ull << (kGroupWeightBytes - 64)) - 1;
    } else {
      first = (1ull << (F::kBlockBytes * left)) - 1;  // under 64 bytes
      second = 0;
    }
  }

  static Weights load(const std::uint8_t* w, __mmask64 first, __mmask64 second, const Permutes& p) {
    const __m512i a = _mm512_maskz_loadu_epi8(first, w);
    const __m512i b = _mm512_maskz_loadu_epi8(second, w + 64);
    Weights out;
    F::unpack(_mm512_permutex2var_epi8(a, p.quants, b), out.v);
    out.d = _mm512_cvtph_ps(_mm512_castsi512_si256(_mm512_permutexvar_epi8(p.scales, a)));
    return out;
  }

  // The group's activations, loaded once for every row that meets them.
  struct Activations {
    __m512i x[F::kXRegs], offset;
    __m512 dx;
    explicit Activations(const std::uint8_t* g) {
      for (int k = 0; k < F::kXRegs; ++k) x[k] = _mm512_loadu_si512(g + 64 * k);
      offset = _mm512_loadu_si512(g + 64 * F::kXRegs);
      dx = _mm512_loadu_ps(g + 64 * F::kXRegs + 64);
    }
  };

  static __m512 accumulate(const Weights& q, const Activations& a, __m512 acc) {
    __m512i sum = a.offset;
    for (int k = 0; k < F::kXRegs; ++k) sum = _mm512_dpbusd_epi32(sum, q.v[k], a.x[k]);
    return _mm512_fmadd_ps(_mm512_cvtepi32_ps(sum), _mm512_mul_ps(q.d, a.dx), acc);
  }

  template <int R>
  static void rows(const std::uint8_t* w, std::size_t stride, const std::uint8_t* xq, std::int64_t n, float* out) {
    static const Permutes perm;
    const std::int64_t blocks = n / 32, groups = (blocks + F::kBlocks - 1) / F::kBlocks;
    __m512 acc[R];
    for (int r = 0; r < R; ++r) acc[r] = _mm512_setzero_ps();
    for (std::int64_t g = 0; g < groups; ++g) {
      const Activations a(xq + g * kGroupBytes);
      __mmask64 first, second;
      masks(g, blocks, first, second);
      #pragma GCC unroll 4
      for (int r = 0; r < R; ++r) {
        const std::uint8_t* wg = w + r * stride + g * kGroupWeightBytes;
        prefetch_next_rows(wg, stride, R, 2);
        acc[r] = accumulate(load(wg, first, second, perm), a, acc[r]);
      }
    }
    for (int r = 0; r < R; ++r) out[r] = _mm512_reduce_add_ps(acc[r]);
  }

  // Prompt processing: each row's group is unpacked once for the four tokens.
  static void tile(const std::uint8_t* w, std::size_t stride, const std::uint8_t* xq, std::size_t xq_stride,
                   std::int64_t n, float* out, std::size_t out_stride) {
    static const Permutes perm;
    constexpr int R = kTileRows, T = kTileTokens;
    const std::int64_t blocks = n / 32, groups = (blocks + F::kBlocks - 1) / F::kBlocks;
    __m512 acc[R][T];
    for (int r = 0; r < R; ++r)
      for (int t = 0; t < T; ++t) acc[r][t] = _mm512_setzero_ps();
    for (std::int64_t g = 0; g < groups; ++g) {
      __mmask64 first, second;
      masks(g, blocks, first, second);
      Weights q[R];
      for (int r = 0; r < R; ++r) q[r] = load(w + r * stride + g * kGroupWeightBytes, first, second, perm);
      for (int t = 0; t < T; ++t) {
        const Activations a(xq + t * xq_stride + g * kGroupBytes);
        for (int r = 0; r < R; ++r) acc[r][t] = accumulate(q[r], a, acc[r][t]);
      }
    }
    for (int t = 0; t < T; ++t)
      for (int r = 0; r < R; ++r) out[t * out_stride + r] = _mm512_reduce_add_ps(acc[r][t]);
  }
};

// ---- Q4_K: super-blocks of 256 (144 bytes: d, dmin, 12 bytes of 6-bit scales and mins, 128
// bytes of nibbles) ----------------------------------------------------------------------------
//
// The 128 quant bytes are two 64-byte loads; their low nibbles hold sub-blocks (0, 2) and
// (4, 6), their high nibbles (1, 3) and (5, 7). Prepared super-block (320 bytes): the Q8_K
// quants in that order (X0 = sub-blocks 0,2; X1 = 1,3; X2 = 4,6; X3 = 5,7), d_x (f32) at 256
// and the eight sums of 32 quants (int16) at 260. The 6-bit scales go into int16 lanes that
// multiply the pair sums (maddubs, then VNNI's multiply-add of words into the int32 sums); the mins meet the quant sums once per
// super-block.
constexpr std::size_t kQ4kBlock = 320;

std::size_t q4_k_bytes(std::int64_t cols) { return static_cast<std::size_t>(cols / 256) * kQ4kBlock; }

void prepare_q4_k(const float* x, std::int64_t cols, std::uint8_t* out) {
  thread_local std::vector<std::uint8_t> q8k;
  q8k.resize(static_cast<std::size_t>(cols / 256) * 292);
  quantize_activations(true, x, cols, q8k.data());
  static constexpr int kOrder[8] = {0, 2, 1, 3, 4, 6, 5, 7};  // sub-block in each 32-byte slot
  for (std::int64_t b = 0; b < cols / 256; ++b) {
    const std::uint8_t* src = q8k.data() + b * 292;
    std::uint8_t* dst = out + b * kQ4kBlock;
    for (int slot = 0; slot < 8; ++slot) std::memcpy(dst + 32 * slot, src + 4 + 32 * kOrder[slot], 32);
    std::memcpy(dst + 256, src, 4);
    std::int16_t bsums[16], sums[8];
    std::memcpy(bsums, src + 260, 32);
    for (int j = 0; j < 8; ++j) sums[j] = static_cast<std::int16_t>(bsums[2 * j] + bsums[2 * j + 1]);
    std::memcpy(dst + 260, sums, 16);
    std::memset(dst + 276, 0, kQ4kBlock - 276);
  }
}

// Byte permutes that spread the eight unpacked scales into int16 lanes: pair k covers the
// sub-blocks of X_k (words 0..15 the first, 16..31 the second).
struct Q4kScalePermutes {
  __m512i pair[4];
  Q4kScalePermutes() {
    static constexpr int kFirst[4] = {0, 1, 4, 5};
    for (int k = 0; k < 4; ++k) {
      alignas(64) std::uint8_t idx[64] = {};
      for (int word = 0; word < 32; ++word) idx[2 * word] = static_cast<std::uint8_t>(kFirst[k] + (word < 16 ? 0 : 2));
      pair[k] = _mm512_load_si512(idx);
    }
  }
};

// One super-block of one row, unpacked: quant nibbles in X_k order, the scales spread over
// int16 lanes, the mins widened to int16, and the two f16 scales.
struct Q4kBlock {
  __m512i parts[4], scales[4];
  __m128i mins16;
  float d, dmin;
};

// Q5_K: the fifth bit (16) of the codes in parts[k] — sub-blocks kSubOf[k] (first 32 bytes) and
// kSubOf[k] + 2 (last 32) — is bit `sub-block` of qh[byte % 32].
struct Q5kBits {
  __m512i part[4];
  Q5kBits() {
    static constexpr int kSubOf[4] = {0, 1, 4, 5};
    for (int k = 0; k < 4; ++k) {
      alignas(64) std::uint8_t bits[64];
      for (int i = 0; i < 64; ++i) bits[i] = static_cast<std::uint8_t>(1u << (kSubOf[k] + (i < 32 ? 0 : 2)));
      part[k] = _mm512_load_si512(bits);
    }
  }
};

// Q4_K (144-byte super-blocks) or, with kFifth, Q5_K (176: the same with 32 bytes of fifth bits
// at 16, nibbles at 48).
template <bool kFifth>
inline void unpack_qk(const std::uint8_t* wb, const Q4kScalePermutes& perm, Q4kBlock& out) {
  constexpr int kQs = kFifth ? 48 : 16;
  const __m512i m4 = _mm512_set1_epi8(0x0F);
  constexpr __mmask64 kEvenBytes = 0x5555555555555555ull;
  // 6-bit scales and mins: bytes 0..7 the scales, 8..15 the mins (from general registers: word
  // stores reloaded as one vector stall on store forwarding).
  std::uint64_t scales, mins;
  quant::k4_scales_mins(wb + 4, scales, mins);
  const __m128i sm = _mm_set_epi64x(static_cast<long long>(mins), static_cast<long long>(scales));
  const __m512i q0 = _mm512_loadu_si512(wb + kQs), q1 = _mm512_loadu_si512(wb + kQs + 64);
  out.parts[0] = _mm512_and_si512(q0, m4);
  out.parts[1] = _mm512_and_si512(_mm512_srli_epi16(q0, 4), m4);
  out.parts[2] = _mm512_and_si512(q1, m4);
  out.parts[3] = _mm512_and_si512(_mm512_srli_epi16(q1, 4), m4);
  if constexpr (kFifth) {
    static const Q5kBits bits;
    const __m512i qh = _mm512_broadcast_i64x4(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(wb + 16)));
    for (int k = 0; k < 4; ++k)
      out.parts[k] = _mm512_mask_add_epi8(out.parts[k], _mm512_test_epi8_mask(qh, bits.part[k]), out.parts[k],
                                          _mm512_set1_epi8(16));
  }
  for (int k = 0; k < 4; ++k) out.scales[k] = _mm512_maskz_permutexvar_epi8(kEvenBytes, perm.pair[k], _mm512_castsi128_si512(sm));
  out.mins16 = _mm_cvtepu8_epi16(_mm_srli_si128(sm, 8));
  out.d = half(wb);
  out.dmin = half(wb + 2);
}

// acc += d·dy·Σ sc·(q·x) − dmin·dy·Σ m·bsum (the min term in lanes 0..3).
inline __m512 q4_k_accumulate(const Q4kBlock& q, const std::uint8_t* xb, __m512 acc) {
  __m512i sumi = _mm512_setzero_si512();
  for (int k = 0; k < 4; ++k)
    sumi = _mm512_dpwssd_epi32(sumi, _mm512_maddubs_epi16(q.parts[k], _mm512_loadu_si512(xb + 64 * k)), q.scales[k]);
  float dy;
  std::memcpy(&dy, xb + 256, 4);
  const __m128i sums = _mm_loadu_si128(reinterpret_cast<const __m128i*>(xb + 260));
  const __m128 mins = _mm_cvtepi32_ps(_mm_madd_epi16(q.mins16, sums));
  acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sumi), _mm512_set1_ps(q.d * dy), acc);
  return _mm512_fnmadd_ps(_mm512_zextps128_ps512(mins), _mm512_set1_ps(q.dmin * dy), acc);
}

template <bool kFifth, int R>
void qk_rows(const std::uint8_t* w, std::size_t stride, const std::uint8_t* xq, std::int64_t n, float* out) {
  static const Q4kScalePermutes perm;
  constexpr int kBlockBytes = kFifth ? 176 : 144;
  __m512 acc[R];
  for (int r = 0; r < R; ++r) acc[r] = _mm512_setzero_ps();
  for (std::int64_t b = 0; b < n / 256; ++b) {
    const std::uint8_t* xb = xq + b * kQ4kBlock;
    #pragma GCC unroll 4
    for (int r = 0; r < R; ++r) {
      const std::uint8_t* wb = w + r * stride + b * kBlockBytes;
      prefetch_next_rows(wb, stride, R, kFifth ? 4 : 3);
      Q4kBlock q;
      unpack_qk<kFifth>(wb, perm, q);
      acc[r] = q4_k_accumulate(q, xb, acc[r]);
    }
  }
  for (int r = 0; r < R; ++r) out[r] = _mm512_reduce_add_ps(acc[r]);
}

// Prompt processing: each row's super-block is unpacked once for the four tokens.
template <bool kFifth>
void qk_tile(const std::uint8_t* w, std::size_t stride, const std::uint8_t* xq, std::size_t xq_stride,
             std::int64_t n, float* out, std::size_t out_stride) {
  static const Q4kScalePermutes perm;
  constexpr int kBlockBytes = kFifth ? 176 : 144;
  constexpr int R = kTileRows, T = kTileTokens;
  __m512 acc[R][T];
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < T; ++t) acc[r][t] = _mm512_setzero_ps();
  for (std::int64_t b = 0; b < n / 256; ++b) {
    for (int r = 0; r < R; ++r) {
      Q4kBlock q;
      unpack_qk<kFifth>(w + r * stride + b * kBlockBytes, perm, q);
      for (int t = 0; t < T; ++t) acc[r][t] = q4_k_accumulate(q, xq + t * xq_stride + b * kQ4kBlock, acc[r][t]);
    }
  }
  for (int t = 0; t < T; ++t)
    for (int r = 0; r < R; ++r) out[t * out_stride + r] = _mm512_reduce_add_ps(acc[r][t]);
}

// ---- Q6_K: super-blocks of 256 (210 bytes: 128 bytes of low nibbles, 64 of high bit pairs,
// 16 int8 scales, d) -------------------------------------------------------------------------
//
// Per half (128 weights) one 64-byte load of low nibbles and one broadcast 32-byte load of
// high pairs give weights 0..63 (low nibbles, pairs shifted up by 4 or 2 per 256-bit half)
// and 64..127 (high nibbles, pairs shifted by 0 or 2) in natural order, so the activations
// are plain Q8_K blocks. Scale j covers weights 16j..16j+15; the stored quants are q + 32,
// and 32·Σ sc_j·bsum_j comes off once per super-block.
struct Q6kConstants {
  __m512i mask_a, shift_a, mask_b, shift_b, scale_words[4];
  Q6kConstants() {
    alignas(64) std::uint8_t ma[64], mb[64];
    alignas(64) std::uint16_t sa[32], sb[32], idx[4][32];
    for (int i = 0; i < 64; ++i) {
      ma[i] = i < 32 ? 0x03 : 0x0C;
      mb[i] = i < 32 ? 0x30 : 0xC0;
    }
    for (int i = 0; i < 32; ++i) {
      sa[i] = i < 16 ? 4 : 2;
      sb[i] = i < 16 ? 0 : 2;
      for (int k = 0; k < 4; ++k) idx[k][i] = static_cast<std::uint16_t>(4 * k + i / 8);
    }
    mask_a = _mm512_load_si512(ma);
    mask_b = _mm512_load_si512(mb);
    shift_a = _mm512_load_si512(sa);
    shift_b = _mm512_load_si512(sb);
    for (int k = 0; k < 4; ++k) scale_words[k] = _mm512_load_si512(idx[k]);
  }
};

template <int R>
void q6_k_rows(const std::uint8_t* w, std::size_t stride, const std::uint8_t* xq, std::int64_t n, float* out) {
  static const Q6kConstants c;
  const __m512i m4 = _mm512_set1_epi8(0x0F);
  __m512 acc[R];
  for (int r = 0; r < R; ++r) acc[r] = _mm512_setzero_ps();
  for (std::int64_t b = 0; b < n / 256; ++b) {
    const std::uint8_t* xb = xq + b * 292;
    float dy;
    std::memcpy(&dy, xb, 4);
    const __m512i xs[4] = {_mm512_loadu_si512(xb + 4), _mm512_loadu_si512(xb + 68), _mm512_loadu_si512(xb + 132),
                           _mm512_loadu_si512(xb + 196)};
    const __m256i bsums = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xb + 260));
    #pragma GCC unroll 4
    for (int r = 0; r < R; ++r) {
      const std::uint8_t* wb = w + r * stride + b * 210;
      prefetch_next_rows(wb, stride, R, 4);
      const __m256i sc8 = _mm256_castsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(wb + 192)));
      const __m512i sc16 = _mm512_castsi256_si512(_mm256_cvtepi8_epi16(_mm256_castsi256_si128(sc8)));
      __m512i sumi = _mm512_setzero_si512();
      for (int h = 0; h < 2; ++h) {
        const __m512i ql = _mm512_loadu_si512(wb + 64 * h);
        const __m512i qh = _mm512_broadcast_i64x4(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(wb + 128 + 32 * h)));
        // or(and(a, b), c) in one ternary-logic instruction (0xEA: (A & B) | C).
        const __m512i qa = _mm512_ternarylogic_epi32(ql, m4, _mm512_sllv_epi16(_mm512_and_si512(qh, c.mask_a), c.shift_a), 0xEA);
        const __m512i qb = _mm512_ternarylogic_epi32(_mm512_srli_epi16(ql, 4), m4,
                                                     _mm512_srlv_epi16(_mm512_and_si512(qh, c.mask_b), c.shift_b), 0xEA);
        const __m512i sa = _mm512_permutexvar_epi16(c.scale_words[2 * h], sc16);
        const __m512i sb = _mm512_permutexvar_epi16(c.scale_words[2 * h + 1], sc16);
        sumi = _mm512_dpwssd_epi32(sumi, _mm512_maddubs_epi16(qa, xs[2 * h]), sa);
        sumi = _mm512_dpwssd_epi32(sumi, _mm512_maddubs_epi16(qb, xs[2 * h + 1]), sb);
      }
      const __m256i offset = _mm256_slli_epi32(_mm256_madd_epi16(_mm512_castsi512_si256(sc16), bsums), 5);
      sumi = _mm512_sub_epi32(sumi, _mm512_zextsi256_si512(offset));
      acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sumi), _mm512_set1_ps(half(wb + 208) * dy), acc[r]);
    }
  }
  for (int r = 0; r < R; ++r) out[r] = _mm512_reduce_add_ps(acc[r]);
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

void use_vbmi_kernels(DotKernels& k) {
  using Q4 = Groups<Q4_0Group>;
  k.q4_0 = by_rows<Q4::rows<1>, Q4::rows<2>, Q4::rows<3>, Q4::rows<4>>;
  k.tile_q4_0 = Q4::tile;
  k.act_q4_0 = {Q4::bytes, Q4::prepare};
  k.q4_k = by_rows<qk_rows<false, 1>, qk_rows<false, 2>, qk_rows<false, 3>, qk_rows<false, 4>>;
  k.tile_q4_k = qk_tile<false>;
  k.act_q4_k = {q4_k_bytes, prepare_q4_k};
  k.q5_k = by_rows<qk_rows<true, 1>, qk_rows<true, 2>, qk_rows<true, 3>, qk_rows<true, 4>>;
  k.tile_q5_k = qk_tile<true>;
  k.act_q5_k = {q4_k_bytes, prepare_q4_k};
  k.q6_k = by_rows<q6_k_rows<1>, q6_k_rows<2>, q6_k_rows<3>, q6_k_rows<4>>;
}

}  // namespace aero::backend::cpu
