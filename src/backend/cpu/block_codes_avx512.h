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
// it with Q8_K activations (else Q8_0), and two unpackers. `codes(row, k0, blocks)` gives one
// row's 64 unsigned codes from column k0 (a multiple of 64) in column order in a register
// (built in a buffer and reloaded whole, they stalled on store forwarding); blocks is 2, or 1
// at the end of a legacy-format row, whose upper half is then zero. `scales(row, k0, kc)` gives
// the scales s and offsets m of the row's sub-blocks in columns k0..k0+kc (k0 a multiple of
// 256, kc ≤ 256), one per lane in column order, lanes past the last sub-block zero: unpacked in
// registers, because scalar stores reloaded as a vector stall on store forwarding.
#pragma once

#include <immintrin.h>

#include <array>
#include <cstdint>
#include <cstring>

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
template <int kBytes, int kZero>
struct LegacyFmt {
  static constexpr int kBlockCols = 32, kBlockBytes = kBytes;
  static constexpr bool kQ8K = false;
  static constexpr int kSub = 32, kZ = kZero;
  // One gather reads the first word of each block: d, and the min after it.
  static Scales scales(const std::uint8_t* row, std::int64_t k0, std::int64_t kc) {
    const __m256i at = _mm256_mullo_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), _mm256_set1_epi32(kBytes));
    const auto valid = static_cast<__mmask8>((1u << (kc / 32)) - 1);
    const __m256i words = _mm256_mmask_i32gather_epi32(_mm256_setzero_si256(), valid, at, row + (k0 / 32) * kBytes, 1);
    const __m512 d = _mm512_zextps256_ps512(_mm256_cvtph_ps(_mm256_cvtepi32_epi16(words)));
    if constexpr (kZ != 0) return {d, _mm512_mul_ps(d, _mm512_set1_ps(kZ))};
    const __m512 min = _mm512_zextps256_ps512(_mm256_cvtph_ps(_mm256_cvtepi32_epi16(_mm256_srli_epi32(words, 16))));
    return {d, _mm512_sub_ps(_mm512_setzero_ps(), min)};
  }
};

// A nibble block's 32 codes in column order: low nibbles of its 16 bytes, then the high ones.
inline __m256i nibble_codes(const std::uint8_t* qs) {
  const __m128i q = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs)), m4 = _mm_set1_epi8(0x0F);
  return _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(q, 4), m4), _mm_and_si128(q, m4));
}

// IQ4_NL / IQ4_XS's code book + 128 (unsigned), in both 128-bit lanes for a byte shuffle.
inline __m256i iq4_codebook() {
  alignas(32) static constexpr auto kTable = [] {
    std::array<std::uint8_t, 32> t{};
    for (int i = 0; i < 32; ++i) t[i] = static_cast<std::uint8_t>(quant::decode::kIq4nlValues[i % 16] + 128);
    return t;
  }();
  return _mm256_load_si256(reinterpret_cast<const __m256i*>(kTable.data()));
}

// Q4_0 (18-byte blocks), Q4_1 (20), Q5_0 (22), Q5_1 (24), IQ4_NL (18): nibbles at kQs; the
// 5-bit formats' fifth bits (16) in the little-endian word at kQh, bit j for column j; IQ4_NL's
// nibbles index its code book.
template <int kBytes, int kZero, int kQs, int kQh = -1, bool kCodeBook = false>
struct NibbleFmt : LegacyFmt<kBytes, kZero> {
  static __m256i block(const std::uint8_t* b) {
    __m256i codes = nibble_codes(b + kQs);
    if constexpr (kQh >= 0) {
      std::uint32_t qh;
      std::memcpy(&qh, b + kQh, 4);
      codes = _mm256_or_si256(codes, _mm256_maskz_mov_epi8(qh, _mm256_set1_epi8(16)));
    }
    if constexpr (kCodeBook) codes = _mm256_shuffle_epi8(iq4_codebook(), codes);
    return codes;
  }
  static __m512i codes(const std::uint8_t* row, std::int64_t k0, int blocks) {
    const std::uint8_t* b = row + (k0 / 32) * kBytes;
    return _mm512_inserti64x4(_mm512_castsi256_si512(block(b)), blocks > 1 ? block(b + kBytes) : _mm256_setzero_si256(), 1);
  }
};
using Q4_0Fmt = NibbleFmt<18, 8, 2>;
using Q4_1Fmt = NibbleFmt<20, 0, 4>;
using Q5_0Fmt = NibbleFmt<22, 16, 6, 2>;
using Q5_1Fmt = NibbleFmt<24, 0, 8, 4>;
using IQ4_NLFmt = NibbleFmt<18, 128, 2, -1, true>;

