// The block formats as unsigned codes and per-sub-block scales, for the AVX-512 kernels that
// multiply codes by int8 activations with VNNI (the packed-panel GEMM and the generic row
// kernels). Include only from files compiled with AVX-512 F/BW/VL/VNNI and F16C.
//
// A weight is s·q − m per sub-block (q the unsigned code, s its scale, m its offset): Q4_0
// s = d, m = 8d; Q8_0 q + 128 (sign bit flipped), m = 128d; Q6_K sub-blocks of 16 with
// s = d·scale, m = 32s; Q4_K s = d·scale, m = dmin·min; IQ4 formats index a code book whose
// values + 128 are the codes, m = 128s.
//
// Each format's traits: block size (kBlockCols columns in kBlockBytes), sub-block length kSub,
// constant code offset kZ (m = kZ·s; 0: the format stores its own offsets), whether ggml pairs
// it with Q8_K activations (else Q8_0), and two unpackers, both reading a chunk of 256 columns
// of a row from `chunk`, its first byte. `codes(chunk, k, blocks)` gives the 64 unsigned codes
// of columns k..k+63 of the chunk (k = 0, 64, 128, 192) in column order in a register; blocks
// is 2, or 1 at the end of a legacy-format row, whose upper half is then zero. Each is built
// from broadcast loads and per-lane shifts on the whole register (no 256-bit halves to join).
// `scales(chunk, kc)` gives the scales s and offsets m of the chunk's sub-blocks in its first
// kc columns, one per lane in column order, lanes past the last sub-block zero: unpacked in
// registers, because scalar stores reloaded as a vector stall on store forwarding.
#pragma once

#include <array>
#include <cstdint>
#include <cstring>

#include "backend/cpu/avx512_intrinsics.h"
#include "quant/decode.h"
#include "quant/half.h"
#include "quant/k_scales.h"

namespace aero::backend::cpu::codes {

struct Scales {
  __m512 s, m;
};

// F16C's conversion (the portable one branches).
inline float half(const std::uint8_t* p) { return _cvtsh_ss(quant::load_u16(p)); }

// d times each of 16 unsigned bytes, as f32 lanes; the 8-byte form leaves lanes 8..15 zero.
inline __m512 byte_lanes(__m128i bytes, float d) {
  return _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(bytes)), _mm512_set1_ps(d));
}
inline __m512 byte_lanes(std::uint64_t bytes, float d) {
  return byte_lanes(_mm_cvtsi64_si128(static_cast<long long>(bytes)), d);
}

// The legacy formats: the sub-block is the 32-column block and its f16 scale d leads it; the
// offset is m = z·d for a constant code offset z (Q4_0 8, Q5_0 16, Q8_0 128 once its sign bit
// is flipped, IQ4_NL 128), or the block's own f16 minimum at byte 2 (Q4_1, Q5_1: weight =
// d·q + min).
// MXFP4's scale is one E8M0 byte (a power of two; ggml takes half of it).
template <int kBytes, int kZero, bool kE8M0 = false>
struct LegacyFmt {
  static constexpr int kBlockCols = 32, kBlockBytes = kBytes;
  static constexpr bool kQ8K = false;
  static constexpr int kSub = 32, kZ = kZero;
  // One gather reads the first word of each block: d, and the min after it.
  static Scales scales(const std::uint8_t* chunk, std::int64_t kc) {
    const __m256i at = _mm256_mullo_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), _mm256_set1_epi32(kBytes));
    const auto valid = static_cast<__mmask8>((1u << (kc / 32)) - 1);
    const __m256i words = _mm256_mmask_i32gather_epi32(_mm256_setzero_si256(), valid, at, chunk, 1);
    if constexpr (kE8M0) {  // 2^(e − 128): exponent e − 1, or for e < 2 the subnormals 2^-127, 2^-126
      const __m256i e = _mm256_and_si256(words, _mm256_set1_epi32(0xFF));
      const __m256i bits = _mm256_mask_blend_epi32(_mm256_cmplt_epu32_mask(e, _mm256_set1_epi32(2)),
                                                   _mm256_slli_epi32(_mm256_sub_epi32(e, _mm256_set1_epi32(1)), 23),
                                                   _mm256_sllv_epi32(_mm256_set1_epi32(0x00200000), e));
      const __m512 d = _mm512_zextps256_ps512(_mm256_castsi256_ps(_mm256_maskz_mov_epi32(valid, bits)));
      return {d, _mm512_mul_ps(d, _mm512_set1_ps(kZ))};
    }
    const __m512 d = _mm512_zextps256_ps512(_mm256_cvtph_ps(_mm256_cvtepi32_epi16(words)));
    if constexpr (kZ != 0) return {d, _mm512_mul_ps(d, _mm512_set1_ps(kZ))};
    const __m512 min = _mm512_zextps256_ps512(_mm256_cvtph_ps(_mm256_cvtepi32_epi16(_mm256_srli_epi32(words, 16))));
    return {d, _mm512_sub_ps(_mm512_setzero_ps(), min)};
  }
};

