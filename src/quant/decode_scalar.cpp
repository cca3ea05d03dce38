// Block layouts (bytes, in order) are written beside each decoder; they are ggml's.
#include <bit>
#include <cstring>

#include "quant/decode.h"
#include "quant/half.h"
#include "quant/k_scales.h"

namespace aero::quant::decode {
namespace {

constexpr int kQK = 32;    // elements per legacy block
constexpr int kQK_K = 256;  // elements per K / IQ / TQ super-block

// MXFP4's shared E8M0 exponent, halved (the value table above is doubled).
inline float e8m0_to_fp32_half(std::uint8_t x) {
  const std::uint32_t bits = x < 2 ? 0x00200000u << x : static_cast<std::uint32_t>(x - 1) << 23;
  return std::bit_cast<float>(bits);
}

}  // namespace

void f32(const std::uint8_t* b, float* y, std::int64_t n) { std::memcpy(y, b, static_cast<std::size_t>(n) * 4); }

void f16(const std::uint8_t* b, float* y, std::int64_t n) {
  for (std::int64_t i = 0; i < n; ++i) y[i] = fp16_to_fp32(load_u16(b + 2 * i));
}

void bf16(const std::uint8_t* b, float* y, std::int64_t n) {
  for (std::int64_t i = 0; i < n; ++i) y[i] = bf16_to_fp32(load_u16(b + 2 * i));
}

// Q4_0: d f16 · qs[16] (low nibbles are elements 0..15, high nibbles 16..31)
void q4_0(const std::uint8_t* b, float* y, std::int64_t n) {
  for (std::int64_t i = 0; i < n / kQK; ++i, b += 18, y += kQK) {
    const float d = fp16_to_fp32(load_u16(b));
    const std::uint8_t* qs = b + 2;
    for (int j = 0; j < 16; ++j) {
      y[j] = static_cast<float>((qs[j] & 0x0F) - 8) * d;
      y[j + 16] = static_cast<float>((qs[j] >> 4) - 8) * d;
    }
  }
}

// Q4_1: d f16 · m f16 · qs[16]
void q4_1(const std::uint8_t* b, float* y, std::int64_t n) {
  for (std::int64_t i = 0; i < n / kQK; ++i, b += 20, y += kQK) {
    const float d = fp16_to_fp32(load_u16(b)), m = fp16_to_fp32(load_u16(b + 2));
    const std::uint8_t* qs = b + 4;
    for (int j = 0; j < 16; ++j) {
      y[j] = static_cast<float>(qs[j] & 0x0F) * d + m;
      y[j + 16] = static_cast<float>(qs[j] >> 4) * d + m;
    }
  }
}

// Q5_0: d f16 · qh u32 (fifth bits) · qs[16]
void q5_0(const std::uint8_t* b, float* y, std::int64_t n) {
  for (std::int64_t i = 0; i < n / kQK; ++i, b += 22, y += kQK) {
    const float d = fp16_to_fp32(load_u16(b));
    std::uint32_t qh;
    std::memcpy(&qh, b + 2, 4);
    const std::uint8_t* qs = b + 6;
    for (int j = 0; j < 16; ++j) {
      const std::uint8_t h0 = static_cast<std::uint8_t>(((qh >> j) << 4) & 0x10);
      const std::uint8_t h1 = static_cast<std::uint8_t>((qh >> (j + 12)) & 0x10);
      y[j] = static_cast<float>(((qs[j] & 0x0F) | h0) - 16) * d;
      y[j + 16] = static_cast<float>(((qs[j] >> 4) | h1) - 16) * d;
    }
  }
}

// Q5_1: d f16 · m f16 · qh u32 · qs[16]
void q5_1(const std::uint8_t* b, float* y, std::int64_t n) {
  for (std::int64_t i = 0; i < n / kQK; ++i, b += 24, y += kQK) {
    const float d = fp16_to_fp32(load_u16(b)), m = fp16_to_fp32(load_u16(b + 2));
    std::uint32_t qh;
    std::memcpy(&qh, b + 4, 4);
    const std::uint8_t* qs = b + 8;
    for (int j = 0; j < 16; ++j) {
      const std::uint8_t h0 = static_cast<std::uint8_t>(((qh >> j) << 4) & 0x10);
      const std::uint8_t h1 = static_cast<std::uint8_t>((qh >> (j + 12)) & 0x10);
      y[j] = static_cast<float>((qs[j] & 0x0F) | h0) * d + m;
      y[j + 16] = static_cast<float>((qs[j] >> 4) | h1) * d + m;
    }
  }
}

// Q8_0: d f16 · qs[32] int8
void q8_0(const std::uint8_t* b, float* y, std::int64_t n) {
  for (std::int64_t i = 0; i < n / kQK; ++i, b += 34, y += kQK) {
    const float d = fp16_to_fp32(load_u16(b));
    for (int j = 0; j < kQK; ++j) y[j] = static_cast<float>(static_cast<std::int8_t>(b[2 + j])) * d;
  }
}

// Q8_1: d f16 · s f16 (d times the sum of qs) · qs[32] int8
void q8_1(const std::uint8_t* b, float* y, std::int64_t n) {
  for (std::int64_t i = 0; i < n / kQK; ++i, b += 36, y += kQK) {
    const float d = fp16_to_fp32(load_u16(b));
    for (int j = 0; j < kQK; ++j) y[j] = static_cast<float>(static_cast<std::int8_t>(b[4 + j])) * d;
  }
}

// Q2_K: scales[16] (4-bit scale | 4-bit min) · qs[64] · d f16 · dmin f16
void q2_k(const std::uint8_t* b, float* y, std::int64_t n) {
  for (std::int64_t i = 0; i < n / kQK_K; ++i, b += 84) {
    const std::uint8_t* scales = b;
    const std::uint8_t* q = b + 16;
    const float d = fp16_to_fp32(load_u16(b + 80)), min = fp16_to_fp32(load_u16(b + 82));
    int is = 0;
    for (int half = 0; half < 2; ++half, q += 32) {
      for (int shift = 0; shift < 8; shift += 2) {
        for (int part = 0; part < 2; ++part) {
          const std::uint8_t sc = scales[is++];
          const float dl = d * static_cast<float>(sc & 0xF), ml = min * static_cast<float>(sc >> 4);
          for (int l = 0; l < 16; ++l) *y++ = dl * static_cast<float>((q[l + 16 * part] >> shift) & 3) - ml;
        }
      }
    }
  }
}

// Q3_K: hmask[32] · qs[64] · scales[12] (sixteen 6-bit scales) · d f16
void q3_k(const std::uint8_t* b, float* y, std::int64_t n) {
  for (std::int64_t i = 0; i < n / kQK_K; ++i, b += 110) {
    const std::uint8_t* hm = b;
    const std::uint8_t* q = b + 32;
    const float d_all = fp16_to_fp32(load_u16(b + 108));
    std::int8_t scales[16];
    const auto words = quant::k3_scale_words(b + 96);
    std::memcpy(scales, words.data(), 16);
    int is = 0;
    std::uint8_t m = 1;
    for (int half = 0; half < 2; ++half, q += 32) {
      for (int shift = 0; shift < 8; shift += 2, m = static_cast<std::uint8_t>(m << 1)) {
        for (int part = 0; part < 2; ++part) {
          const float dl = d_all * static_cast<float>(scales[is++] - 32);
          for (int l = 16 * part; l < 16 * part + 16; ++l)
            *y++ = dl * static_cast<float>(static_cast<std::int8_t>((q[l] >> shift) & 3) - ((hm[l] & m) ? 0 : 4));
        }
      }
    }
  }
}

// Q4_K: d f16 · dmin f16 · scales[12] (eight 6-bit scales and mins) · qs[128]
void q4_k(const std::uint8_t* b, float* y, std::int64_t n) {
  for (std::int64_t i = 0; i < n / kQK_K; ++i, b += 144) {
    const float d = fp16_to_fp32(load_u16(b)), min = fp16_to_fp32(load_u16(b + 2));
    const std::uint8_t* scales = b + 4;
    const std::uint8_t* q = b + 16;
    for (int is = 0; is < 8; is += 2, q += 32) {
      std::uint8_t sc, m;
      k4_scale_min(is, scales, sc, m);
      const float d1 = d * static_cast<float>(sc), m1 = min * static_cast<float>(m);
      k4_scale_min(is + 1, scales, sc, m);
      const float d2 = d * static_cast<float>(sc), m2 = min * static_cast<float>(m);
      for (int l = 0; l < 32; ++l) *y++ = d1 * static_cast<float>(q[l] & 0xF) - m1;
      for (int l = 0; l < 32; ++l) *y++ = d2 * static_cast<float>(q[l] >> 4) - m2;
    }
  }
}

// Q5_K: d f16 · dmin f16 · scales[12] · qh[32] · qs[128]
void q5_k(const std::uint8_t* b, float* y, std::int64_t n) {
  for (std::int64_t i = 0; i < n / kQK_K; ++i, b += 176) {
    const float d = fp16_to_fp32(load_u16(b)), min = fp16_to_fp32(load_u16(b + 2));
    const std::uint8_t* scales = b + 4;
    const std::uint8_t* qh = b + 16;
    const std::uint8_t* ql = b + 48;
    std::uint8_t u1 = 1, u2 = 2;
    for (int is = 0; is < 8; is += 2, ql += 32, u1 = static_cast<std::uint8_t>(u1 << 2), u2 = static_cast<std::uint8_t>(u2 << 2)) {
      std::uint8_t sc, m;
      k4_scale_min(is, scales, sc, m);
      const float d1 = d * static_cast<float>(sc), m1 = min * static_cast<float>(m);
      k4_scale_min(is + 1, scales, sc, m);
      const float d2 = d * static_cast<float>(sc), m2 = min * static_cast<float>(m);
      for (int l = 0; l < 32; ++l) *y++ = d1 * static_cast<float>((ql[l] & 0xF) + (qh[l] & u1 ? 16 : 0)) - m1;
      for (int l = 0; l < 32; ++l) *y++ = d2 * static_cast<float>((ql[l] >> 4) + (qh[l] & u2 ? 16 : 0)) - m2;
    }
  }
}

// Q6_K: ql[128] · qh[64] · scales[16] int8 · d f16
void q6_k(const std::uint8_t* b, float* y, std::int64_t n) {
  for (std::int64_t i = 0; i < n / kQK_K; ++i, b += 210) {
    const std::uint8_t* ql = b;
    const std::uint8_t* qh = b + 128;
    const auto* sc = reinterpret_cast<const std::int8_t*>(b + 192);
    const float d = fp16_to_fp32(load_u16(b + 208));
    for (int half = 0; half < 2; ++half, y += 128, ql += 64, qh += 32, sc += 8) {
      for (int l = 0; l < 32; ++l) {
        const int is = l / 16;
        const auto q1 = static_cast<std::int8_t>(((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32);
        const auto q2 = static_cast<std::int8_t>(((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32);
        const auto q3 = static_cast<std::int8_t>(((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32);
        const auto q4 = static_cast<std::int8_t>(((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32);
        y[l + 0] = d * static_cast<float>(sc[is + 0]) * static_cast<float>(q1);
        y[l + 32] = d * static_cast<float>(sc[is + 2]) * static_cast<float>(q2);
        y[l + 64] = d * static_cast<float>(sc[is + 4]) * static_cast<float>(q3);
        y[l + 96] = d * static_cast<float>(sc[is + 6]) * static_cast<float>(q4);
      }
    }
  }
}

// Q8_K: d f32 · qs[256] int8 · bsums[16] int16
void q8_k(const std::uint8_t* b, float* y, std::int64_t n) {
  for (std::int64_t i = 0; i < n / kQK_K; ++i, b += 292, y += kQK_K) {
    float d;
    std::memcpy(&d, b, 4);
    for (int j = 0; j < kQK_K; ++j) y[j] = d * static_cast<float>(static_cast<std::int8_t>(b[4 + j]));
  }
}

// IQ4_NL: d f16 · qs[16], indices into the non-linear code book
void iq4_nl(const std::uint8_t* b, float* y, std::int64_t n) {
  for (std::int64_t i = 0; i < n / kQK; ++i, b += 18, y += kQK) {
    const float d = fp16_to_fp32(load_u16(b));
    for (int j = 0; j < 16; ++j) {
      y[j] = d * static_cast<float>(kIq4nlValues[b[2 + j] & 0xF]);
      y[j + 16] = d * static_cast<float>(kIq4nlValues[b[2 + j] >> 4]);
    }
  }
}

// IQ4_XS: d f16 · scales_h u16 · scales_l[4] · qs[128]
void iq4_xs(const std::uint8_t* b, float* y, std::int64_t n) {
  for (std::int64_t i = 0; i < n / kQK_K; ++i, b += 136) {
    const float d = fp16_to_fp32(load_u16(b));
    const std::uint16_t scales_h = load_u16(b + 2);
    const std::uint8_t* scales_l = b + 4;
    const std::uint8_t* qs = b + 8;
    for (int ib = 0; ib < kQK_K / 32; ++ib, y += 32, qs += 16) {
      const int ls = ((scales_l[ib / 2] >> 4 * (ib % 2)) & 0xf) | (((scales_h >> 2 * ib) & 3) << 4);
      const float dl = d * static_cast<float>(ls - 32);
      for (int j = 0; j < 16; ++j) {
        y[j] = dl * static_cast<float>(kIq4nlValues[qs[j] & 0xf]);
        y[j + 16] = dl * static_cast<float>(kIq4nlValues[qs[j] >> 4]);
      }
    }
  }
}

// TQ1_0: qs[48] (five base-3 digits per byte) · qh[4] (four digits per byte) · d f16
void tq1_0(const std::uint8_t* b, float* y, std::int64_t n) {
  static constexpr std::uint8_t kPow3[6] = {1, 3, 9, 27, 81, 243};
  auto digit = [](std::uint8_t packed, int n) {
    const auto q = static_cast<std::uint8_t>(packed * kPow3[n]);
    return static_cast<std::int16_t>((static_cast<std::uint16_t>(q) * 3) >> 8);
  };
  for (std::int64_t i = 0; i < n / kQK_K; ++i, b += 54) {
    const std::uint8_t* qs = b;
    const std::uint8_t* qh = b + 48;
    const float d = fp16_to_fp32(load_u16(b + 52));
    for (int n5 = 0; n5 < 5; ++n5)
      for (int m = 0; m < 32; ++m) *y++ = static_cast<float>(digit(qs[m], n5) - 1) * d;
    for (int n5 = 0; n5 < 5; ++n5)
      for (int m = 0; m < 16; ++m) *y++ = static_cast<float>(digit(qs[32 + m], n5) - 1) * d;
    for (int n4 = 0; n4 < 4; ++n4)
      for (int j = 0; j < 4; ++j) *y++ = static_cast<float>(digit(qh[j], n4) - 1) * d;
  }
}

// TQ2_0: qs[64] (four 2-bit values per byte) · d f16
void tq2_0(const std::uint8_t* b, float* y, std::int64_t n) {
  for (std::int64_t i = 0; i < n / kQK_K; ++i, b += 66) {
    const float d = fp16_to_fp32(load_u16(b + 64));
    for (int j = 0; j < 64; j += 32)
      for (int l = 0; l < 4; ++l)
        for (int m = 0; m < 32; ++m) *y++ = static_cast<float>(((b[j + m] >> (l * 2)) & 3) - 1) * d;
  }
}

// MXFP4: e (E8M0 shared exponent) · qs[16] (E2M1 codes, low nibbles first)
void mxfp4(const std::uint8_t* b, float* y, std::int64_t n) {
  for (std::int64_t i = 0; i < n / kQK; ++i, b += 17, y += kQK) {
    const float d = e8m0_to_fp32_half(b[0]);
    for (int j = 0; j < 16; ++j) {
      y[j] = static_cast<float>(kMxfp4Values[b[1 + j] & 0xf]) * d;
      y[j + 16] = static_cast<float>(kMxfp4Values[b[1 + j] >> 4]) * d;
    }
  }
}

}  // namespace aero::quant::decode