struct Q8_0Fmt : LegacyFmt<34, 128> {
  static __m512i codes(const std::uint8_t* row, std::int64_t k0, int blocks) {
    const std::uint8_t* b = row + (k0 / 32) * 34 + 2;
    const __m256i q0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b));
    const __m256i q1 = blocks > 1 ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + 34)) : _mm256_setzero_si256();
    return _mm512_xor_si512(_mm512_inserti64x4(_mm512_castsi256_si512(q0), q1, 1), _mm512_set1_epi8(-128));
  }
};

// The 256-column super-block formats.
template <int kBytes, int kSubCols, int kZero>
struct SuperFmt {
  static constexpr int kBlockCols = 256, kBlockBytes = kBytes;
  static constexpr bool kQ8K = true;
  static constexpr int kSub = kSubCols, kZ = kZero;
  static const std::uint8_t* block(const std::uint8_t* row, std::int64_t k0) { return row + (k0 / 256) * kBytes; }
};

// Q4_K (144-byte super-blocks) and Q5_K (176): d, dmin (f16), 12 bytes of 6-bit scales and mins
// (weight = d·scale·q − dmin·min per 32 columns), then Q5_K's 32 bytes of fifth bits, then 128
// bytes of nibbles: bytes 32c..32c+31 hold columns 64c.. in their low nibbles and 64c+32.. in
// their high nibbles; Q5_K's fifth bits of those columns are bits 2c and 2c+1 of qh[0..31].
template <int kBytes, bool kFifthBit>
struct KNibbleFmt : SuperFmt<kBytes, 32, 0> {
  static __m512i codes(const std::uint8_t* row, std::int64_t k0, int) {
    const std::uint8_t* b = KNibbleFmt::block(row, k0);
    const int c = static_cast<int>((k0 % 256) / 64);
    const __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + kBytes - 128 + 32 * c));
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    __m256i lo = _mm256_and_si256(q, m4), hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
    if constexpr (kFifthBit) {
      const __m256i qh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + 16)), sixteen = _mm256_set1_epi8(16);
      const __m256i bit_lo = _mm256_set1_epi8(static_cast<char>(1 << (2 * c))), bit_hi = _mm256_set1_epi8(static_cast<char>(2 << (2 * c)));
      lo = _mm256_or_si256(lo, _mm256_maskz_mov_epi8(_mm256_test_epi8_mask(qh, bit_lo), sixteen));
      hi = _mm256_or_si256(hi, _mm256_maskz_mov_epi8(_mm256_test_epi8_mask(qh, bit_hi), sixteen));
    }
    return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
  }
  static Scales scales(const std::uint8_t* row, std::int64_t k0, std::int64_t) {
    const std::uint8_t* b = KNibbleFmt::block(row, k0);
    std::uint64_t sc, mn;
    quant::k4_scales_mins(b + 4, sc, mn);
    return {byte_lanes(sc, half(b)), byte_lanes(mn, half(b + 2))};
  }
};
using Q4_KFmt = KNibbleFmt<144, false>;
using Q5_KFmt = KNibbleFmt<176, true>;