// Shift counts for the 16-bit lanes of 128-bit lane l: a0, a1, a2, a3.
inline __m512i lane_shifts(int a0, int a1, int a2, int a3) {
  auto pair = [](int a) { return a | a << 16; };
  return _mm512_set_epi32(pair(a3), pair(a3), pair(a3), pair(a3), pair(a2), pair(a2), pair(a2), pair(a2), pair(a1),
                          pair(a1), pair(a1), pair(a1), pair(a0), pair(a0), pair(a0), pair(a0));
}

// Two 16-byte nibble runs A and B (32 columns each: low nibbles the first 16) in column order:
// loaded as lanes [A, A, B, B], the second and fourth shifted by 4.
inline __m512i nibble_codes(__m512i aabb) {
  return _mm512_and_si512(_mm512_srlv_epi16(aabb, lane_shifts(0, 4, 0, 4)), _mm512_set1_epi8(0x0F));
}

// 32 bytes in both 256-bit halves.
inline __m512i twice(const std::uint8_t* p) {
  return _mm512_broadcast_i64x4(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
}

// A code book's values + z (unsigned), in every 128-bit lane for a byte shuffle.
template <const std::int8_t* kValues, int kZ>
inline __m512i codebook() {
  alignas(16) static constexpr auto kTable = [] {
    std::array<std::uint8_t, 16> t{};
    for (int i = 0; i < 16; ++i) t[i] = static_cast<std::uint8_t>(kValues[i] + kZ);
    return t;
  }();
  return _mm512_broadcast_i32x4(_mm_load_si128(reinterpret_cast<const __m128i*>(kTable.data())));
}
inline __m512i iq4_codebook() { return codebook<quant::decode::kIq4nlValues, 128>(); }

// Q4_0 (18-byte blocks), Q4_1 (20), Q5_0 (22), Q5_1 (24), IQ4_NL (18), MXFP4 (17): nibbles at
// kQs; the 5-bit formats' fifth bits (16) in the little-endian word at kQh, bit j for column j;
// IQ4_NL's and MXFP4's nibbles index a code book (kValues, stored + z as codes).
template <int kBytes, int kZero, int kQs, int kQh = -1, const std::int8_t* kValues = nullptr, bool kE8M0 = false>
struct NibbleFmt : LegacyFmt<kBytes, kZero, kE8M0> {
  static __m512i codes(const std::uint8_t* chunk, int k, int blocks) {
    const std::uint8_t* a = chunk + (k / 32) * kBytes;
    const __m512i aa = _mm512_broadcast_i32x4(_mm_loadu_si128(reinterpret_cast<const __m128i*>(a + kQs)));
    const __m512i aabb = blocks > 1 ? _mm512_mask_broadcast_i32x4(aa, 0xFF00, _mm_loadu_si128(reinterpret_cast<const __m128i*>(a + kBytes + kQs)))
                                    : _mm512_maskz_mov_epi32(0x00FF, aa);
    __m512i codes = nibble_codes(aabb);
    if constexpr (kQh >= 0) {
      std::uint32_t qa, qb = 0;
      std::memcpy(&qa, a + kQh, 4);
      if (blocks > 1) std::memcpy(&qb, a + kBytes + kQh, 4);
      codes = _mm512_mask_add_epi8(codes, qa | static_cast<std::uint64_t>(qb) << 32, codes, _mm512_set1_epi8(16));
    }
    if constexpr (kValues != nullptr) codes = _mm512_shuffle_epi8(codebook<kValues, kZero>(), codes);
    return codes;
  }
};
using Q4_0Fmt = NibbleFmt<18, 8, 2>;
using Q4_1Fmt = NibbleFmt<20, 0, 4>;
using Q5_0Fmt = NibbleFmt<22, 16, 6, 2>;
using Q5_1Fmt = NibbleFmt<24, 0, 8, 4>;
using IQ4_NLFmt = NibbleFmt<18, 128, 2, -1, quant::decode::kIq4nlValues>;
using MXFP4Fmt = NibbleFmt<17, 12, 1, -1, quant::decode::kMxfp4Values, true>;

struct Q8_0Fmt : LegacyFmt<34, 128> {
  static __m512i codes(const std::uint8_t* chunk, int k, int blocks) {
    const std::uint8_t* b = chunk + (k / 32) * 34 + 2;
    const __m256i q0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b));
    const __m256i q1 = blocks > 1 ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + 34)) : _mm256_setzero_si256();
    return _mm512_xor_si512(_mm512_inserti64x4(_mm512_castsi256_si512(q0), q1, 1), _mm512_set1_epi8(-128));
  }
};

