// Decoders of the code-book formats IQ2_XXS, IQ2_XS, IQ2_S, IQ3_XXS, IQ3_S, IQ1_S and IQ1_M:
// each group of 4 or 8 weights is one point of a fixed grid (iq_grids.cpp), with a sign per
// weight and a scale per 16 or 32 weights. Same float operations, in the same order, as ggml's
// and gguf-py's dequantizers (compiled without contraction), so the output is bit-exact.
// Block layouts (bytes, in order) are written beside each decoder.
#include <array>
#include <bit>

#include "quant/decode.h"
#include "quant/half.h"
#include "quant/iq_grids.h"

namespace aero::quant::decode {
namespace {

constexpr int kQK_K = 256;

// A grid expanded to one float per coordinate, built once from its packed form.
template <int N, int Dim>
struct Grid {
  std::array<float, N * Dim> v;
  const float* operator[](unsigned i) const { return v.data() + i * Dim; }
};

template <int N, int Dim, int Bits>
Grid<N, Dim> expand(const std::uint16_t (&packed)[N], const float* levels) {
  Grid<N, Dim> g;
  for (int e = 0; e < N; ++e)
    for (int k = 0; k < Dim; ++k) g.v[e * Dim + k] = levels[(packed[e] >> (Bits * k)) & ((1 << Bits) - 1)];
  return g;
}

constexpr float kLevels2[3] = {8, 25, 43};  // IQ2_*
constexpr float kLevels1[3] = {-1, 0, 1};   // IQ1_*
constexpr float kLevels3xxs[8] = {4, 12, 20, 28, 36, 44, 52, 62};
constexpr float kLevels3s[8] = {1, 3, 5, 7, 9, 11, 13, 15};

const auto& iq2xxs_grid() { static const auto g = expand<256, 8, 2>(iq::kIq2XxsGrid, kLevels2); return g; }
const auto& iq2xs_grid() { static const auto g = expand<512, 8, 2>(iq::kIq2XsGrid, kLevels2); return g; }
const auto& iq2s_grid() { static const auto g = expand<1024, 8, 2>(iq::kIq2SGrid, kLevels2); return g; }
const auto& iq3xxs_grid() { static const auto g = expand<256, 4, 3>(iq::kIq3XxsGrid, kLevels3xxs); return g; }
const auto& iq3s_grid() { static const auto g = expand<512, 4, 3>(iq::kIq3SGrid, kLevels3s); return g; }
const auto& iq1s_grid() { static const auto g = expand<2048, 8, 2>(iq::kIq1SGrid, kLevels1); return g; }

// Seven stored sign bits per 8 weights; the eighth makes the count of minus signs even.
inline unsigned full_signs(unsigned seven) { return seven | (std::popcount(seven) & 1u) << 7; }

inline float sign(unsigned bits, int k) { return (bits >> k) & 1 ? -1.0f : 1.0f; }

inline std::uint32_t load_u32(const std::uint8_t* p) {
  return static_cast<std::uint32_t>(load_u16(p)) | static_cast<std::uint32_t>(load_u16(p + 2)) << 16;
}

// y[k] = db * grid[k] * ±1 for the 8 weights of one point.
inline void put8(float* y, float db, const float* grid, unsigned signs) {
  for (int k = 0; k < 8; ++k) y[k] = db * grid[k] * sign(signs, k);
}

// The same for two 4-weight points (the IQ3 grids) sharing one byte of signs.
inline void put4x2(float* y, float db, const float* g1, const float* g2, unsigned signs) {
  for (int k = 0; k < 4; ++k) {
    y[k] = db * g1[k] * sign(signs, k);
    y[k + 4] = db * g2[k] * sign(signs, k + 4);
  }
}

// y[k] = dl * (grid[k] + delta): the IQ1 points, shifted by ±1/8.
inline void put8_shifted(float* y, float dl, const float* grid, float delta) {
  for (int k = 0; k < 8; ++k) y[k] = dl * (grid[k] + delta);
}

}  // namespace

// IQ2_XXS: d f16 · 8 × (4 grid indices u8, then u32: 4 × 7 sign bits, 4-bit scale)
void iq2_xxs(const std::uint8_t* b, float* y, std::int64_t n) {
  const auto& grid = iq2xxs_grid();
  for (std::int64_t i = 0; i < n / kQK_K; ++i, b += 66) {
    const float d = fp16_to_fp32(load_u16(b));
    for (int ib = 0; ib < 8; ++ib) {
      const std::uint8_t* q = b + 2 + 8 * ib;
      const std::uint32_t aux = load_u32(q + 4);
      const float db = d * (0.5f + static_cast<float>(aux >> 28)) * 0.25f;
      for (int l = 0; l < 4; ++l, y += 8) put8(y, db, grid[q[l]], full_signs((aux >> 7 * l) & 127));
    }
  }
}

// IQ2_XS: d f16 · qs u16[32] (9-bit grid index, 7 sign bits) · scales[8] (two 4-bit per byte)
void iq2_xs(const std::uint8_t* b, float* y, std::int64_t n) {
  const auto& grid = iq2xs_grid();
  for (std::int64_t i = 0; i < n / kQK_K; ++i, b += 74) {
    const float d = fp16_to_fp32(load_u16(b));
    const std::uint8_t* scales = b + 66;
    for (int j = 0; j < 32; ++j, y += 8) {
      const std::uint16_t q = load_u16(b + 2 + 2 * j);
      const float db = d * (0.5f + static_cast<float>((scales[j / 4] >> 4 * (j / 2 % 2)) & 0xf)) * 0.25f;
      put8(y, db, grid[q & 511], full_signs(q >> 9));
    }
  }
}

// IQ2_S: d f16 · qs[32] (grid index low bits) · signs[32] · qh[8] (2 high index bits each) ·
// scales[8]
void iq2_s(const std::uint8_t* b, float* y, std::int64_t n) {
  const auto& grid = iq2s_grid();
  for (std::int64_t i = 0; i < n / kQK_K; ++i, b += 82) {
    const float d = fp16_to_fp32(load_u16(b));
    const std::uint8_t* qs = b + 2;
    const std::uint8_t* signs = b + 34;
    const std::uint8_t* qh = b + 66;
    const std::uint8_t* scales = b + 74;
    for (int j = 0; j < 32; ++j, y += 8) {
      const unsigned index = qs[j] | ((qh[j / 4] >> 2 * (j % 4)) & 3u) << 8;
      const float db = d * (0.5f + static_cast<float>((scales[j / 4] >> 4 * (j / 2 % 2)) & 0xf)) * 0.25f;
      put8(y, db, grid[index], signs[j]);
    }
  }
}

// IQ3_XXS: d f16 · qs[64] (grid indices, 4 weights each) · 8 × u32 (4 × 7 sign bits, 4-bit scale)
void iq3_xxs(const std::uint8_t* b, float* y, std::int64_t n) {
  const auto& grid = iq3xxs_grid();
  for (std::int64_t i = 0; i < n / kQK_K; ++i, b += 98) {
    const float d = fp16_to_fp32(load_u16(b));
    const std::uint8_t* qs = b + 2;
    for (int ib = 0; ib < 8; ++ib) {
      const std::uint32_t aux = load_u32(b + 66 + 4 * ib);
      const float db = d * (0.5f + static_cast<float>(aux >> 28)) * 0.5f;
      for (int l = 0; l < 4; ++l, y += 8) {
        put4x2(y, db, grid[qs[8 * ib + 2 * l]], grid[qs[8 * ib + 2 * l + 1]], full_signs((aux >> 7 * l) & 127));
      }
    }
  }
}

// IQ3_S: d f16 · qs[64] (grid index low bits) · qh[8] (ninth index bit) · signs[32] · scales[4]
void iq3_s(const std::uint8_t* b, float* y, std::int64_t n) {
  const auto& grid = iq3s_grid();
  for (std::int64_t i = 0; i < n / kQK_K; ++i, b += 110) {
    const float d = fp16_to_fp32(load_u16(b));
    const std::uint8_t* qs = b + 2;
    const std::uint8_t* qh = b + 66;
    const std::uint8_t* signs = b + 74;
    const std::uint8_t* scales = b + 106;
    for (int ib = 0; ib < 8; ++ib) {
      const float db = d * static_cast<float>(1 + 2 * ((scales[ib / 2] >> 4 * (ib % 2)) & 0xf));
      for (int l = 0; l < 4; ++l, y += 8) {
        const int j = 8 * ib + 2 * l;  // index of the first of this group's two grid points
        const float* g1 = grid[qs[j] | ((qh[j / 8] >> j % 8) & 1u) << 8];
        const float* g2 = grid[qs[j + 1] | ((qh[(j + 1) / 8] >> (j + 1) % 8) & 1u) << 8];
        put4x2(y, db, g1, g2, signs[4 * ib + l]);
      }
    }
  }
}

// IQ1_S: d f16 · qs[32] (grid index low bits) · qh u16[8] (3 high bits × 4, 3-bit scale, delta sign)
void iq1_s(const std::uint8_t* b, float* y, std::int64_t n) {
  const auto& grid = iq1s_grid();
  for (std::int64_t i = 0; i < n / kQK_K; ++i, b += 50) {
    const float d = fp16_to_fp32(load_u16(b));
    const std::uint8_t* qs = b + 2;
    for (int ib = 0; ib < 8; ++ib) {
      const std::uint16_t qh = load_u16(b + 34 + 2 * ib);
      const float dl = d * static_cast<float>(2 * ((qh >> 12) & 7) + 1);
      const float delta = qh & 0x8000 ? -0.125f : 0.125f;
      for (int l = 0; l < 4; ++l, y += 8) {
        put8_shifted(y, dl, grid[qs[4 * ib + l] | ((qh >> 3 * l) & 7u) << 8], delta);
      }
    }
  }
}

// IQ1_M: qs[32] (grid index low bits) · qh[16] (per nibble: 3 high bits, delta sign) ·
// scales u16[4] (3-bit scales; their top nibbles together hold d f16)
void iq1_m(const std::uint8_t* b, float* y, std::int64_t n) {
  const auto& grid = iq1s_grid();
  for (std::int64_t i = 0; i < n / kQK_K; ++i, b += 56) {
    const std::uint8_t* qs = b;
    const std::uint8_t* qh = b + 32;
    std::uint16_t sc[4];
    for (int k = 0; k < 4; ++k) sc[k] = load_u16(b + 48 + 2 * k);
    const std::uint16_t d16 = (sc[0] >> 12) | ((sc[1] >> 8) & 0x00f0) | ((sc[2] >> 4) & 0x0f00) | (sc[3] & 0xf000);
    const float d = fp16_to_fp32(d16);
    for (int ib = 0; ib < 8; ++ib) {
      for (int h = 0; h < 2; ++h) {
        const int s = 2 * ib + h;  // 3-bit scale s of 16
        const float dl = d * static_cast<float>(2 * ((sc[s / 4] >> 3 * (s % 4)) & 7) + 1);
        for (int l = 0; l < 2; ++l, y += 8) {
          const int j = 4 * ib + 2 * h + l;  // group of 8 weights
          const unsigned nibble = (qh[j / 2] >> 4 * (j % 2)) & 0xf;
          put8_shifted(y, dl, grid[qs[j] | (nibble & 7u) << 8], nibble & 8 ? -0.125f : 0.125f);
        }
      }
    }
  }
}

}  // namespace aero::quant::decode
