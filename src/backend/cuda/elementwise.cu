// The CUDA backend's small kernels: RMSNorm, bias, residual add, SiLU·mul, GELU-tanh·mul,
// scale, soft-cap, rope. Each is a
// few percent of a token's time at most; they are written to be plainly correct, with
// coalesced access and no more.
#include <cuda_runtime.h>

#include "backend/cuda/kernels.h"

namespace aero::backend::cuda::kernels {
namespace {

constexpr int kThreads = 256;

unsigned blocks_for(std::int64_t count) {
  const std::int64_t blocks = (count + kThreads - 1) / kThreads;
  return static_cast<unsigned>(blocks < 65535 * 16 ? blocks : 65535 * 16);  // grid-stride loops cover the rest
}

__global__ void probe_kernel() {}

// Reads every 16 bytes once; the xor keeps the loads from being optimized away.
__global__ void read_kernel(const uint4* p, std::size_t count, unsigned* sink) {
  unsigned acc = 0;
  const std::size_t stride = static_cast<std::size_t>(gridDim.x) * blockDim.x;
#pragma unroll 4
  for (std::size_t i = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < count; i += stride) {
    const uint4 v = p[i];
    acc ^= v.x ^ v.y ^ v.z ^ v.w;
  }
  if (acc == 0x9E3779B9u) *sink = acc;
}

// One block per row: each thread sums the squares of its strided elements, the block adds
// the partial sums, then every thread scales its elements.
__global__ void rms_norm_kernel(const float* x, const float* weight, std::int64_t width, float eps, float* y) {
  const std::int64_t row = blockIdx.x;
  const float* xr = x + row * width;
  float* yr = y + row * width;
  float sum = 0;
  for (std::int64_t i = threadIdx.x; i < width; i += blockDim.x) sum += xr[i] * xr[i];
  for (int offset = 16; offset > 0; offset /= 2) sum += __shfl_xor_sync(0xffffffffu, sum, offset);
  __shared__ float warp_sums[32];
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, warps = blockDim.x / 32;
  if (lane == 0) warp_sums[warp] = sum;
  __syncthreads();
  if (warp == 0) {
    sum = lane < warps ? warp_sums[lane] : 0.0f;
    for (int offset = 16; offset > 0; offset /= 2) sum += __shfl_xor_sync(0xffffffffu, sum, offset);
    if (lane == 0) warp_sums[0] = sum;
  }
  __syncthreads();
  const float scale = 1.0f / sqrtf(warp_sums[0] / static_cast<float>(width) + eps);
  for (std::int64_t i = threadIdx.x; i < width; i += blockDim.x) yr[i] = xr[i] * scale * weight[i];
}

__global__ void add_bias_kernel(float* x, const float* bias, std::int64_t width, std::int64_t count) {
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < count;
       i += static_cast<std::int64_t>(gridDim.x) * blockDim.x)
    x[i] += bias[i % width];
}

__global__ void add_kernel(float* x, const float* y, std::int64_t count) {
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < count;
       i += static_cast<std::int64_t>(gridDim.x) * blockDim.x)
    x[i] += y[i];
}

__global__ void silu_mul_kernel(const float* gate, const float* up, std::int64_t count, float* out) {
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < count;
       i += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    const float g = gate[i];
    out[i] = g / (1.0f + expf(-g)) * up[i];
  }
}

__global__ void gelu_tanh_mul_kernel(const float* gate, const float* up, std::int64_t count, float* out) {
  constexpr float kSqrt2OverPi = 0.7978845608028654f;
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < count;
       i += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    const float g = gate[i];
    out[i] = 0.5f * g * (1.0f + tanhf(kSqrt2OverPi * (g + 0.044715f * g * g * g))) * up[i];
  }
}

__global__ void scale_kernel(float* x, std::int64_t count, float factor) {
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < count;
       i += static_cast<std::int64_t>(gridDim.x) * blockDim.x)
    x[i] *= factor;
}

__global__ void softcap_kernel(float* x, std::int64_t count, float cap) {
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < count;
       i += static_cast<std::int64_t>(gridDim.x) * blockDim.x)
    x[i] = cap * tanhf(x[i] / cap);
}

// One thread per element of the rows moved: (row i, column c).
__global__ void gather_rows_kernel(const float* src, const std::int32_t* rows, std::int64_t width, float* dst,
                                   std::int64_t total) {
  for (std::int64_t e = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; e < total;
       e += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    const std::int64_t i = e / width, c = e % width;
    dst[e] = src[static_cast<std::int64_t>(rows[i]) * width + c];
  }
}

__global__ void scatter_add_rows_kernel(const float* src, const std::int32_t* rows, const float* weights,
                                        std::int64_t width, float* dst, std::int64_t total) {
  for (std::int64_t e = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; e < total;
       e += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    const std::int64_t i = e / width, c = e % width;
    float& out = dst[static_cast<std::int64_t>(rows[i]) * width + c];
    out += weights[i] * src[e];
  }
}

