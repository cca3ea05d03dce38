// Activation quantizers (Q8_0, Q8_K) on 256-bit registers for AVX2 machines, identical to the
// reference quantizer's bytes: the reference rounds with a libm call per value, which on Zen 3
// took as long per generated token as a few percent of its weight products.
#include <immintrin.h>

#include <cstring>

#include "backend/cpu/dot.h"
#include "quant/half.h"

namespace aero::backend::cpu {
namespace {

inline __m256 abs_ps(__m256 v) { return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), v); }

inline float hmax(__m256 v) {
  __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  m = _mm_max_ps(m, _mm_movehl_ps(m, m));
  m = _mm_max_ss(m, _mm_movehdup_ps(m));
  return _mm_cvtss_f32(m);
}

// 8 int32 lanes to 8 int8 bytes (values within −128..127).
inline void store_bytes(std::uint8_t* out, __m256i q) {
  const __m128i w = _mm_packs_epi32(_mm256_castsi256_si128(q), _mm256_extracti128_si256(q, 1));
  const __m128i b = _mm_packs_epi16(w, w);
  _mm_storel_epi64(reinterpret_cast<__m128i*>(out), b);
}

}  // namespace

// As the reference: d = amax / 127, quants roundf(x / d) (ties away from zero).
void quantize_q8_0_avx2(const float* x, std::int64_t cols, std::uint8_t* blocks) {
  const __m256 half = _mm256_set1_ps(0.5f), sign = _mm256_set1_ps(-0.0f), one = _mm256_set1_ps(1.0f);
  for (std::int64_t b = 0; b < cols / 32; ++b, x += 32, blocks += 34) {
    __m256 v[4];
    // max(|v|, amax) keeps amax when v is NaN, as std::max(amax, |v|) does.
    __m256 amax_v = _mm256_setzero_ps();
    for (int i = 0; i < 4; ++i) {
      v[i] = _mm256_loadu_ps(x + 8 * i);
      amax_v = _mm256_max_ps(abs_ps(v[i]), amax_v);
    }
    const float d = hmax(amax_v) / 127.0f;
    const __m256 id = _mm256_set1_ps(d != 0.0f ? 1.0f / d : 0.0f);
    const std::uint16_t dh = quant::fp32_to_fp16(d);
    std::memcpy(blocks, &dh, 2);
    for (int i = 0; i < 4; ++i) {
      const __m256 s = _mm256_mul_ps(v[i], id);
      const __m256 t = _mm256_round_ps(s, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
      const __m256 up = _mm256_cmp_ps(abs_ps(_mm256_sub_ps(s, t)), half, _CMP_GE_OQ);
      const __m256 away = _mm256_or_ps(one, _mm256_and_ps(s, sign));
      store_bytes(blocks + 2 + 8 * i, _mm256_cvttps_epi32(_mm256_add_ps(t, _mm256_and_ps(up, away))));
    }
  }
}

// As the reference: the block's largest magnitude (its first occurrence, with its sign) sets
// iscale = −127 / max; quants round half to even (nearbyint) and stay ≤ 127; sums per 16.
void quantize_q8_k_avx2(const float* x, std::int64_t cols, std::uint8_t* blocks) {
  for (std::int64_t b = 0; b < cols / 256; ++b, x += 256, blocks += 292) {
    __m256 amax_v = _mm256_setzero_ps();
    for (int i = 0; i < 32; ++i) amax_v = _mm256_max_ps(abs_ps(_mm256_loadu_ps(x + 8 * i)), amax_v);  // NaN: kept out
    const float amax = hmax(amax_v);
    std::memset(blocks, 0, 292);
    if (amax == 0.0f) continue;
    float max = 0.0f;
    for (int i = 0; i < 32; ++i) {
      const int at = _mm256_movemask_ps(_mm256_cmp_ps(abs_ps(_mm256_loadu_ps(x + 8 * i)), _mm256_set1_ps(amax), _CMP_EQ_OQ));
      if (at) {
        max = x[8 * i + __builtin_ctz(static_cast<unsigned>(at))];
        break;
      }
    }
    const float iscale = -127.0f / max;
    const __m256 scale = _mm256_set1_ps(iscale);
    for (int g = 0; g < 16; ++g) {
      __m256i sum = _mm256_setzero_si256();
      for (int h = 0; h < 2; ++h) {
        const int i = 2 * g + h;
        const __m256 v = _mm256_round_ps(_mm256_mul_ps(_mm256_loadu_ps(x + 8 * i), scale),
                                         _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        const __m256i q = _mm256_min_epi32(_mm256_cvtps_epi32(v), _mm256_set1_epi32(127));
        store_bytes(blocks + 4 + 8 * i, q);
        sum = _mm256_add_epi32(sum, q);
      }
      __m128i s = _mm_add_epi32(_mm256_castsi256_si128(sum), _mm256_extracti128_si256(sum, 1));
      s = _mm_hadd_epi32(s, s);
      s = _mm_hadd_epi32(s, s);
      const auto total = static_cast<std::int16_t>(_mm_cvtsi128_si32(s));
      std::memcpy(blocks + 260 + 2 * g, &total, 2);
    }
    const float d = 1 / iscale;
    std::memcpy(blocks, &d, 4);
  }
}

}  // namespace aero::backend::cpu
