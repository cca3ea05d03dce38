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

#include "aero/quant/types.h"
#include "backend/cpu/dot.h"
#include "quant/decode.h"
#include "quant/half.h"
#include "quant/k_scales.h"

namespace aero::backend::cpu {
namespace {

using quant::GgmlType;

inline float half(const std::uint8_t* p) { return _cvtsh_ss(quant::load_u16(p)); }

// Scales s and offsets m of a 256-column chunk's sub-blocks: lanes 0..7 and 8..15 (the second
// halves only for 16-column sub-blocks).
struct Scales {
  __m256 s[2], m[2];
};

inline __m256 unsigned_lanes(__m128i bytes, float d) {
  return _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(bytes)), _mm256_set1_ps(d));
}
inline __m256 signed_lanes(__m128i bytes, float d) {
  return _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(bytes)), _mm256_set1_ps(d));
}

// 16 bytes of nibbles as 32 codes: low nibbles, then high.
inline __m256i nibbles(const std::uint8_t* qs) {
  const __m128i q = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs)), m4 = _mm_set1_epi8(0x0F);
  return _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(q, 4), m4), _mm_and_si128(q, m4));
}

inline __m256i load32(const std::uint8_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }

// Bit j of `bits` as byte j: 0xFF where set.
inline __m256i bytes_from_bits(std::uint32_t bits) {
  const __m256i spread = _mm256_shuffle_epi8(
      _mm256_set1_epi32(static_cast<int>(bits)),
      _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202, 0x0101010101010101, 0x0000000000000000));
  return _mm256_cmpeq_epi8(_mm256_or_si256(spread, _mm256_set1_epi64x(0x7fbfdfeff7fbfdfe)), _mm256_set1_epi64x(-1));
}

// The IQ4 code book, signed, in both 128-bit lanes.
inline __m256i iq4_book() {
  return _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(quant::decode::kIq4nlValues)));
}

// Each format: as in block_codes_avx512.h (kBlockCols, kBlockBytes, kQ8K, kSub), plus kSigned
// for code-book formats; codes(chunk, k) gives the 32 codes of columns k..k+31 of a 256-column
// chunk, scales(chunk, kc) its sub-blocks' s and m.
template <int kBytes, int kZ, int kQs, int kQh = -1, bool kBook = false>
struct Legacy {
  static constexpr int kBlockCols = 32, kBlockBytes = kBytes, kSub = 32;
  static constexpr bool kQ8K = false, kSigned = kBook;
  static __m256i codes(const std::uint8_t* chunk, int k) {
    const std::uint8_t* b = chunk + (k / 32) * kBytes;
    __m256i c = nibbles(b + kQs);
    if constexpr (kQh >= 0) {
      std::uint32_t qh;
      std::memcpy(&qh, b + kQh, 4);
      c = _mm256_or_si256(c, _mm256_and_si256(bytes_from_bits(qh), _mm256_set1_epi8(16)));
    }
    if constexpr (kBook) c = _mm256_shuffle_epi8(iq4_book(), c);
    return c;
  }
  // One gather reads the first word of each block: d, and the min after it.
  static Scales scales(const std::uint8_t* chunk, std::int64_t kc) {
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256i valid = _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(kc / 32)), lane);
    const __m256i words = _mm256_mask_i32gather_epi32(_mm256_setzero_si256(), reinterpret_cast<const int*>(chunk),
                                                      _mm256_mullo_epi32(lane, _mm256_set1_epi32(kBytes)), valid, 1);
    auto f16_lanes = [](__m256i w) {  // the low 16 bits of each lane as f32
      const __m256i packed = _mm256_packus_epi32(_mm256_and_si256(w, _mm256_set1_epi32(0xFFFF)), _mm256_setzero_si256());
      return _mm256_cvtph_ps(_mm256_castsi256_si128(_mm256_permute4x64_epi64(packed, 0x08)));
    };
    const __m256 d = f16_lanes(words), zero = _mm256_setzero_ps();
    __m256 m = zero;
    if constexpr (kBook) m = zero;  // signed codes: no offset
    else if constexpr (kZ != 0) m = _mm256_mul_ps(d, _mm256_set1_ps(kZ));
    else m = _mm256_sub_ps(zero, f16_lanes(_mm256_srli_epi32(words, 16)));
    return {{d, zero}, {m, zero}};
  }
};
using Q4_1 = Legacy<20, 0, 4>;
using Q5_0 = Legacy<22, 16, 6, 2>;
using Q5_1 = Legacy<24, 0, 8, 4>;
using IQ4_NL = Legacy<18, 0, 2, -1, true>;

