// The f16 values that lead blocks of a row, as f32 lanes, for the AVX2 kernels (compiled with
// AVX2 and F16C). Include only from files built with those flags.
#pragma once

#include <immintrin.h>

#include <cstdint>

#include "quant/half.h"

namespace aero::backend::cpu {

// The f16 at byte `at` of each of 8 blocks `kBytes` apart (blocks past `valid` read as 0), as
// f32 lanes. The eight halves meet in two 64-bit general registers (loads, shifts and ors on the
// integer units) and enter the vector unit in two moves, where inserting them one by one
// (vpinsrw from memory) loads the few pipes that move data into vectors (the Q4_0 row kernel:
// 0.79 against 0.85 ns per block on Zen 3); one AVX2 gather per 8 blocks was slower still.
// kEvenOdd: blocks 0, 2, 4, 6 in the low 128 bits and 1, 3, 5, 7 in the high ones instead, so
// that an in-lane broadcast (vpermilps) gives a pair of blocks (2p, 2p+1) their scales.
template <int kBytes, int kAt = 0, bool kEvenOdd = false>
inline __m256 block_f16_lanes(const std::uint8_t* first, int valid = 8) {
  auto word = [&](int i) -> std::uint64_t {
    std::uint64_t h = valid > i ? quant::load_u16(first + kBytes * i + kAt) : 0;
    asm("" : "+r"(h));  // keeps GCC's vectorizer from rebuilding this in (slow) vector inserts
    return h;
  };
  constexpr int a = kEvenOdd ? 2 : 1, b = kEvenOdd ? 1 : 4;  // lane j of half h: block a·j + b·h
  const std::uint64_t low = word(0) | word(a) << 16 | word(2 * a) << 32 | word(3 * a) << 48;
  const std::uint64_t high = word(b) | word(b + a) << 16 | word(b + 2 * a) << 32 | word(b + 3 * a) << 48;
  return _mm256_cvtph_ps(_mm_set_epi64x(static_cast<long long>(high), static_cast<long long>(low)));
}

}  // namespace aero::backend::cpu
