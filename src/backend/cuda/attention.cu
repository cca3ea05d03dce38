// Attention on the GPU: storing keys and values into the cache, and one flash-style kernel
// (scores, online softmax and the weighted sum of values in one pass over the keys) for
// prompt batches and single tokens alike.
//
// A block takes up to kAttentionRows query rows of one key/value head — a row is a (token,
// query head of the group) pair — so each cache row it loads serves every head that shares
// it and every token of the tile. Keys and values come in tiles of kAttentionKeys positions,
// converted to f32 in shared memory. For one token (generation) there are few rows and many
// positions: the positions are split over `splits` blocks, each leaves its unnormalized sum
// with its running max and denominator, and a second kernel combines them.
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include "backend/cuda/kernels.h"

namespace aero::backend::cuda::kernels {
namespace {

constexpr int kRows = kAttentionRows;
constexpr int kKeys = kAttentionKeys;
constexpr int kThreads = 128;
constexpr int kWarps = kThreads / 32;
static_assert(kKeys == 32, "the softmax step gives each key of a tile to one lane of a warp");
constexpr int kQ8Block = 32, kQ8BlockBytes = 34;  // ggml's Q8_0: an f16 scale and 32 int8

__device__ float load_element(const std::uint8_t* row, KvFormat format, int i) {
  switch (format) {
    case KvFormat::F32: return reinterpret_cast<const float*>(row)[i];
    case KvFormat::F16: return __half2float(reinterpret_cast<const __half*>(row)[i]);
    case KvFormat::Q8_0: {
      const std::uint8_t* block = row + (i / kQ8Block) * kQ8BlockBytes;
      const float scale = __half2float(*reinterpret_cast<const __half*>(block));
      return scale * static_cast<float>(static_cast<std::int8_t>(block[2 + i % kQ8Block]));
    }
  }
  return 0.0f;
}

// Block (token, kv head, keys or values); for Q8_0 each warp quantizes 32-element blocks as
// ggml's reference does (scale = amax / 127, codes rounded half away from zero).
__global__ void kv_store_kernel(KvLayer layer, const float* k, const float* v, const std::int32_t* positions) {
  const std::int64_t t = blockIdx.x;
  const int g = blockIdx.y, d = layer.head_dim;
  const bool values = blockIdx.z == 1;
  const float* src = (values ? v : k) + (t * layer.kv_heads + g) * d;
  std::uint8_t* dst = (values ? layer.values : layer.keys) + g * layer.head_bytes + positions[t] * layer.row_bytes;
  switch (layer.format) {
    case KvFormat::F32:
      for (int i = threadIdx.x; i < d; i += blockDim.x) reinterpret_cast<float*>(dst)[i] = src[i];
      break;
    case KvFormat::F16:
      for (int i = threadIdx.x; i < d; i += blockDim.x) reinterpret_cast<__half*>(dst)[i] = __float2half_rn(src[i]);
      break;
    case KvFormat::Q8_0: {
      const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
      for (int b = warp; b < d / kQ8Block; b += warps) {
        const float x = src[b * kQ8Block + lane];
        float amax = fabsf(x);
        for (int offset = 16; offset > 0; offset /= 2) amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, offset));
        const float scale = amax / 127.0f;
        const float inverse = scale != 0.0f ? 1.0f / scale : 0.0f;
        std::uint8_t* block = dst + b * kQ8BlockBytes;
        if (lane == 0) *reinterpret_cast<__half*>(block) = __float2half_rn(scale);
        block[2 + lane] = static_cast<std::uint8_t>(static_cast<std::int8_t>(roundf(x * inverse)));
      }
      break;
    }
  }
}

struct Shared {
  float *q, *k, *v, *p, *o, *m, *l, *correction;
  int* pos;
};

__device__ Shared carve(float* base, int d) {
  Shared s;
  s.q = base;
  s.k = s.q + kRows * d;
  s.v = s.k + kKeys * (d + 1);  // keys padded: the score step reads 32 keys' element i at once
  s.p = s.v + kKeys * d;
  s.o = s.p + kRows * kKeys;
  s.m = s.o + kRows * d;
  s.l = s.m + kRows;
  s.correction = s.l + kRows;
  s.pos = reinterpret_cast<int*>(s.correction + kRows);
  return s;
}