// Q2_K (84 bytes) and Q3_K (110): 2-bit codes, columns 128h + 32j + l (j < 4, l < 32) in bits
// 2j..2j+1 of the byte qs[32h + l]; sub-blocks of 16 columns in column order. Q2_K: 16 bytes of
// 4-bit scale | 4-bit min first, qs at 16, then f16 d and dmin (weight = d·sc·q − dmin·min).
// Q3_K: hmask[32] first, qs at 32, 12 bytes of sixteen 6-bit scales, f16 d; the third bit of
// column 128h + 32j + l is bit 4h + j of hmask[l], and weight = d·(scale − 32)·(code − 4).
inline __m512i two_bit_codes(const std::uint8_t* qs, std::int64_t k0) {
  const int h = static_cast<int>((k0 % 256) / 128), j0 = static_cast<int>((k0 % 128) / 32);  // j0 is 0 or 2
  const __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qs + 32 * h)), m2 = _mm256_set1_epi8(3);
  const __m256i a = _mm256_and_si256(_mm256_srli_epi16(q, 2 * j0), m2), b = _mm256_and_si256(_mm256_srli_epi16(q, 2 * j0 + 2), m2);
  return _mm512_inserti64x4(_mm512_castsi256_si512(a), b, 1);
}

struct Q2_KFmt : SuperFmt<84, 16, 0> {
  static __m512i codes(const std::uint8_t* row, std::int64_t k0, int) { return two_bit_codes(block(row, k0) + 16, k0); }
  static Scales scales(const std::uint8_t* row, std::int64_t k0, std::int64_t) {
    const std::uint8_t* b = block(row, k0);
    const __m128i packed = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b)), m4 = _mm_set1_epi8(0x0F);
    return {byte_lanes(_mm_and_si128(packed, m4), half(b + 80)),
            byte_lanes(_mm_and_si128(_mm_srli_epi16(packed, 4), m4), half(b + 82))};
  }
};

struct Q3_KFmt : SuperFmt<110, 16, 4> {
  static __m512i codes(const std::uint8_t* row, std::int64_t k0, int) {
    const std::uint8_t* b = block(row, k0);
    const int h = static_cast<int>((k0 % 256) / 128), j0 = static_cast<int>((k0 % 128) / 32);
    const __m256i hm = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b)), four = _mm256_set1_epi8(4);
    const __m512i third = _mm512_inserti64x4(
        _mm512_castsi256_si512(_mm256_maskz_mov_epi8(_mm256_test_epi8_mask(hm, _mm256_set1_epi8(static_cast<char>(1 << (4 * h + j0)))), four)),
        _mm256_maskz_mov_epi8(_mm256_test_epi8_mask(hm, _mm256_set1_epi8(static_cast<char>(2 << (4 * h + j0)))), four), 1);
    return _mm512_or_si512(two_bit_codes(b + 32, k0), third);
  }
  // Scale j: the nibble j % 8 of byte j % 8 (high nibbles for j ≥ 8), and bits 2(j / 4).. of
  // byte 8 + j % 4 above it; shifts per 16-bit lane, as a lane's two bytes share theirs.
  static Scales scales(const std::uint8_t* row, std::int64_t k0, std::int64_t) {
    const std::uint8_t* b = block(row, k0);
    const __m128i packed = _mm_maskz_loadu_epi8(0x0FFF, b + 96);
    const __m128i low = _mm_and_si128(_mm_srlv_epi16(_mm_shuffle_epi8(packed, _mm_setr_epi8(0, 1, 2, 3, 4, 5, 6, 7, 0, 1, 2, 3, 4, 5, 6, 7)),
                                                     _mm_setr_epi16(0, 0, 0, 0, 4, 4, 4, 4)),
                                      _mm_set1_epi8(0x0F));
    const __m128i high = _mm_and_si128(_mm_srlv_epi16(_mm_shuffle_epi8(packed, _mm_setr_epi8(8, 9, 10, 11, 8, 9, 10, 11, 8, 9, 10, 11, 8, 9, 10, 11)),
                                                      _mm_setr_epi16(0, 0, 2, 2, 4, 4, 6, 6)),
                                       _mm_set1_epi8(3));
    const __m128i biased = _mm_sub_epi8(_mm_or_si128(low, _mm_slli_epi16(high, 4)), _mm_set1_epi8(32));
    const __m512 s = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(biased)), _mm512_set1_ps(half(b + 108)));
    return {s, _mm512_mul_ps(s, _mm512_set1_ps(4))};
  }
};

