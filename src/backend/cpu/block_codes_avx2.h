// The block formats as unsigned codes and per-sub-block scales on 256-bit registers, for the
// AVX2 kernels that multiply codes by int8 activations with maddubs (the generic row kernels,
// rows_avx2.cpp, and the packed-panel GEMM, gemm_avx2.cpp). Include only from files compiled
// with AVX2, FMA and F16C. The AVX-512 counterpart is block_codes_avx512.h.
//
// A weight is s·q − m per sub-block (q the code, s its scale, m its offset). Each format's
// traits: block size (kBlockCols columns in kBlockBytes), sub-block length kSub, whether ggml
// pairs it with Q8_K activations (else Q8_0), kCodeBits (codes lie in 0 .. 2^kCodeBits − 1),
// kZ (m = kZ·s, or 0 where the format stores its own offsets), kSigned for Q8_0 and the
// code-book formats, whose codes are signed values (m = 0); and two unpackers reading a chunk
// of 256 columns of a row from `chunk`, its first byte: codes(chunk, k) gives the 32 codes of
// columns k..k+31 (k a multiple of 32) in column order; scales(chunk, kc) the scales s and
// offsets m of the sub-blocks in the chunk's first kc columns, lanes past the last zero.
#pragma once

#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "backend/cpu/f16_lanes_avx2.h"
#include "quant/decode.h"
#include "quant/half.h"
#include "quant/k_scales.h"

namespace aero::backend::cpu::codes_avx2 {

inline float half(const std::uint8_t* p) { return _cvtsh_ss(quant::load_u16(p)); }

// Sub-blocks 0..7 in s[0] / m[0], 8..15 (16-column sub-blocks only) in s[1] / m[1].
struct Scales {
  __m256 s[2], m[2];
};

inline __m256 unsigned_lanes(__m128i bytes, float d) {
  return _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(bytes)), _mm256_set1_ps(d));
}
inline __m256 signed_lanes(__m128i bytes, float d) {
  return _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(bytes)), _mm256_set1_ps(d));
}

inline __m256i load32(const std::uint8_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }

// 16 bytes of nibbles as 32 codes: low nibbles, then high.
inline __m256i nibbles(const std::uint8_t* qs) {
  const __m128i q = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs)), m4 = _mm_set1_epi8(0x0F);
  return _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(q, 4), m4), _mm_and_si128(q, m4));
}

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

// The legacy formats: 32-column blocks led by an f16 scale d; nibbles at kQs, 5-bit formats'
// fifth bits in the little-endian word at kQh (bit j for column j). The offset is m = kZ·d, or
// −min for the formats storing an f16 min at byte 2 (kZ = 0: weight = d·q + min); IQ4_NL's
// nibbles index the code book.
template <int kBytes, int kZero, int kQs, int kQh = -1, bool kBook = false>
struct Legacy {
  static constexpr int kBlockCols = 32, kBlockBytes = kBytes, kSub = 32;
  static constexpr int kCodeBits = kQh >= 0 ? 5 : 4, kZ = kZero;
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
  static Scales scales(const std::uint8_t* chunk, std::int64_t kc) {
    const int valid = static_cast<int>(kc / 32);
    const __m256 d = block_f16_lanes<kBytes>(chunk, valid), zero = _mm256_setzero_ps();
    __m256 m = zero;  // code books: signed codes, no offset
    if constexpr (!kBook && kZ != 0) m = _mm256_mul_ps(d, _mm256_set1_ps(kZ));
    if constexpr (!kBook && kZ == 0) m = _mm256_sub_ps(zero, block_f16_lanes<kBytes, 2>(chunk, valid));
    return {{d, zero}, {m, zero}};
  }
};
using Q4_0 = Legacy<18, 8, 2>;
using Q4_1 = Legacy<20, 0, 4>;
using Q5_0 = Legacy<22, 16, 6, 2>;
using Q5_1 = Legacy<24, 0, 8, 4>;
using IQ4_NL = Legacy<18, 0, 2, -1, true>;

// Q8_0 (34 bytes): f16 d, 32 int8 quants, used as signed codes.
struct Q8_0 {
  static constexpr int kBlockCols = 32, kBlockBytes = 34, kSub = 32, kCodeBits = 8, kZ = 0;
  static constexpr bool kQ8K = false, kSigned = true;
  static __m256i codes(const std::uint8_t* chunk, int k) { return load32(chunk + (k / 32) * 34 + 2); }
  static Scales scales(const std::uint8_t* chunk, std::int64_t kc) {
    const __m256 zero = _mm256_setzero_ps();
    return {{block_f16_lanes<34>(chunk, static_cast<int>(kc / 32)), zero}, {zero, zero}};
  }
};

template <int kBytes, int kSubCols, int kBits, int kZero>
struct Super {
  static constexpr int kBlockCols = 256, kBlockBytes = kBytes, kSub = kSubCols, kCodeBits = kBits, kZ = kZero;
  static constexpr bool kQ8K = true, kSigned = false;
};