// Grid: (row tiles, kv heads, splits). Rows of kv head g: row = t × group + j is query head
// g × group + j of token t.
__global__ void __launch_bounds__(kThreads) attention_kernel(AttentionCall c, int group, int rows_total) {
  extern __shared__ float shared_memory[];
  const int d = c.layer.head_dim;
  const Shared s = carve(shared_memory, d);
  const int g = blockIdx.y, split = blockIdx.z, r0 = blockIdx.x * kRows;
  const int rows = min(kRows, rows_total - r0);
  const int tid = threadIdx.x, lane = tid % 32, warp = tid / 32;

  for (int idx = tid; idx < rows * d; idx += kThreads) {
    const int r = idx / d, i = idx % d, row = r0 + r;
    const std::int64_t t = row / group, h = static_cast<std::int64_t>(g) * group + row % group;
    s.q[idx] = c.q[(t * c.heads + h) * d + i];
    s.o[idx] = 0.0f;
  }
  if (tid < kRows) {
    s.m[tid] = -INFINITY;
    s.l[tid] = 0.0f;
    s.pos[tid] = tid < rows ? c.positions[(r0 + tid) / group] : -1;
  }
  __syncthreads();
  int len = 0;  // keys any row of this tile sees
  for (int r = 0; r < rows; ++r) len = max(len, s.pos[r] + 1);
  const int begin = split * c.split_len, end = min(len, begin + c.split_len);
  const std::uint8_t* keys = c.layer.keys + g * c.layer.head_bytes;
  const std::uint8_t* values = c.layer.values + g * c.layer.head_bytes;

  for (int k0 = begin; k0 < end; k0 += kKeys) {
    const int tile = min(kKeys, end - k0);
    for (int idx = tid; idx < tile * d; idx += kThreads) {
      const int kk = idx / d, i = idx % d;
      const std::int64_t at = static_cast<std::int64_t>(k0 + kk) * c.layer.row_bytes;
      s.k[kk * (d + 1) + i] = load_element(keys + at, c.layer.format, i);
      s.v[idx] = load_element(values + at, c.layer.format, i);
    }
    __syncthreads();
    // Scores; a key after the row's own position (causal mask) or past the tile is -inf.
    for (int idx = tid; idx < rows * kKeys; idx += kThreads) {
      const int r = idx / kKeys, kk = idx % kKeys;
      float score = -INFINITY;
      if (kk < tile && k0 + kk <= s.pos[r]) {
        const float* qr = s.q + r * d;
        const float* kr = s.k + kk * (d + 1);
        float dot = 0.0f;
        for (int i = 0; i < d; ++i) dot += qr[i] * kr[i];
        score = dot * c.scale;
      }
      s.p[idx] = score;
    }
    __syncthreads();
    // Online softmax, a warp per row and a lane per key: the running max rises to the tile's,
    // what was summed so far is rescaled by exp(old max - new max).
    for (int r = warp; r < rows; r += kWarps) {
      const float score = s.p[r * kKeys + lane];
      float tile_max = score;
      for (int offset = 16; offset > 0; offset /= 2) tile_max = fmaxf(tile_max, __shfl_xor_sync(0xffffffffu, tile_max, offset));
      const float old_max = s.m[r], new_max = fmaxf(old_max, tile_max);
      float p = 0.0f, correction = 1.0f;
      if (new_max != -INFINITY) {  // else no key of this row yet: nothing to add or rescale
        p = expf(score - new_max);  // 0 for a masked key
        correction = expf(old_max - new_max);  // 0 while old_max is -inf
      }
      float sum = p;
      for (int offset = 16; offset > 0; offset /= 2) sum += __shfl_xor_sync(0xffffffffu, sum, offset);
      s.p[r * kKeys + lane] = p;
      if (lane == 0) {
        s.l[r] = s.l[r] * correction + sum;
        s.m[r] = new_max;
        s.correction[r] = correction;
      }
    }
    __syncthreads();
    for (int idx = tid; idx < rows * d; idx += kThreads) {
      const int r = idx / d, i = idx % d;
      const float* pr = s.p + r * kKeys;
      float acc = s.o[idx] * s.correction[r];
      for (int kk = 0; kk < tile; ++kk) acc += pr[kk] * s.v[kk * d + i];
      s.o[idx] = acc;
    }
    __syncthreads();
  }

  if (c.splits == 1) {
    for (int idx = tid; idx < rows * d; idx += kThreads) {
      const int r = idx / d, i = idx % d, row = r0 + r;
      const std::int64_t t = row / group, h = static_cast<std::int64_t>(g) * group + row % group;
      const float l = s.l[r];
      c.out[(t * c.heads + h) * d + i] = l > 0.0f ? s.o[idx] / l : 0.0f;
    }
    return;
  }
  // Partial results: [split][kv head][row] sums of d floats, then (max, denominator) pairs.
  const std::int64_t slot = (static_cast<std::int64_t>(split) * c.layer.kv_heads + g) * rows_total + r0;
  for (int idx = tid; idx < rows * d; idx += kThreads) c.scratch[slot * d + idx] = s.o[idx];
  float* ml = c.scratch + static_cast<std::int64_t>(c.splits) * c.layer.kv_heads * rows_total * d;
  if (tid < rows) {
    ml[2 * (slot + tid)] = s.m[tid];
    ml[2 * (slot + tid) + 1] = s.l[tid];
  }
}