// IQ4_XS (136 bytes): f16 d, scales_h (u16), scales_l[4], then 16 bytes of nibbles per
// 32-column sub-block ib (low nibbles its first 16 columns) indexing the IQ4 code book; the
// sub-block's scale is d·(ls − 32), ls = 4 bits of scales_l and 2 of scales_h.
struct IQ4_XSFmt : SuperFmt<136, 32, 128> {
  static __m512i codes(const std::uint8_t* row, std::int64_t k0, int) {
    const std::uint8_t* qs = block(row, k0) + 8 + 16 * ((k0 % 256) / 32);
    const __m256i book = iq4_codebook();
    return _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_shuffle_epi8(book, nibble_codes(qs))),
                              _mm256_shuffle_epi8(book, nibble_codes(qs + 16)), 1);
  }
  // ls of sub-block ib: nibble ib of scales_l (4 bytes) and bit pair ib of scales_h, spread
  // one per byte by bit deposits.
  static Scales scales(const std::uint8_t* row, std::int64_t k0, std::int64_t) {
    const std::uint8_t* b = block(row, k0);
    std::uint32_t low;
    std::memcpy(&low, b + 4, 4);
    const std::uint64_t ls = _pdep_u64(low, 0x0F0F0F0F0F0F0F0Full) | _pdep_u64(quant::load_u16(b + 2), 0x3030303030303030ull);
    const __m128i biased = _mm_sub_epi8(_mm_cvtsi64_si128(static_cast<long long>(ls)), _mm_set1_epi8(32));
    const __m512 s = _mm512_maskz_mul_ps(0x00FF, _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(biased)), _mm512_set1_ps(half(b)));
    return {s, _mm512_mul_ps(s, _mm512_set1_ps(128))};
  }
};

// Q6_K (210 bytes): ql[128] low nibbles, qh[64] high bit pairs, 16 int8 scales, f16 d; codes
// are stored as q + 32. Columns 128h + 32i + l (i < 4, l < 32) take ql[64h + l + 32(i&1)]
// (low nibble for i < 2) and bits 2i..2i+1 of qh[32h + l].
struct Q6_KFmt : SuperFmt<210, 16, 32> {
  static __m512i codes(const std::uint8_t* row, std::int64_t k0, int) {
    const std::uint8_t* b = block(row, k0);
    const int h = static_cast<int>((k0 % 256) / 128), i0 = static_cast<int>((k0 % 128) / 32);  // i0 is 0 or 2
    const __m256i ql = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + 64 * h));
    const __m256i ql2 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + 64 * h + 32));
    const __m256i qh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + 128 + 32 * h));
    const __m256i m4 = _mm256_set1_epi8(0x0F), m3 = _mm256_set1_epi8(3);
    __m256i part[2];
    for (int j = 0; j < 2; ++j) {
      const int i = i0 + j;
      const __m256i low = (i & 1) ? ql2 : ql;
      const __m256i nib = i < 2 ? _mm256_and_si256(low, m4) : _mm256_and_si256(_mm256_srli_epi16(low, 4), m4);
      const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(qh, 2 * i), m3);
      part[j] = _mm256_or_si256(nib, _mm256_slli_epi16(hi, 4));
    }
    return _mm512_inserti64x4(_mm512_castsi256_si512(part[0]), part[1], 1);
  }
  static Scales scales(const std::uint8_t* row, std::int64_t k0, std::int64_t) {
    const std::uint8_t* b = block(row, k0);
    const __m512 s = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b + 192)))),
                                   _mm512_set1_ps(half(b + 208)));
    return {s, _mm512_mul_ps(s, _mm512_set1_ps(32))};
  }
};

}  // namespace aero::backend::cpu::codes
