// The reference every SIMD kernel is tested against: per block, an exact integer sum, then
// the block's two scales applied in ggml's order.
#include <cstring>

#include "backend/cpu/dot.h"
#include "quant/half.h"
#include "quant/k_scales.h"

namespace aero::backend::cpu {
namespace {

using quant::fp16_to_fp32;
using quant::load_u16;
using quant::k4_scale_min;

float dot_f32(const std::uint8_t* w, const float* x, const std::uint8_t*, std::int64_t n) {
  float sum = 0;
  for (std::int64_t i = 0; i < n; ++i) {
    float v;
    std::memcpy(&v, w + 4 * i, 4);
    sum += v * x[i];
  }
  return sum;
}

float dot_f16(const std::uint8_t* w, const float* x, const std::uint8_t*, std::int64_t n) {
  float sum = 0;
  for (std::int64_t i = 0; i < n; ++i) sum += fp16_to_fp32(load_u16(w + 2 * i)) * x[i];
  return sum;
}

float dot_bf16(const std::uint8_t* w, const float* x, const std::uint8_t*, std::int64_t n) {
  float sum = 0;
  for (std::int64_t i = 0; i < n; ++i) sum += quant::bf16_to_fp32(load_u16(w + 2 * i)) * x[i];
  return sum;
}

float dot_q8_0(const std::uint8_t* w, const float*, const std::uint8_t* xq, std::int64_t n) {
  float sum = 0;
  for (std::int64_t b = 0; b < n / 32; ++b, w += 34, xq += 34) {
    int sumi = 0;
    for (int j = 0; j < 32; ++j) sumi += static_cast<std::int8_t>(w[2 + j]) * static_cast<std::int8_t>(xq[2 + j]);
    sum += static_cast<float>(sumi) * fp16_to_fp32(load_u16(w)) * fp16_to_fp32(load_u16(xq));
  }
  return sum;
}

float dot_q4_0(const std::uint8_t* w, const float*, const std::uint8_t* xq, std::int64_t n) {
  float sum = 0;
  for (std::int64_t b = 0; b < n / 32; ++b, w += 18, xq += 34) {
    int sumi = 0;
    for (int j = 0; j < 16; ++j) {
      sumi += ((w[2 + j] & 0x0F) - 8) * static_cast<std::int8_t>(xq[2 + j]);
      sumi += ((w[2 + j] >> 4) - 8) * static_cast<std::int8_t>(xq[2 + j + 16]);
    }
    sum += static_cast<float>(sumi) * fp16_to_fp32(load_u16(w)) * fp16_to_fp32(load_u16(xq));
  }
  return sum;
}

// Q4_K: eight sub-blocks of 32 with 6-bit scale and min: the integer sums per sub-block are
// scaled by their scale, and the mins meet the activations through Q8_K's group sums.
// Q5_K is Q4_K with a fifth bit per weight: bit j of qh[l] for weight l of sub-block j's
// nibbles (176-byte super-blocks: qh at 16, nibbles at 48).
template <bool kFifth>
float dot_qk(const std::uint8_t* w, const float*, const std::uint8_t* xq, std::int64_t n) {
  constexpr int kBlockBytes = kFifth ? 176 : 144;
  float sum = 0;
  for (std::int64_t b = 0; b < n / 256; ++b, w += kBlockBytes, xq += 292) {
    const std::uint8_t* q = w + kBlockBytes - 128;
    const auto* q8 = reinterpret_cast<const std::int8_t*>(xq + 4);
    std::int32_t sumi = 0, summ = 0;
    for (int j = 0; j < 8; ++j) {
      std::uint8_t sc, m;
      k4_scale_min(j, w + 4, sc, m);
      std::int32_t dot = 0;
      for (int l = 0; l < 32; ++l) {
        int code = (j % 2 == 0) ? (q[32 * (j / 2) + l] & 0xF) : (q[32 * (j / 2) + l] >> 4);
        if (kFifth) code += ((w[16 + l] >> j) & 1) << 4;
        dot += code * q8[32 * j + l];
      }
      std::int16_t s0, s1;
      std::memcpy(&s0, xq + 260 + 4 * j, 2);
      std::memcpy(&s1, xq + 262 + 4 * j, 2);
      sumi += sc * dot;
      summ += m * (s0 + s1);
    }
    float dy;
    std::memcpy(&dy, xq, 4);
    sum += fp16_to_fp32(load_u16(w)) * dy * static_cast<float>(sumi) -
           fp16_to_fp32(load_u16(w + 2)) * dy * static_cast<float>(summ);
  }
  return sum;
}

// Q6_K: sixteen groups of 16 with int8 scales; quants stored as 0..63 meaning q - 32.
float dot_q6_k(const std::uint8_t* w, const float*, const std::uint8_t* xq, std::int64_t n) {
  float sum = 0;
  for (std::int64_t b = 0; b < n / 256; ++b, w += 210, xq += 292) {
    const std::uint8_t* ql = w;
    const std::uint8_t* qh = w + 128;
    const auto* sc = reinterpret_cast<const std::int8_t*>(w + 192);
    const auto* q8 = reinterpret_cast<const std::int8_t*>(xq + 4);
    std::int32_t sumi = 0;
    for (int half = 0; half < 2; ++half) {
      for (int l = 0; l < 32; ++l) {
        const int g = l / 16;
        const int q1 = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
        const int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
        const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
        const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
        sumi += sc[g + 0] * q1 * q8[l] + sc[g + 2] * q2 * q8[l + 32] + sc[g + 4] * q3 * q8[l + 64] +
                sc[g + 6] * q4 * q8[l + 96];
      }
      ql += 64;
      qh += 32;
      sc += 8;
      q8 += 128;
    }
    float dy;
    std::memcpy(&dy, xq, 4);
    sum += fp16_to_fp32(load_u16(w + 208)) * dy * static_cast<float>(sumi);
  }
  return sum;
}

template <float (*Dot)(const std::uint8_t*, const float*, const std::uint8_t*, std::int64_t)>
void rows(const std::uint8_t* w, std::size_t stride, int n_rows, const float* x, const std::uint8_t* xq, std::int64_t n,
          float* out) {
  for (int r = 0; r < n_rows; ++r) out[r] = Dot(w + r * stride, x, xq, n);
}

void axpy_f32(const std::uint8_t* v, float a, float* y, std::int64_t n) {
  for (std::int64_t i = 0; i < n; ++i) {
    float e;
    std::memcpy(&e, v + 4 * i, 4);
    y[i] += a * e;
  }
}

void axpy_f16(const std::uint8_t* v, float a, float* y, std::int64_t n) {
  for (std::int64_t i = 0; i < n; ++i) y[i] += a * fp16_to_fp32(load_u16(v + 2 * i));
}

}  // namespace

DotKernels scalar_kernels() {
  DotKernels k{rows<dot_f32>, rows<dot_f16>, rows<dot_bf16>, rows<dot_q8_0>, rows<dot_q4_0>, rows<dot_qk<false>>,
               rows<dot_q6_k>, axpy_f32, axpy_f16};
  k.q5_k = rows<dot_qk<true>>;
  return k;
}

}  // namespace aero::backend::cpu
