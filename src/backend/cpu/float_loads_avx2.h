// Float weights as f32 lanes, 8 at a time or one, for the 256-bit kernels (the row kernels in
// dot_simd.inc and the AVX2 GEMM). Include only from files compiled with AVX2 and F16C.
//
// In an anonymous namespace: dot_simd.inc is compiled for AVX2 and for AVX-512, and one shared
// out-of-line copy (which the linker would pick from either) could carry instructions that the
// running CPU lacks.
#pragma once

#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "quant/half.h"

namespace aero::backend::cpu {
namespace {

struct F32Load {
  static constexpr int kBytes = 4;
  static __m256 load8(const std::uint8_t* p) { return _mm256_loadu_ps(reinterpret_cast<const float*>(p)); }
  static float load1(const std::uint8_t* p) {
    float v;
    std::memcpy(&v, p, 4);
    return v;
  }
};
struct F16Load {
  static constexpr int kBytes = 2;
  static __m256 load8(const std::uint8_t* p) { return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))); }
  static float load1(const std::uint8_t* p) { return _cvtsh_ss(quant::load_u16(p)); }
};
struct Bf16Load {
  static constexpr int kBytes = 2;
  static __m256 load8(const std::uint8_t* p) {
    const __m256i wide = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
    return _mm256_castsi256_ps(_mm256_slli_epi32(wide, 16));
  }
  static float load1(const std::uint8_t* p) { return quant::bf16_to_fp32(quant::load_u16(p)); }
};

}  // namespace
}  // namespace aero::backend::cpu
