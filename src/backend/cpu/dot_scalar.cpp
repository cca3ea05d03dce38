// The reference every SIMD kernel is tested against: per block, an exact integer sum, then
// the block's two scales applied in ggml's order.
#include <cstring>

#include "backend/cpu/dot.h"
#include "quant/half.h"

namespace aero::backend::cpu {
namespace {

using quant::fp16_to_fp32;
using quant::load_u16;

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

template <float (*Dot)(const std::uint8_t*, const float*, const std::uint8_t*, std::int64_t)>
void rows(const std::uint8_t* w, std::size_t stride, int n_rows, const float* x, const std::uint8_t* xq, std::int64_t n,
          float* out) {
  for (int r = 0; r < n_rows; ++r) out[r] = Dot(w + r * stride, x, xq, n);
}

}  // namespace

DotKernels scalar_kernels() {
  return {rows<dot_f32>, rows<dot_f16>, rows<dot_bf16>, rows<dot_q8_0>, rows<dot_q4_0>};
}

}  // namespace aero::backend::cpu