// Grid: (row, kv head). out = Σ_s sum_s · exp(m_s − M) / Σ_s l_s · exp(m_s − M), M = max m_s.
__global__ void combine_kernel(AttentionCall c, int group, int rows_total) {
  const int row = blockIdx.x, g = blockIdx.y, d = c.layer.head_dim;
  const std::int64_t stride = static_cast<std::int64_t>(c.layer.kv_heads) * rows_total;  // between splits
  const std::int64_t slot0 = static_cast<std::int64_t>(g) * rows_total + row;
  const float* ml = c.scratch + c.splits * stride * d;
  float max = -INFINITY;
  for (int split = 0; split < c.splits; ++split) max = fmaxf(max, ml[2 * (slot0 + split * stride)]);
  float denominator = 0.0f;
  for (int split = 0; split < c.splits; ++split) {
    const std::int64_t slot = slot0 + split * stride;
    denominator += ml[2 * slot + 1] * expf(ml[2 * slot] - max);  // an empty split: l = 0, m = -inf
  }
  const std::int64_t t = row / group, h = static_cast<std::int64_t>(g) * group + row % group;
  for (int i = threadIdx.x; i < d; i += blockDim.x) {
    float acc = 0.0f;
    for (int split = 0; split < c.splits; ++split) {
      const std::int64_t slot = slot0 + split * stride;
      const float m = ml[2 * slot];
      if (m != -INFINITY) acc += c.scratch[slot * d + i] * expf(m - max);
    }
    c.out[(t * c.heads + h) * d + i] = denominator > 0.0f ? acc / denominator : 0.0f;
  }
}

}  // namespace

cudaError_t kv_store(const KvLayer& layer, const float* k, const float* v, const std::int32_t* positions,
                     std::int64_t n, cudaStream_t stream) {
  if (n <= 0) return cudaSuccess;
  const dim3 grid(static_cast<unsigned>(n), static_cast<unsigned>(layer.kv_heads), 2);
  kv_store_kernel<<<grid, 128, 0, stream>>>(layer, k, v, positions);
  return cudaGetLastError();
}

std::int64_t attention_scratch_floats(std::int64_t n, int heads, int head_dim, int splits) {
  return splits <= 1 ? 0 : static_cast<std::int64_t>(splits) * n * heads * (head_dim + 2);
}

std::size_t attention_shared_bytes(int head_dim) {
  const std::size_t d = static_cast<std::size_t>(head_dim);
  const std::size_t floats = kRows * d + kKeys * (d + 1) + kKeys * d + kRows * kKeys + kRows * d + 3 * kRows;
  return floats * sizeof(float) + kRows * sizeof(int);
}

cudaError_t attention(const AttentionCall& call, cudaStream_t stream) {
  if (call.n <= 0) return cudaSuccess;
  const int group = call.heads / call.layer.kv_heads;
  const int rows_total = static_cast<int>(call.n) * group;
  const std::size_t shared = attention_shared_bytes(call.layer.head_dim);
  if (shared > 48 * 1024) {  // beyond the default a kernel must ask for (the host checked the GPU's limit)
    const cudaError_t status =
        cudaFuncSetAttribute(attention_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(shared));
    if (status != cudaSuccess) return status;
  }
  const dim3 grid(static_cast<unsigned>((rows_total + kRows - 1) / kRows), static_cast<unsigned>(call.layer.kv_heads),
                  static_cast<unsigned>(call.splits));
  attention_kernel<<<grid, kThreads, shared, stream>>>(call, group, rows_total);
  if (call.splits > 1) {
    const cudaError_t status = cudaGetLastError();
    if (status != cudaSuccess) return status;
    combine_kernel<<<dim3(static_cast<unsigned>(rows_total), static_cast<unsigned>(call.layer.kv_heads)), 128, 0, stream>>>(
        call, group, rows_total);
  }
  return cudaGetLastError();
}

}  // namespace aero::backend::cuda::kernels