// The 256-column super-block formats (a chunk is one super-block).
template <int kBytes, int kSubCols, int kZero>
struct SuperFmt {
  static constexpr int kBlockCols = 256, kBlockBytes = kBytes;
  static constexpr bool kQ8K = true;
  static constexpr int kSub = kSubCols, kZ = kZero;
};

// Bytes with bit `lo` set in the lower 256-bit half, bit `hi` in the upper: a test against
// them picks the columns whose extra bit is set.
inline __m512i half_bits(int lo, int hi) {
  return _mm512_inserti64x4(_mm512_set1_epi8(static_cast<char>(1 << lo)), _mm256_set1_epi8(static_cast<char>(1 << hi)), 1);
}

// Q4_K (144-byte super-blocks) and Q5_K (176): d, dmin (f16), 12 bytes of 6-bit scales and mins
// (weight = d·scale·q − dmin·min per 32 columns), then Q5_K's 32 bytes of fifth bits, then 128
// bytes of nibbles: bytes 32c..32c+31 hold columns 64c.. in their low nibbles and 64c+32.. in
// their high nibbles; Q5_K's fifth bits of those columns are bits 2c and 2c+1 of qh[0..31].
template <int kBytes, bool kFifthBit>
struct KNibbleFmt : SuperFmt<kBytes, 32, 0> {
  static __m512i codes(const std::uint8_t* chunk, int k, int) {
    const int c = k / 64;
    __m512i codes = _mm512_and_si512(_mm512_srlv_epi16(twice(chunk + kBytes - 128 + 32 * c), lane_shifts(0, 0, 4, 4)),
                                     _mm512_set1_epi8(0x0F));
    if constexpr (kFifthBit)
      codes = _mm512_mask_add_epi8(codes, _mm512_test_epi8_mask(twice(chunk + 16), half_bits(2 * c, 2 * c + 1)), codes,
                                   _mm512_set1_epi8(16));
    return codes;
  }
  static Scales scales(const std::uint8_t* chunk, std::int64_t) {
    std::uint64_t sc, mn;
    quant::k4_scales_mins(chunk + 4, sc, mn);
    return {byte_lanes(sc, half(chunk)), byte_lanes(mn, half(chunk + 2))};
  }
};
using Q4_KFmt = KNibbleFmt<144, false>;
using Q5_KFmt = KNibbleFmt<176, true>;

// Q2_K (84 bytes) and Q3_K (110): 2-bit codes, columns 128h + 32j + l (j < 4, l < 32) in bits
// 2j..2j+1 of the byte qs[32h + l]; sub-blocks of 16 columns in column order. Q2_K: 16 bytes of
// 4-bit scale | 4-bit min first, qs at 16, then f16 d and dmin (weight = d·sc·q − dmin·min).
// Q3_K: hmask[32] first, qs at 32, 12 bytes of sixteen 6-bit scales, f16 d; the third bit of
// column 128h + 32j + l is bit 4h + j of hmask[l], and weight = d·(scale − 32)·(code − 4).
inline __m512i two_bit_codes(const std::uint8_t* qs, int k) {
  const int h = k / 128, j0 = (k % 128) / 32;  // j0 is 0 or 2
  return _mm512_and_si512(_mm512_srlv_epi16(twice(qs + 32 * h), lane_shifts(2 * j0, 2 * j0, 2 * j0 + 2, 2 * j0 + 2)),
                          _mm512_set1_epi8(3));
}

struct Q2_KFmt : SuperFmt<84, 16, 0> {
  static __m512i codes(const std::uint8_t* chunk, int k, int) { return two_bit_codes(chunk + 16, k); }
  static Scales scales(const std::uint8_t* chunk, std::int64_t) {
    const __m128i packed = _mm_loadu_si128(reinterpret_cast<const __m128i*>(chunk)), m4 = _mm_set1_epi8(0x0F);
    return {byte_lanes(_mm_and_si128(packed, m4), half(chunk + 80)),
            byte_lanes(_mm_and_si128(_mm_srli_epi16(packed, 4), m4), half(chunk + 82))};
  }
};

// TQ2_0 (66 bytes): qs[64] in Q2_K's 2-bit layout, codes q + 1 for −1, 0, 1; f16 d at 64.
struct TQ2_0Fmt : SuperFmt<66, 32, 1> {
  static __m512i codes(const std::uint8_t* chunk, int k, int) { return two_bit_codes(chunk, k); }
  static Scales scales(const std::uint8_t* chunk, std::int64_t) {
    const __m512 s = _mm512_maskz_mov_ps(0x00FF, _mm512_set1_ps(half(chunk + 64)));
    return {s, s};
  }
};

