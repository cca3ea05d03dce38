#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstring>

#include "quant/encode.h"
#include "quant/half.h"

namespace aero::quant::encode {
namespace {

constexpr int kQK = 32;

inline void store_u16(std::uint8_t* p, std::uint16_t v) { std::memcpy(p, &v, 2); }

// The signed value of largest magnitude in a block (the first one on ties).
inline float signed_absmax(const float* x) {
  float amax = 0.0f, max = 0.0f;
  for (int j = 0; j < kQK; ++j)
    if (amax < std::fabs(x[j])) {
      amax = std::fabs(x[j]);
      max = x[j];
    }
  return max;
}

inline void min_max(const float* x, float& min, float& max) {
  min = FLT_MAX;
  max = -FLT_MAX;
  for (int j = 0; j < kQK; ++j) {
    if (x[j] < min) min = x[j];
    if (x[j] > max) max = x[j];
  }
}

}  // namespace

void q4_0(const float* x, std::uint8_t* y, std::int64_t n) {
  for (std::int64_t i = 0; i < n / kQK; ++i, x += kQK, y += 18) {
    const float d = signed_absmax(x) / -8;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    store_u16(y, fp32_to_fp16(d));
    for (int j = 0; j < 16; ++j) {
      const float x0 = x[j] * id, x1 = x[16 + j] * id;
      const auto q0 = static_cast<std::uint8_t>(std::min(15, static_cast<int>(static_cast<std::int8_t>(x0 + 8.5f))));
      const auto q1 = static_cast<std::uint8_t>(std::min(15, static_cast<int>(static_cast<std::int8_t>(x1 + 8.5f))));
      y[2 + j] = static_cast<std::uint8_t>(q0 | (q1 << 4));
    }
  }
}

void q4_1(const float* x, std::uint8_t* y, std::int64_t n) {
  for (std::int64_t i = 0; i < n / kQK; ++i, x += kQK, y += 20) {
    float min, max;
    min_max(x, min, max);
    const float d = (max - min) / ((1 << 4) - 1);
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    store_u16(y, fp32_to_fp16(d));
    store_u16(y + 2, fp32_to_fp16(min));
    for (int j = 0; j < 16; ++j) {
      const float x0 = (x[j] - min) * id, x1 = (x[16 + j] - min) * id;
      const auto q0 = static_cast<std::uint8_t>(std::min(15, static_cast<int>(static_cast<std::int8_t>(x0 + 0.5f))));
      const auto q1 = static_cast<std::uint8_t>(std::min(15, static_cast<int>(static_cast<std::int8_t>(x1 + 0.5f))));
      y[4 + j] = static_cast<std::uint8_t>(q0 | (q1 << 4));
    }
  }
}

void q5_0(const float* x, std::uint8_t* y, std::int64_t n) {
  for (std::int64_t i = 0; i < n / kQK; ++i, x += kQK, y += 22) {
    const float d = signed_absmax(x) / -16;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    store_u16(y, fp32_to_fp16(d));
    std::uint32_t qh = 0;
    for (int j = 0; j < 16; ++j) {
      const float x0 = x[j] * id, x1 = x[16 + j] * id;
      const auto q0 = static_cast<std::uint8_t>(std::min(31, static_cast<int>(static_cast<std::int8_t>(x0 + 16.5f))));
      const auto q1 = static_cast<std::uint8_t>(std::min(31, static_cast<int>(static_cast<std::int8_t>(x1 + 16.5f))));
      y[6 + j] = static_cast<std::uint8_t>((q0 & 0x0F) | ((q1 & 0x0F) << 4));
      qh |= ((q0 & 0x10u) >> 4) << j;
      qh |= ((q1 & 0x10u) >> 4) << (j + 16);
    }
    std::memcpy(y + 2, &qh, 4);
  }
}

void q5_1(const float* x, std::uint8_t* y, std::int64_t n) {
  for (std::int64_t i = 0; i < n / kQK; ++i, x += kQK, y += 24) {
    float min, max;
    min_max(x, min, max);
    const float d = (max - min) / ((1 << 5) - 1);
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    store_u16(y, fp32_to_fp16(d));
    store_u16(y + 2, fp32_to_fp16(min));
    std::uint32_t qh = 0;
    for (int j = 0; j < 16; ++j) {
      const float x0 = (x[j] - min) * id, x1 = (x[16 + j] - min) * id;
      const auto q0 = static_cast<std::uint8_t>(x0 + 0.5f);
      const auto q1 = static_cast<std::uint8_t>(x1 + 0.5f);
      y[8 + j] = static_cast<std::uint8_t>((q0 & 0x0F) | ((q1 & 0x0F) << 4));
      qh |= ((q0 & 0x10u) >> 4) << j;
      qh |= ((q1 & 0x10u) >> 4) << (j + 16);
    }
    std::memcpy(y + 4, &qh, 4);
  }
}

void q8_0(const float* x, std::uint8_t* y, std::int64_t n) {
  for (std::int64_t i = 0; i < n / kQK; ++i, x += kQK, y += 34) {
    float amax = 0.0f;
    for (int j = 0; j < kQK; ++j) amax = std::max(amax, std::fabs(x[j]));
    const float d = amax / ((1 << 7) - 1);
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    store_u16(y, fp32_to_fp16(d));
    for (int j = 0; j < kQK; ++j) y[2 + j] = static_cast<std::uint8_t>(static_cast<std::int8_t>(std::round(x[j] * id)));
  }
}

void q8_k(const float* x, std::uint8_t* y, std::int64_t n) {
  for (std::int64_t i = 0; i < n / 256; ++i, x += 256, y += 292) {
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < 256; ++j)
      if (std::fabs(x[j]) > amax) {
        amax = std::fabs(x[j]);
        max = x[j];
      }
    std::memset(y, 0, 292);
    if (amax == 0.0f) continue;
    const float iscale = -127.0f / max;
    auto* qs = reinterpret_cast<std::int8_t*>(y + 4);
    for (int j = 0; j < 256; ++j) qs[j] = static_cast<std::int8_t>(std::min(127, static_cast<int>(std::nearbyint(iscale * x[j]))));
    for (int g = 0; g < 16; ++g) {
      std::int16_t sum = 0;
      for (int j = 0; j < 16; ++j) sum = static_cast<std::int16_t>(sum + qs[16 * g + j]);
      std::memcpy(y + 260 + 2 * g, &sum, 2);
    }
    const float d = 1 / iscale;
    std::memcpy(y, &d, 4);
  }
}

}  // namespace aero::quant::encode