// Q4_K (144-byte super-blocks) and Q5_K (176): f16 d and dmin, 12 bytes of 6-bit scales and
// mins (weight = d·scale·q − dmin·min per 32 columns), Q5_K's 32 bytes of fifth bits, then 128
// bytes of nibbles: columns 64c.. in the low nibbles of bytes 32c.., 64c+32.. in the high; Q5_K's
// fifth bits of those columns are bits 2c and 2c+1 of qh[0..31].
template <int kBytes, bool kFifthBit>
struct KNibbles : Super<kBytes, 32, kFifthBit ? 5 : 4, 0> {
  static __m256i codes(const std::uint8_t* chunk, int k) {
    const int c = k / 64, high = (k / 32) % 2;
    __m256i q = load32(chunk + kBytes - 128 + 32 * c);
    if (high) q = _mm256_srli_epi16(q, 4);
    q = _mm256_and_si256(q, _mm256_set1_epi8(0x0F));
    if constexpr (!kFifthBit) return q;
    const __m256i fifth = _mm256_and_si256(_mm256_srli_epi16(load32(chunk + 16), 2 * c + high), _mm256_set1_epi8(1));
    return _mm256_or_si256(q, _mm256_slli_epi16(fifth, 4));
  }
  static Scales scales(const std::uint8_t* chunk, std::int64_t) {
    std::uint64_t sc, mn;
    quant::k4_scales_mins(chunk + 4, sc, mn);
    const __m256 zero = _mm256_setzero_ps();
    return {{unsigned_lanes(_mm_cvtsi64_si128(static_cast<long long>(sc)), half(chunk)), zero},
            {unsigned_lanes(_mm_cvtsi64_si128(static_cast<long long>(mn)), half(chunk + 2)), zero}};
  }
};
using Q4_K = KNibbles<144, false>;
using Q5_K = KNibbles<176, true>;

// Q2_K / Q3_K: column 128h + 32j + l in bits 2j..2j+1 of qs[32h + l].
inline __m256i two_bits(const std::uint8_t* qs, int k) {
  return _mm256_and_si256(_mm256_srli_epi16(load32(qs + 32 * (k / 128)), 2 * ((k % 128) / 32)), _mm256_set1_epi8(3));
}

// Q2_K (84 bytes): 16 bytes of 4-bit scale | 4-bit min, qs at 16, f16 d and dmin at 80.
struct Q2_K : Super<84, 16, 2, 0> {
  static __m256i codes(const std::uint8_t* chunk, int k) { return two_bits(chunk + 16, k); }
  static Scales scales(const std::uint8_t* chunk, std::int64_t) {
    const __m128i packed = _mm_loadu_si128(reinterpret_cast<const __m128i*>(chunk)), m4 = _mm_set1_epi8(0x0F);
    const __m128i sc = _mm_and_si128(packed, m4), mn = _mm_and_si128(_mm_srli_epi16(packed, 4), m4);
    const float d = half(chunk + 80), dmin = half(chunk + 82);
    return {{unsigned_lanes(sc, d), unsigned_lanes(_mm_srli_si128(sc, 8), d)},
            {unsigned_lanes(mn, dmin), unsigned_lanes(_mm_srli_si128(mn, 8), dmin)}};
  }
};

// Q3_K (110 bytes): hmask[32], qs at 32, twelve bytes of sixteen 6-bit scales, f16 d; the third
// bit of column 128h + 32j + l is bit 4h + j of hmask[l]; weight = d·(scale − 32)·(code − 4).
struct Q3_K : Super<110, 16, 3, 4> {
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

// Q6_K (210 bytes): ql[128] low nibbles, qh[64] high bit pairs, 16 int8 scales, f16 d; codes
// q + 32. Columns 128h + 32i + l (i < 4, l < 32) take ql[64h + l + 32(i & 1)] (the low nibble for
// i < 2) and bits 2i..2i+1 of qh[32h + l].
struct Q6_K : Super<210, 16, 6, 32> {
  static __m256i codes(const std::uint8_t* chunk, int k) {
    const int h = k / 128, i = (k % 128) / 32;
    __m256i low = load32(chunk + 64 * h + 32 * (i & 1));
    if (i >= 2) low = _mm256_srli_epi16(low, 4);
    const __m256i high = _mm256_and_si256(_mm256_srli_epi16(load32(chunk + 128 + 32 * h), 2 * i), _mm256_set1_epi8(3));
    return _mm256_or_si256(_mm256_and_si256(low, _mm256_set1_epi8(0x0F)), _mm256_slli_epi16(high, 4));
  }
  static Scales scales(const std::uint8_t* chunk, std::int64_t) {
    const __m128i sc = _mm_loadu_si128(reinterpret_cast<const __m128i*>(chunk + 192));
    const float d = half(chunk + 208);
    const __m256 s0 = signed_lanes(sc, d), s1 = signed_lanes(_mm_srli_si128(sc, 8), d), z = _mm256_set1_ps(32);
    return {{s0, s1}, {_mm256_mul_ps(s0, z), _mm256_mul_ps(s1, z)}};
  }
};

// IQ4_XS (136 bytes): f16 d, scales_h (u16), scales_l[4], then 16 bytes of nibbles per 32-column
// sub-block ib (low nibbles its first 16 columns) indexing the IQ4 code book; the sub-block's
// scale is d·(ls − 32), ls = nibble ib of scales_l and bit pair ib of scales_h.
struct IQ4_XS : Super<136, 32, 8, 0> {
  static constexpr bool kSigned = true;
  static __m256i codes(const std::uint8_t* chunk, int k) {
    return _mm256_shuffle_epi8(iq4_book(), nibbles(chunk + 8 + 16 * (k / 32)));
  }
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

}  // namespace aero::backend::cpu::codes_avx2