template <int kBytes, int kSubCols>
struct Super {
  static constexpr int kBlockCols = 256, kBlockBytes = kBytes, kSub = kSubCols;
  static constexpr bool kQ8K = true, kSigned = false;
};

// Q5_K: columns 64c.. in the low nibbles of bytes 32c.., 64c+32.. in the high; fifth bits 2c
// and 2c+1 of qh[0..31].
struct Q5_K : Super<176, 32> {
  static __m256i codes(const std::uint8_t* chunk, int k) {
    const int c = k / 64, high = (k / 32) % 2;
    __m256i q = load32(chunk + 48 + 32 * c);
    if (high) q = _mm256_srli_epi16(q, 4);
    const __m256i fifth = _mm256_and_si256(_mm256_srli_epi16(load32(chunk + 16), 2 * c + high), _mm256_set1_epi8(1));
    return _mm256_or_si256(_mm256_and_si256(q, _mm256_set1_epi8(0x0F)), _mm256_slli_epi16(fifth, 4));
  }
  static Scales scales(const std::uint8_t* chunk, std::int64_t) {
    std::uint64_t sc, mn;
    quant::k4_scales_mins(chunk + 4, sc, mn);
    const __m256 zero = _mm256_setzero_ps();
    return {{unsigned_lanes(_mm_cvtsi64_si128(static_cast<long long>(sc)), half(chunk)), zero},
            {unsigned_lanes(_mm_cvtsi64_si128(static_cast<long long>(mn)), half(chunk + 2)), zero}};
  }
};

// Q2_K / Q3_K: column 128h + 32j + l in bits 2j..2j+1 of qs[32h + l].
inline __m256i two_bits(const std::uint8_t* qs, int k) {
  return _mm256_and_si256(_mm256_srli_epi16(load32(qs + 32 * (k / 128)), 2 * ((k % 128) / 32)), _mm256_set1_epi8(3));
}

struct Q2_K : Super<84, 16> {
  static __m256i codes(const std::uint8_t* chunk, int k) { return two_bits(chunk + 16, k); }
  static Scales scales(const std::uint8_t* chunk, std::int64_t) {
    const __m128i packed = _mm_loadu_si128(reinterpret_cast<const __m128i*>(chunk)), m4 = _mm_set1_epi8(0x0F);
    const __m128i sc = _mm_and_si128(packed, m4), mn = _mm_and_si128(_mm_srli_epi16(packed, 4), m4);
    const float d = half(chunk + 80), dmin = half(chunk + 82);
    return {{unsigned_lanes(sc, d), unsigned_lanes(_mm_srli_si128(sc, 8), d)},
            {unsigned_lanes(mn, dmin), unsigned_lanes(_mm_srli_si128(mn, 8), dmin)}};
  }
};

// Q3_K: the third bit of column 128h + 32j + l is bit 4h + j of hmask[l]; codes q + 4.
struct Q3_K : Super<110, 16> {
  static __m256i codes(const std::uint8_t* chunk, int k) {
    const int bit = 4 * (k / 128) + (k % 128) / 32;
    const __m256i third = _mm256_and_si256(_mm256_srli_epi16(load32(chunk), bit), _mm256_set1_epi8(1));
    return _mm256_or_si256(two_bits(chunk + 32, k), _mm256_slli_epi16(third, 2));
  }
  static Scales scales(const std::uint8_t* chunk, std::int64_t) {
    const auto w = quant::k3_scale_words(chunk + 96);
    const __m128i sc = _mm_sub_epi8(_mm_setr_epi32(static_cast<int>(w[0]), static_cast<int>(w[1]), static_cast<int>(w[2]),
                                                   static_cast<int>(w[3])),
                                    _mm_set1_epi8(32));
    const float d = half(chunk + 108);
    const __m256 s0 = signed_lanes(sc, d), s1 = signed_lanes(_mm_srli_si128(sc, 8), d), four = _mm256_set1_ps(4);
    return {{s0, s1}, {_mm256_mul_ps(s0, four), _mm256_mul_ps(s1, four)}};
  }
};

