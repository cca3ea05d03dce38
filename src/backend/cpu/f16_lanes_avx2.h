// The f16 values that lead blocks of a row, as f32 lanes, for the AVX2 kernels (compiled with
// AVX2 and F16C). Include only from files built with those flags.
#pragma once

#include <immintrin.h>

#include <cstdint>

#include "quant/half.h"

namespace aero::backend::cpu {

// The f16 at byte `at` of each of 8 blocks `kBytes` apart (blocks past `valid` read as 0), as
// f32 lanes, inserted one by one: AVX2 has a gather, but on Zen 3 the Q4_0 kernel ran 20-30%
// slower with one gather per 8 blocks than with these inserts.
template <int kBytes, int kAt = 0>
inline __m256 block_f16_lanes(const std::uint8_t* first, int valid = 8) {
  __m128i h = _mm_setzero_si128();
  auto value = [&](int i) { return static_cast<int>(valid > i ? quant::load_u16(first + kBytes * i + kAt) : 0); };
  h = _mm_insert_epi16(h, value(0), 0);
  h = _mm_insert_epi16(h, value(1), 1);
  h = _mm_insert_epi16(h, value(2), 2);
  h = _mm_insert_epi16(h, value(3), 3);
  h = _mm_insert_epi16(h, value(4), 4);
  h = _mm_insert_epi16(h, value(5), 5);
  h = _mm_insert_epi16(h, value(6), 6);
  h = _mm_insert_epi16(h, value(7), 7);
  return _mm256_cvtph_ps(h);
}

}  // namespace aero::backend::cpu