struct Q3_KFmt : SuperFmt<110, 16, 4> {
  static __m512i codes(const std::uint8_t* chunk, int k, int) {
    const int bit = 4 * (k / 128) + (k % 128) / 32;
    const __m512i low = two_bit_codes(chunk + 32, k);
    return _mm512_mask_add_epi8(low, _mm512_test_epi8_mask(twice(chunk), half_bits(bit, bit + 1)), low, _mm512_set1_epi8(4));
  }
  static Scales scales(const std::uint8_t* b, std::int64_t) {
    const auto w = quant::k3_scale_words(b + 96);
    const __m128i biased = _mm_sub_epi8(
        _mm_setr_epi32(static_cast<int>(w[0]), static_cast<int>(w[1]), static_cast<int>(w[2]), static_cast<int>(w[3])),
        _mm_set1_epi8(32));
    const __m512 s = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(biased)), _mm512_set1_ps(half(b + 108)));
    return {s, _mm512_mul_ps(s, _mm512_set1_ps(4))};
  }
};

// IQ4_XS (136 bytes): f16 d, scales_h (u16), scales_l[4], then 16 bytes of nibbles per
// 32-column sub-block ib (low nibbles its first 16 columns) indexing the IQ4 code book; the
// sub-block's scale is d·(ls − 32), ls = 4 bits of scales_l and 2 of scales_h.
struct IQ4_XSFmt : SuperFmt<136, 32, 128> {
  static __m512i codes(const std::uint8_t* chunk, int k, int) {
    const __m512i ab = _mm512_castsi256_si512(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(chunk + 8 + 16 * (k / 32))));
    return _mm512_shuffle_epi8(iq4_codebook(), nibble_codes(_mm512_shuffle_i64x2(ab, ab, _MM_SHUFFLE(1, 1, 0, 0))));
  }
  // ls of sub-block ib: nibble ib of scales_l (4 bytes) and bit pair ib of scales_h (u16).
  static Scales scales(const std::uint8_t* b, std::int64_t) {
    std::uint32_t low;
    std::memcpy(&low, b + 4, 4);
    const __m512i ib = _mm512_set_epi32(0, 0, 0, 0, 0, 0, 0, 0, 7, 6, 5, 4, 3, 2, 1, 0);
    const __m512i nibble = _mm512_and_si512(_mm512_srlv_epi32(_mm512_set1_epi32(static_cast<int>(low)), _mm512_slli_epi32(ib, 2)),
                                            _mm512_set1_epi32(0x0F));
    const __m512i pair = _mm512_and_si512(_mm512_srlv_epi32(_mm512_set1_epi32(quant::load_u16(b + 2)), _mm512_slli_epi32(ib, 1)),
                                          _mm512_set1_epi32(3));
    const __m512i ls = _mm512_sub_epi32(_mm512_or_si512(nibble, _mm512_slli_epi32(pair, 4)), _mm512_set1_epi32(32));
    const __m512 s = _mm512_maskz_mul_ps(0x00FF, _mm512_cvtepi32_ps(ls), _mm512_set1_ps(half(b)));
    return {s, _mm512_mul_ps(s, _mm512_set1_ps(128))};
  }
};

// Q6_K (210 bytes): ql[128] low nibbles, qh[64] high bit pairs, 16 int8 scales, f16 d; codes
// are stored as q + 32. Columns 128h + 32i + l (i < 4, l < 32) take ql[64h + l + 32(i&1)]
// (low nibble for i < 2) and bits 2i..2i+1 of qh[32h + l].
struct Q6_KFmt : SuperFmt<210, 16, 32> {
  static __m512i codes(const std::uint8_t* chunk, int k, int) {
    const int h = k / 128, i0 = (k % 128) / 32;  // i0 is 0 or 2: low nibbles, or high
    __m512i nibbles = _mm512_loadu_si512(chunk + 64 * h);
    if (i0) nibbles = _mm512_srli_epi16(nibbles, 4);
    const __m512i high = _mm512_srlv_epi16(twice(chunk + 128 + 32 * h), lane_shifts(2 * i0, 2 * i0, 2 * i0 + 2, 2 * i0 + 2));
    return _mm512_or_si512(_mm512_and_si512(nibbles, _mm512_set1_epi8(0x0F)),
                           _mm512_slli_epi16(_mm512_and_si512(high, _mm512_set1_epi8(3)), 4));
  }
  static Scales scales(const std::uint8_t* b, std::int64_t) {
    const __m512 s = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b + 192)))),
                                   _mm512_set1_ps(half(b + 208)));
    return {s, _mm512_mul_ps(s, _mm512_set1_ps(32))};
  }
};

}  // namespace aero::backend::cpu::codes
