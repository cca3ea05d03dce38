// K-quant reference quantizers (Q4_K, Q5_K, Q6_K): byte-identical with llama.cpp's
// quantize_row_q*_K_ref, what llama-quantize uses without an importance matrix. The search
// for each sub-block's scale (and min) is llama.cpp's: a grid of candidate scales, each
// refined by least squares, keeping the one of least weighted error.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "quant/decode.h"
#include "quant/encode.h"
#include "quant/half.h"
#include "quant/k_scales.h"

namespace aero::quant::encode {
namespace {

constexpr int kQK = 256;
constexpr float kGroupMaxEps = 1e-15f;

// Round to nearest (ties to even) through the float mantissa, as llama.cpp does; valid for
// |x| < 2^22, which every caller guarantees.
inline int nearest_int(float x) {
  float v = x + 12582912.f;
  int i;
  std::memcpy(&i, &v, sizeof i);
  return (i & 0x007fffff) - 0x00400000;
}

inline void store_u16(std::uint8_t* p, std::uint16_t v) { std::memcpy(p, &v, 2); }
inline float load_half(const std::uint8_t* p) {
  std::uint16_t v;
  std::memcpy(&v, p, 2);
  return fp16_to_fp32(v);
}

// The value of largest magnitude (the first on ties) and that magnitude.
inline float signed_absmax(const float* x, int n, float& amax) {
  float max = 0;
  amax = 0;
  for (int i = 0; i < n; ++i)
    if (std::fabs(x[i]) > amax) {
      amax = std::fabs(x[i]);
      max = x[i];
    }
  return max;
}

// Levels round(iscale·x) clamped to [-nmax, nmax), weighted by x², and their sums Σw·x·l and
// Σw·l² (the least-squares fit of a scale). `L`, when given, receives l + offset.
inline void symmetric_fit(const float* x, int n, int nmax, float iscale, std::int8_t* L, int offset, float& sumlx,
                          float& suml2) {
  sumlx = suml2 = 0;
  for (int i = 0; i < n; ++i) {
    const int l = std::clamp(nearest_int(iscale * x[i]), -nmax, nmax - 1);
    if (L) L[i] = static_cast<std::int8_t>(l + offset);
    const float w = x[i] * x[i];
    sumlx += w * x[i] * l;
    suml2 += w * l * l;
  }
}

// Symmetric levels in [-nmax, nmax) for Q6_K (llama.cpp's make_qx_quants, rmse_type 1).
float symmetric_levels(int n, int nmax, const float* x, std::int8_t* L) {
  float amax;
  const float max = signed_absmax(x, n, amax);
  if (amax < kGroupMaxEps) {
    std::fill(L, L + n, 0);
    return 0.f;
  }
  float iscale = -nmax / max;
  float sumlx, suml2;
  symmetric_fit(x, n, nmax, iscale, L, nmax, sumlx, suml2);
  float scale = suml2 ? sumlx / suml2 : 0.0f;
  float best = scale * sumlx;
  for (int is = -9; is <= 9; ++is) {
    if (is == 0) continue;
    iscale = -(nmax + 0.1f * is) / max;
    symmetric_fit(x, n, nmax, iscale, nullptr, 0, sumlx, suml2);
    if (suml2 > 0 && sumlx * sumlx > best * suml2) {
      symmetric_fit(x, n, nmax, iscale, L, nmax, sumlx, suml2);
      scale = sumlx / suml2;
      best = scale * sumlx;
    }
  }
  return scale;
}

// Levels in [0, nmax] with a scale and a min (llama.cpp's make_qkx2_quants); the error is
// squared, or absolute with `use_mad`.
float scale_min_levels(int n, int nmax, const float* x, const float* weights, std::uint8_t* L, float* the_min,
                       std::uint8_t* Laux, float rmin, float rdelta, int nstep, bool use_mad = false) {
  auto error = [use_mad](float diff) { return use_mad ? std::fabs(diff) : diff * diff; };
  float min = x[0], max = x[0];
  float sum_w = weights[0], sum_x = sum_w * x[0];
  for (int i = 1; i < n; ++i) {
    if (x[i] < min) min = x[i];
    if (x[i] > max) max = x[i];
    const float w = weights[i];
    sum_w += w;
    sum_x += w * x[i];
  }
  if (min > 0) min = 0;
  if (max == min) {
    std::fill(L, L + n, 0);
    *the_min = -min;
    return 0.f;
  }
  float iscale = nmax / (max - min);
  float scale = 1 / iscale;
  float best_error = 0;
  for (int i = 0; i < n; ++i) {
    const int l = nearest_int(iscale * (x[i] - min));
    L[i] = static_cast<std::uint8_t>(std::clamp(l, 0, nmax));
    best_error += weights[i] * error(scale * L[i] + min - x[i]);
  }
  for (int is = 0; is <= nstep; ++is) {
    iscale = (rmin + rdelta * is + nmax) / (max - min);
    float sum_l = 0, sum_l2 = 0, sum_xl = 0;
    for (int i = 0; i < n; ++i) {
      const int l = std::clamp(nearest_int(iscale * (x[i] - min)), 0, nmax);
      Laux[i] = static_cast<std::uint8_t>(l);
      const float w = weights[i];
      sum_l += w * l;
      sum_l2 += w * l * l;
      sum_xl += w * l * x[i];
    }
    const float D = sum_w * sum_l2 - sum_l * sum_l;
    if (D > 0) {
      float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
      float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
      if (this_min > 0) {
        this_min = 0;
        this_scale = sum_xl / sum_l2;
      }
      float cur_error = 0;
      for (int i = 0; i < n; ++i) {
        cur_error += weights[i] * error(this_scale * Laux[i] + this_min - x[i]);
      }
      if (cur_error < best_error) {
        std::copy(Laux, Laux + n, L);
        best_error = cur_error;
        scale = this_scale;
        min = this_min;
      }
    }
  }
  *the_min = -min;
  return scale;
}

// Symmetric levels in [-nmax, nmax) refined coordinate-wise (llama.cpp's make_q3_quants with
// do_rmse), for Q3_K.
float q3_levels(int n, int nmax, const float* x, std::int8_t* L) {
  float amax;
  const float max = signed_absmax(x, n, amax);
  if (amax < kGroupMaxEps) {
    std::fill(L, L + n, 0);
    return 0.f;
  }
  float sumlx, suml2;
  symmetric_fit(x, n, nmax, -nmax / max, L, 0, sumlx, suml2);
  for (int itry = 0; itry < 5; ++itry) {
    int n_changed = 0;
    for (int i = 0; i < n; ++i) {
      const float w = x[i] * x[i];
      float slx = sumlx - w * x[i] * L[i];
      if (slx > 0) {
        float sl2 = suml2 - w * L[i] * L[i];
        const int new_l = std::clamp(nearest_int(x[i] * sl2 / slx), -nmax, nmax - 1);
        if (new_l != L[i]) {
          slx += w * x[i] * new_l;
          sl2 += w * new_l * new_l;
          if (sl2 > 0 && slx * slx * suml2 > sumlx * sumlx * sl2) {
            L[i] = static_cast<std::int8_t>(new_l);
            sumlx = slx;
            suml2 = sl2;
            ++n_changed;
          }
        }
      }
    }
    if (!n_changed) break;
  }
  for (int i = 0; i < n; ++i) L[i] = static_cast<std::int8_t>(L[i] + nmax);
  return suml2 > 0.0f ? sumlx / suml2 : 0.0f;
}

// The index of the table value nearest to x (table ascending; ties to the lower index).
inline int nearest_index(const std::int8_t* values, int n, float x) {
  if (x <= values[0]) return 0;
  if (x >= values[n - 1]) return n - 1;
  int lo = 0, hi = n - 1;
  while (hi - lo > 1) {
    const int mid = (lo + hi) / 2;
    if (x < values[mid]) hi = mid;
    else lo = mid;
  }
  return x - values[hi - 1] < values[hi] - x ? hi - 1 : hi;
}

// IQ4_NL / IQ4_XS (llama.cpp's quantize_row_iq4_nl_impl without importance weights, 7 tries):
// 4-bit indices into the non-linear value table, a scale per 32 values; with several
// sub-blocks (IQ4_XS) the scales become 6-bit multiples of one super-block scale.
void iq4_block(int super_block, const float* x, std::uint8_t* dh, std::uint8_t* q4, std::uint8_t* scales_h,
               std::uint8_t* scales_l) {
  constexpr int kBlock = 32, kTries = 7;
  const std::int8_t* values = decode::kIq4nlValues;
  float scales[8], weight[kBlock];
  std::uint8_t L[256];
  std::memset(q4, 0, static_cast<std::size_t>(super_block / 2));
  store_u16(dh, fp32_to_fp16(0.f));
  float max_scale = 0, amax_scale = 0;
  const int nb = super_block / kBlock;
  for (int ib = 0; ib < nb; ++ib) {
    const float* xb = x + ib * kBlock;
    std::uint8_t* Lb = L + ib * kBlock;
    for (int j = 0; j < kBlock; ++j) weight[j] = xb[j] * xb[j];
    float amax;
    const float max = signed_absmax(xb, kBlock, amax);
    if (amax < kGroupMaxEps) {
      scales[ib] = 0;
      continue;
    }
    float d = -max / values[0];
    float id = 1 / d;
    float sumqx = 0, sumq2 = 0;
    for (int j = 0; j < kBlock; ++j) {
      const int l = nearest_index(values, 16, id * xb[j]);
      Lb[j] = static_cast<std::uint8_t>(l);
      const float q = values[l], w = weight[j];
      sumqx += w * q * xb[j];
      sumq2 += w * q * q;
    }
    d = sumq2 > 0 ? sumqx / sumq2 : 0.f;
    float best = d * sumqx;
    for (int itry = -kTries; itry <= kTries; ++itry) {
      id = (itry + values[0]) / max;
      sumqx = sumq2 = 0;
      for (int j = 0; j < kBlock; ++j) {
        const int l = nearest_index(values, 16, id * xb[j]);
        const float q = values[l], w = weight[j];
        sumqx += w * q * xb[j];
        sumq2 += w * q * q;
      }
      if (sumq2 > 0 && sumqx * sumqx > best * sumq2) {
        d = sumqx / sumq2;
        best = d * sumqx;
      }
    }
    scales[ib] = d;
    if (std::fabs(d) > amax_scale) {
      amax_scale = std::fabs(d);
      max_scale = d;
    }
  }
  if (nb > 1) {
    std::uint16_t sh = 0;
    const float d = -max_scale / 32;
    store_u16(dh, fp32_to_fp16(d));
    const float id = d ? 1 / d : 0.f;
    for (int ib = 0; ib < nb; ++ib) {
      int l = std::clamp(nearest_int(id * scales[ib]), -32, 31);
      const float dl = d * l;
      const float idl = dl ? 1 / dl : 0.f;
      for (int j = 0; j < kBlock; ++j) L[ib * kBlock + j] = static_cast<std::uint8_t>(nearest_index(values, 16, idl * x[ib * kBlock + j]));
      l += 32;
      const auto l_l = static_cast<std::uint8_t>(l & 0xf), l_h = static_cast<std::uint8_t>(l >> 4);
      if (ib % 2 == 0) scales_l[ib / 2] = l_l;
      else scales_l[ib / 2] |= static_cast<std::uint8_t>(l_l << 4);
      sh = static_cast<std::uint16_t>(sh | (l_h << 2 * (ib % 8)));
    }
    store_u16(scales_h, sh);
  } else {
    store_u16(dh, fp32_to_fp16(scales[0]));
    const float id = scales[0] ? 1 / scales[0] : 0;
    for (int j = 0; j < super_block; ++j) L[j] = static_cast<std::uint8_t>(nearest_index(values, 16, id * x[j]));
  }
  for (int i = 0; i < super_block / 32; ++i)
    for (int j = 0; j < 16; ++j) q4[16 * i + j] = static_cast<std::uint8_t>(L[32 * i + j] | (L[32 * i + 16 + j] << 4));
}

// Q4_K and Q5_K share everything but the level count, the search grid and the packing:
// 8 sub-blocks of 32 with 6-bit scales and mins, then levels against the rounded scales.
// Writes d, dmin and the 12 scale bytes at y; fills L (256 levels).
void scale_min_block(const float* x, std::uint8_t* y, std::uint8_t* L, int nmax, float rmin, int nstep) {
  std::uint8_t Laux[32];
  float weights[32], mins[8], scales[8];
  float max_scale = 0, max_min = 0;
  for (int j = 0; j < 8; ++j) {
    float sum_x2 = 0;
    for (int l = 0; l < 32; ++l) sum_x2 += x[32 * j + l] * x[32 * j + l];
    const float av_x = std::sqrt(sum_x2 / 32);
    for (int l = 0; l < 32; ++l) weights[l] = av_x + std::fabs(x[32 * j + l]);
    scales[j] = scale_min_levels(32, nmax, x + 32 * j, weights, L + 32 * j, &mins[j], Laux, rmin, 0.1f, nstep);
    max_scale = std::max(max_scale, scales[j]);
    max_min = std::max(max_min, mins[j]);
  }
  std::uint8_t* sc = y + 4;
  std::memset(sc, 0, 12);
  const float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
  const float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
  for (int j = 0; j < 8; ++j) {
    const auto ls = std::min<std::uint8_t>(63, static_cast<std::uint8_t>(nearest_int(inv_scale * scales[j])));
    const auto lm = std::min<std::uint8_t>(63, static_cast<std::uint8_t>(nearest_int(inv_min * mins[j])));
    if (j < 4) {
      sc[j] = ls;
      sc[j + 4] = lm;
    } else {
      sc[j + 4] = static_cast<std::uint8_t>((ls & 0xF) | ((lm & 0xF) << 4));
      sc[j - 4] |= static_cast<std::uint8_t>((ls >> 4) << 6);
      sc[j - 0] |= static_cast<std::uint8_t>((lm >> 4) << 6);
    }
  }
  store_u16(y, fp32_to_fp16(max_scale / 63.f));
  store_u16(y + 2, fp32_to_fp16(max_min / 63.f));
  for (int j = 0; j < 8; ++j) {
    std::uint8_t s, m;
    k4_scale_min(j, sc, s, m);
    const float d = load_half(y) * s;
    if (!d) continue;
    const float dm = load_half(y + 2) * m;
    for (int ii = 0; ii < 32; ++ii)
      L[32 * j + ii] = static_cast<std::uint8_t>(std::clamp(nearest_int((x[32 * j + ii] + dm) / d), 0, nmax));
  }
}

}  // namespace

void q2_k(const float* x, std::uint8_t* y, std::int64_t n) {
  std::uint8_t L[kQK], Laux[16];
  float weights[16], mins[16], scales[16];
  constexpr float q4scale = 15.f;
  for (std::int64_t i = 0; i < n / kQK; ++i, x += kQK, y += 84) {
    std::uint8_t* sc = y;
    std::uint8_t* qs = y + 16;
    float max_scale = 0, max_min = 0;
    for (int j = 0; j < 16; ++j) {
      for (int l = 0; l < 16; ++l) weights[l] = std::fabs(x[16 * j + l]);
      scales[j] = scale_min_levels(16, 3, x + 16 * j, weights, L + 16 * j, &mins[j], Laux, -0.5f, 0.1f, 15, true);
      max_scale = std::max(max_scale, scales[j]);
      max_min = std::max(max_min, mins[j]);
    }
    if (max_scale > 0) {
      const float iscale = q4scale / max_scale;
      for (int j = 0; j < 16; ++j) sc[j] = static_cast<std::uint8_t>(nearest_int(iscale * scales[j]));
      store_u16(y + 80, fp32_to_fp16(max_scale / q4scale));
    } else {
      std::memset(sc, 0, 16);
      store_u16(y + 80, fp32_to_fp16(0.f));
    }
    if (max_min > 0) {
      const float iscale = q4scale / max_min;
      for (int j = 0; j < 16; ++j) sc[j] = static_cast<std::uint8_t>(sc[j] | (nearest_int(iscale * mins[j]) << 4));
      store_u16(y + 82, fp32_to_fp16(max_min / q4scale));
    } else {
      store_u16(y + 82, fp32_to_fp16(0.f));
    }
    for (int j = 0; j < 16; ++j) {
      const float d = load_half(y + 80) * (sc[j] & 0xF);
      if (!d) continue;
      const float dm = load_half(y + 82) * (sc[j] >> 4);
      for (int ii = 0; ii < 16; ++ii)
        L[16 * j + ii] = static_cast<std::uint8_t>(std::clamp(nearest_int((x[16 * j + ii] + dm) / d), 0, 3));
    }
    for (int j = 0; j < kQK; j += 128)
      for (int l = 0; l < 32; ++l)
        qs[j / 4 + l] = static_cast<std::uint8_t>(L[j + l] | (L[j + l + 32] << 2) | (L[j + l + 64] << 4) | (L[j + l + 96] << 6));
  }
}

void q3_k(const float* x, std::uint8_t* y, std::int64_t n) {
  std::int8_t L[kQK];
  float scales[16];
  for (std::int64_t i = 0; i < n / kQK; ++i, x += kQK, y += 110) {
    std::uint8_t* hmask = y;
    std::uint8_t* qs = y + 32;
    std::uint8_t* sc = y + 96;
    float max_scale = 0, amax = 0;
    for (int j = 0; j < 16; ++j) {
      scales[j] = q3_levels(16, 4, x + 16 * j, L + 16 * j);
      if (std::fabs(scales[j]) > amax) {
        amax = std::fabs(scales[j]);
        max_scale = scales[j];
      }
    }
    std::memset(sc, 0, 12);
    if (max_scale) {
      const float iscale = -32.f / max_scale;
      for (int j = 0; j < 16; ++j) {
        auto l = static_cast<std::int8_t>(nearest_int(iscale * scales[j]));
        l = static_cast<std::int8_t>(std::clamp<int>(l, -32, 31) + 32);
        if (j < 8) sc[j] = static_cast<std::uint8_t>(l & 0xF);
        else sc[j - 8] = static_cast<std::uint8_t>(sc[j - 8] | ((l & 0xF) << 4));
        l = static_cast<std::int8_t>(l >> 4);
        sc[j % 4 + 8] = static_cast<std::uint8_t>(sc[j % 4 + 8] | (l << (2 * (j / 4))));
      }
      store_u16(y + 108, fp32_to_fp16(1 / iscale));
    } else {
      store_u16(y + 108, fp32_to_fp16(0.f));
    }
    for (int j = 0; j < 16; ++j) {
      int s = j < 8 ? sc[j] & 0xF : sc[j - 8] >> 4;
      s = (s | (((sc[8 + j % 4] >> (2 * (j / 4))) & 3) << 4)) - 32;
      const float d = load_half(y + 108) * static_cast<std::int8_t>(s);
      if (!d) continue;
      for (int ii = 0; ii < 16; ++ii)
        L[16 * j + ii] = static_cast<std::int8_t>(std::clamp(nearest_int(x[16 * j + ii] / d), -4, 3) + 4);
    }
    std::memset(hmask, 0, 32);
    int m = 0;
    std::uint8_t hm = 1;
    for (int j = 0; j < kQK; ++j) {
      if (L[j] > 3) {
        hmask[m] |= hm;
        L[j] = static_cast<std::int8_t>(L[j] - 4);
      }
      if (++m == 32) {
        m = 0;
        hm = static_cast<std::uint8_t>(hm << 1);
      }
    }
    for (int j = 0; j < kQK; j += 128)
      for (int l = 0; l < 32; ++l)
        qs[j / 4 + l] = static_cast<std::uint8_t>(L[j + l] | (L[j + l + 32] << 2) | (L[j + l + 64] << 4) | (L[j + l + 96] << 6));
  }
}

void iq4_nl(const float* x, std::uint8_t* y, std::int64_t n) {
  for (std::int64_t i = 0; i < n / 32; ++i, x += 32, y += 18) iq4_block(32, x, y, y + 2, nullptr, nullptr);
}

void iq4_xs(const float* x, std::uint8_t* y, std::int64_t n) {
  for (std::int64_t i = 0; i < n / kQK; ++i, x += kQK, y += 136) iq4_block(kQK, x, y, y + 8, y + 2, y + 4);
}

void q4_k(const float* x, std::uint8_t* y, std::int64_t n) {
  std::uint8_t L[kQK];
  for (std::int64_t i = 0; i < n / kQK; ++i, x += kQK, y += 144) {
    scale_min_block(x, y, L, 15, -1.f, 20);
    std::uint8_t* q = y + 16;
    for (int j = 0; j < kQK; j += 64, q += 32)
      for (int l = 0; l < 32; ++l) q[l] = static_cast<std::uint8_t>(L[j + l] | (L[j + l + 32] << 4));
  }
}

void q5_k(const float* x, std::uint8_t* y, std::int64_t n) {
  std::uint8_t L[kQK];
  for (std::int64_t i = 0; i < n / kQK; ++i, x += kQK, y += 176) {
    scale_min_block(x, y, L, 31, -0.5f, 15);
    std::uint8_t* qh = y + 16;
    std::uint8_t* ql = y + 48;
    std::memset(qh, 0, 32);
    std::uint8_t m1 = 1, m2 = 2;
    for (int b = 0; b < kQK; b += 64, ql += 32) {
      for (int j = 0; j < 32; ++j) {
        int l1 = L[b + j], l2 = L[b + j + 32];
        if (l1 > 15) l1 -= 16, qh[j] |= m1;
        if (l2 > 15) l2 -= 16, qh[j] |= m2;
        ql[j] = static_cast<std::uint8_t>(l1 | (l2 << 4));
      }
      m1 = static_cast<std::uint8_t>(m1 << 2);
      m2 = static_cast<std::uint8_t>(m2 << 2);
    }
  }
}

void q6_k(const float* x, std::uint8_t* y, std::int64_t n) {
  std::int8_t L[kQK];
  float scales[16];
  for (std::int64_t i = 0; i < n / kQK; ++i, x += kQK, y += 210) {
    std::uint8_t* ql = y;
    std::uint8_t* qh = y + 128;
    auto* sc = reinterpret_cast<std::int8_t*>(y + 192);
    float max_scale = 0, max_abs_scale = 0;
    for (int ib = 0; ib < 16; ++ib) {
      scales[ib] = symmetric_levels(16, 32, x + 16 * ib, L + 16 * ib);
      if (std::fabs(scales[ib]) > max_abs_scale) {
        max_abs_scale = std::fabs(scales[ib]);
        max_scale = scales[ib];
      }
    }
    if (max_abs_scale < kGroupMaxEps) {
      std::memset(y, 0, 210);
      continue;
    }
    const float iscale = -128.f / max_scale;
    store_u16(y + 208, fp32_to_fp16(1 / iscale));
    for (int ib = 0; ib < 16; ++ib) sc[ib] = static_cast<std::int8_t>(std::min(127, nearest_int(iscale * scales[ib])));
    for (int j = 0; j < 16; ++j) {
      const float d = load_half(y + 208) * sc[j];
      if (!d) continue;
      for (int ii = 0; ii < 16; ++ii)
        L[16 * j + ii] = static_cast<std::int8_t>(std::clamp(nearest_int(x[16 * j + ii] / d), -32, 31) + 32);
    }
    for (int j = 0; j < kQK; j += 128, ql += 64, qh += 32) {
      for (int l = 0; l < 32; ++l) {
        const auto q1 = static_cast<std::uint8_t>(L[j + l + 0] & 0xF), q2 = static_cast<std::uint8_t>(L[j + l + 32] & 0xF);
        const auto q3 = static_cast<std::uint8_t>(L[j + l + 64] & 0xF), q4 = static_cast<std::uint8_t>(L[j + l + 96] & 0xF);
        ql[l + 0] = static_cast<std::uint8_t>(q1 | (q3 << 4));
        ql[l + 32] = static_cast<std::uint8_t>(q2 | (q4 << 4));
        qh[l] = static_cast<std::uint8_t>((L[j + l] >> 4) | ((L[j + l + 32] >> 4) << 2) | ((L[j + l + 64] >> 4) << 4) |
                                          ((L[j + l + 96] >> 4) << 6));
      }
    }
  }
}

}  // namespace aero::quant::encode
