// The element-wise kernels around the products: activations to q8_1 (decode path) or to
// f16 / bf16 (prefill path), and weights decoded to f16 tiles for cuBLAS (prefill path).
#include <cstdint>

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "backend/cuda/matmul_formats.cuh"
#include "backend/cuda/matmul_kernels.h"

namespace aero::backend::cuda::kernels {
namespace {

using namespace dev;

constexpr int kThreads = 256;

// One warp per 32 columns of one token: d = max|x| / 127, q = round(x / d) (as ggml's q8_1 and
// aero's Q8_0 quantizer compute it: x times the f32 reciprocal, rounded half away from zero).
__global__ void __launch_bounds__(kThreads) quantize_q8_1_kernel(const float* __restrict__ x, std::int64_t blocks,
                                                                 std::int8_t* __restrict__ xq, float2* __restrict__ xds) {
  const std::int64_t b = (static_cast<std::int64_t>(blockIdx.x) * kThreads + threadIdx.x) >> 5;
  const int lane = static_cast<int>(threadIdx.x & 31);
  if (b >= blocks) return;  // whole warps
  const float v = x[b * 32 + lane];
  float amax = fabsf(v);
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, o));
  const float d = amax / 127.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  const int q = static_cast<int>(roundf(v * id));
  xq[b * 32 + lane] = static_cast<std::int8_t>(q);
  int sum = q;
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, o);
  if (lane == 0) xds[b] = make_float2(d, d * static_cast<float>(sum));
}

__global__ void __launch_bounds__(kThreads) convert_kernel(const float* __restrict__ x, std::int64_t count, void* out, bool bf16) {
  const std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * kThreads + threadIdx.x;
  if (i >= count) return;
  if (bf16) static_cast<__nv_bfloat16*>(out)[i] = __float2bfloat16_rn(x[i]);
  else static_cast<__half*>(out)[i] = __float2half_rn(x[i]);
}

// One thread per 32 weights (a legacy block, or a K super-block's sub-block): decoded through
// the same format description as the products, stored as four 16-byte runs of f16.
template <class F>
__global__ void __launch_bounds__(kThreads) dequantize_kernel(const std::uint8_t* __restrict__ data, std::size_t row_bytes,
                                                              std::int64_t row_begin, std::int64_t rows, std::int64_t cols,
                                                              __half* __restrict__ out) {
  const std::int64_t groups = cols / 32;
  const std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * kThreads + threadIdx.x;
  if (i >= rows * groups) return;
  const std::int64_t r = i / groups, g = i % groups;
  const std::int64_t block = g * 32 / F::BE;
  const int sub = static_cast<int>(g % (F::BE / 32));
  const GlobalReader reader{data + (row_begin + r) * static_cast<std::int64_t>(row_bytes) + block * F::BB};
  float y[32];
  F::decode32(reader, sub, y);
  uint4* o = reinterpret_cast<uint4*>(out + r * cols + g * 32);
#pragma unroll
  for (int k = 0; k < 4; ++k) {
    std::uint32_t h[4];
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const __half2 v = __floats2half2_rn(y[8 * k + 2 * j], y[8 * k + 2 * j + 1]);
      h[j] = *reinterpret_cast<const std::uint32_t*>(&v);
    }
    o[k] = make_uint4(h[0], h[1], h[2], h[3]);
  }
}

unsigned grid_for(std::int64_t threads) { return static_cast<unsigned>((threads + kThreads - 1) / kThreads); }

}  // namespace

cudaError_t quantize_q8_1(const float* x, std::int64_t n, std::int64_t cols, std::int8_t* xq, float2* xds,
                          cudaStream_t stream) {
  const std::int64_t blocks = n * (cols / 32);
  if (blocks == 0) return cudaSuccess;
  quantize_q8_1_kernel<<<grid_for(blocks * 32), kThreads, 0, stream>>>(x, blocks, xq, xds);
  return cudaGetLastError();
}

cudaError_t convert_activations(const float* x, std::int64_t count, void* out, bool bf16, cudaStream_t stream) {
  if (count == 0) return cudaSuccess;
  convert_kernel<<<grid_for(count), kThreads, 0, stream>>>(x, count, out, bf16);
  return cudaGetLastError();
}

cudaError_t dequantize_f16(Format format, const std::uint8_t* data, std::size_t row_bytes, std::int64_t row_begin,
                           std::int64_t rows, std::int64_t cols, void* out, cudaStream_t stream) {
  const std::int64_t threads = rows * (cols / 32);
  if (threads == 0) return cudaSuccess;
  auto* o = static_cast<__half*>(out);
  const unsigned grid = grid_for(threads);
  switch (format) {
    case Format::Q4_0: dequantize_kernel<FQ4_0><<<grid, kThreads, 0, stream>>>(data, row_bytes, row_begin, rows, cols, o); break;
    case Format::Q4_1: dequantize_kernel<FQ4_1><<<grid, kThreads, 0, stream>>>(data, row_bytes, row_begin, rows, cols, o); break;
    case Format::Q5_0: dequantize_kernel<FQ5_0><<<grid, kThreads, 0, stream>>>(data, row_bytes, row_begin, rows, cols, o); break;
    case Format::Q5_1: dequantize_kernel<FQ5_1><<<grid, kThreads, 0, stream>>>(data, row_bytes, row_begin, rows, cols, o); break;
    case Format::Q8_0: dequantize_kernel<FQ8_0><<<grid, kThreads, 0, stream>>>(data, row_bytes, row_begin, rows, cols, o); break;
    case Format::Q2_K: dequantize_kernel<FQ2_K><<<grid, kThreads, 0, stream>>>(data, row_bytes, row_begin, rows, cols, o); break;
    case Format::Q3_K: dequantize_kernel<FQ3_K><<<grid, kThreads, 0, stream>>>(data, row_bytes, row_begin, rows, cols, o); break;
    case Format::Q4_K: dequantize_kernel<FQ4_K><<<grid, kThreads, 0, stream>>>(data, row_bytes, row_begin, rows, cols, o); break;
    case Format::Q5_K: dequantize_kernel<FQ5_K><<<grid, kThreads, 0, stream>>>(data, row_bytes, row_begin, rows, cols, o); break;
    case Format::Q6_K: dequantize_kernel<FQ6_K><<<grid, kThreads, 0, stream>>>(data, row_bytes, row_begin, rows, cols, o); break;
    default: return cudaErrorInvalidValue;  // float formats go to cuBLAS as they are
  }
  return cudaGetLastError();
}

}  // namespace aero::backend::cuda::kernels