// One thread per rotated pair: (token, head, pair i).
__global__ void rope_kernel(float* x, std::int64_t heads, std::int64_t head_dim, const float* cos_sin, bool half_split,
                            std::int64_t pairs) {
  const std::int64_t half = head_dim / 2;
  for (std::int64_t p = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; p < pairs;
       p += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    const std::int64_t i = p % half, head = p / half, t = head / heads;
    float* v = x + head * head_dim;
    const std::int64_t ia = half_split ? i : 2 * i, ib = half_split ? i + half : 2 * i + 1;
    const float c = cos_sin[(t * half + i) * 2], s = cos_sin[(t * half + i) * 2 + 1];
    const float a = v[ia], b = v[ib];
    v[ia] = a * c - b * s;
    v[ib] = b * c + a * s;
  }
}

}  // namespace

cudaError_t read_all(const void* data, std::size_t bytes, int blocks, unsigned* sink, cudaStream_t stream) {
  read_kernel<<<blocks, 512, 0, stream>>>(static_cast<const uint4*>(data), bytes / 16, sink);
  return cudaGetLastError();
}

cudaError_t probe(cudaStream_t stream) {
  probe_kernel<<<1, 1, 0, stream>>>();
  return cudaGetLastError();
}

cudaError_t rms_norm(const float* x, const float* weight, std::int64_t width, std::int64_t rows, float eps, float* y,
                     cudaStream_t stream) {
  if (rows <= 0) return cudaSuccess;
  // A warp per 32 elements up to 256 threads: per-head norms (128 wide) take a 128-thread block.
  const int threads = width >= kThreads ? kThreads : static_cast<int>((width + 31) / 32 * 32);
  rms_norm_kernel<<<static_cast<unsigned>(rows), threads, 0, stream>>>(x, weight, width, eps, y);
  return cudaGetLastError();
}

cudaError_t add_bias(float* x, const float* bias, std::int64_t width, std::int64_t rows, cudaStream_t stream) {
  const std::int64_t count = width * rows;
  if (count <= 0) return cudaSuccess;
  add_bias_kernel<<<blocks_for(count), kThreads, 0, stream>>>(x, bias, width, count);
  return cudaGetLastError();
}

cudaError_t add(float* x, const float* y, std::int64_t count, cudaStream_t stream) {
  if (count <= 0) return cudaSuccess;
  add_kernel<<<blocks_for(count), kThreads, 0, stream>>>(x, y, count);
  return cudaGetLastError();
}

cudaError_t silu_mul(const float* gate, const float* up, std::int64_t count, float* out, cudaStream_t stream) {
  if (count <= 0) return cudaSuccess;
  silu_mul_kernel<<<blocks_for(count), kThreads, 0, stream>>>(gate, up, count, out);
  return cudaGetLastError();
}

cudaError_t gelu_tanh_mul(const float* gate, const float* up, std::int64_t count, float* out, cudaStream_t stream) {
  if (count <= 0) return cudaSuccess;
  gelu_tanh_mul_kernel<<<blocks_for(count), kThreads, 0, stream>>>(gate, up, count, out);
  return cudaGetLastError();
}

cudaError_t scale(float* x, std::int64_t count, float factor, cudaStream_t stream) {
  if (count <= 0) return cudaSuccess;
  scale_kernel<<<blocks_for(count), kThreads, 0, stream>>>(x, count, factor);
  return cudaGetLastError();
}

cudaError_t softcap(float* x, std::int64_t count, float cap, cudaStream_t stream) {
  if (count <= 0) return cudaSuccess;
  softcap_kernel<<<blocks_for(count), kThreads, 0, stream>>>(x, count, cap);
  return cudaGetLastError();
}

cudaError_t gather_rows(const float* src, const std::int32_t* rows, std::int64_t count, std::int64_t width, float* dst,
                        cudaStream_t stream) {
  const std::int64_t total = count * width;
  if (total <= 0) return cudaSuccess;
  gather_rows_kernel<<<blocks_for(total), kThreads, 0, stream>>>(src, rows, width, dst, total);
  return cudaGetLastError();
}

cudaError_t scatter_add_rows(const float* src, const std::int32_t* rows, const float* weights, std::int64_t count,
                             std::int64_t width, float* dst, cudaStream_t stream) {
  const std::int64_t total = count * width;
  if (total <= 0) return cudaSuccess;
  scatter_add_rows_kernel<<<blocks_for(total), kThreads, 0, stream>>>(src, rows, weights, width, dst, total);
  return cudaGetLastError();
}

cudaError_t rope(float* x, std::int64_t n, std::int64_t heads, std::int64_t head_dim, const float* cos_sin,
                 bool half_split, cudaStream_t stream) {
  const std::int64_t pairs = n * heads * (head_dim / 2);
  if (pairs <= 0) return cudaSuccess;
  rope_kernel<<<blocks_for(pairs), kThreads, 0, stream>>>(x, heads, head_dim, cos_sin, half_split, pairs);
  return cudaGetLastError();
}

}  // namespace aero::backend::cuda::kernels