// IQ4_XS: sub-block ib's 16 nibble bytes at 8 + 16ib, scale d·(ls − 32).
struct IQ4_XS : Super<136, 32> {
  static constexpr bool kSigned = true;
  static __m256i codes(const std::uint8_t* chunk, int k) {
    return _mm256_shuffle_epi8(iq4_book(), nibbles(chunk + 8 + 16 * (k / 32)));
  }
  // ls of sub-block ib: nibble ib of scales_l (4 bytes) and bit pair ib of scales_h (u16).
  static Scales scales(const std::uint8_t* chunk, std::int64_t) {
    std::uint32_t low;
    std::memcpy(&low, chunk + 4, 4);
    const __m256i ib = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256i nibble = _mm256_and_si256(_mm256_srlv_epi32(_mm256_set1_epi32(static_cast<int>(low)), _mm256_slli_epi32(ib, 2)),
                                            _mm256_set1_epi32(0x0F));
    const __m256i pair = _mm256_and_si256(_mm256_srlv_epi32(_mm256_set1_epi32(quant::load_u16(chunk + 2)), _mm256_slli_epi32(ib, 1)),
                                          _mm256_set1_epi32(3));
    const __m256i ls = _mm256_sub_epi32(_mm256_or_si256(nibble, _mm256_slli_epi32(pair, 4)), _mm256_set1_epi32(32));
    const __m256 zero = _mm256_setzero_ps();
    return {{_mm256_mul_ps(_mm256_cvtepi32_ps(ls), _mm256_set1_ps(half(chunk))), zero}, {zero, zero}};
  }
};

inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

constexpr int kChunk = 256;

// R (1 or 2) rows; `ahead`: the rows of the whole call, whose successors are prefetched.
template <class F, int R>
void block_rows(const std::uint8_t* w, std::size_t stride, int ahead, const std::uint8_t* xq, std::int64_t cols,
                float* out) {
  constexpr int kHalves = F::kSub == 16 ? 2 : 1;
  constexpr std::size_t kChunkBytes = kChunk / F::kBlockCols * F::kBlockBytes;
  const auto* dx = reinterpret_cast<const float*>(xq + sub_block_quant_bytes(cols));
  const float* dsum = dx + cols / F::kSub;
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
    __m256 sd[R][2];
    for (int r = 0; r < R; ++r) {
      prefetch_next_rows(chunk + r * stride, stride, ahead, kChunkBytes / 64 + 1);
      const Scales sm = F::scales(chunk + r * stride, kc);
      for (int h = 0; h < kHalves; ++h) {
        sd[r][h] = _mm256_mul_ps(sm.s[h], chunk_dx[h]);
        offsets[r] = _mm256_fmadd_ps(sm.m[h], chunk_dsum[h], offsets[r]);
      }
    }
    auto step = [&](int k) __attribute__((always_inline)) {
      const __m256i xv = load32(xq + k0 + k);
      // Lanes of 32-column sub-block k / 32, or of 16-column ones 2i and 2i + 1 (i = k / 32).
      const int h = F::kSub == 16 ? k / 128 : 0, first = F::kSub == 16 ? (2 * (k / 32)) % 8 : k / 32;
      const __m256i lanes = F::kSub == 16 ? _mm256_setr_epi32(first, first, first, first, first + 1, first + 1, first + 1, first + 1)
                                          : _mm256_set1_epi32(first);
      for (int r = 0; r < R; ++r) {
        const __m256i c = F::codes(chunk + r * stride, k);
        const __m256i pairs = F::kSigned ? _mm256_maddubs_epi16(_mm256_sign_epi8(c, c), _mm256_sign_epi8(xv, c))
                                         : _mm256_maddubs_epi16(c, xv);
        const __m256i isum = _mm256_madd_epi16(pairs, _mm256_set1_epi16(1));
        acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), _mm256_permutevar8x32_ps(sd[r][h], lanes), acc[r]);
      }
    };
    if (kc == kChunk) {
#pragma GCC unroll 8
      for (int k = 0; k < kChunk; k += 32) step(k);
    } else {  // a legacy-format row's last columns
      for (int k = 0; k < kc; k += 32) step(k);
    }
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
