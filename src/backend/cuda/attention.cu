// Attention on the GPU: storing keys and values into the cache, and one flash-style kernel
// (scores, online softmax and the weighted sum of values in one pass over the keys) for
// prompt batches and single tokens alike.
//
// A block takes up to kAttentionRows query rows of one key/value head — a row is a (token,
// query head of the group) pair — so each cache row it loads serves every head that shares
// it and every token of the tile. Keys and values come in tiles of kAttentionKeys positions,
// converted to f32 in shared memory; scores, softmax and sums are f32 (no tensor cores yet). For one token (generation) there are few rows and many
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
static_assert(kKeys == 32, "the score step gives each key of a tile to one lane of a warp");
static_assert(kRows == 4 * kWarps, "the score step gives each warp four rows");
constexpr int kQ8Block = 32, kQ8BlockBytes = 34;  // ggml's Q8_0: an f16 scale and 32 int8

// Block (token, kv head, keys or values); for Q8_0 each warp quantizes 32-element blocks as
// ggml's reference does (scale = amax / 127, codes rounded half away from zero).
__global__ void kv_store_kernel(KvLayer layer, const float* k, const float* v, const std::int32_t* rows) {
  const std::int64_t t = blockIdx.x;
  const int g = blockIdx.y, d = layer.head_dim;
  const bool values = blockIdx.z == 1;
  const float* src = (values ? v : k) + (t * layer.kv_heads + g) * d;
  std::uint8_t* dst = (values ? layer.values : layer.keys) + g * layer.head_bytes + rows[t] * layer.row_bytes;
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

// Four consecutive elements of a cache row, as f32: one 16-byte (f32) or 8-byte (f16) load,
// or for q8_0 two 2-byte loads of codes (blocks are 34 bytes: only 2-byte aligned) and the
// block's scale.
template <KvFormat F>
__device__ float4 load4(const std::uint8_t* row, int i) {
  if constexpr (F == KvFormat::F32) {
    return *reinterpret_cast<const float4*>(row + 4 * i);
  } else if constexpr (F == KvFormat::F16) {
    const uint2 bits = *reinterpret_cast<const uint2*>(row + 2 * i);
    const float2 a = __half22float2(*reinterpret_cast<const __half2*>(&bits.x));
    const float2 b = __half22float2(*reinterpret_cast<const __half2*>(&bits.y));
    return make_float4(a.x, a.y, b.x, b.y);
  } else {
    const std::uint8_t* block = row + (i / kQ8Block) * kQ8BlockBytes;
    const float scale = __half2float(*reinterpret_cast<const __half*>(block));
    const std::uint8_t* codes = block + 2 + i % kQ8Block;
    const unsigned short lo = *reinterpret_cast<const unsigned short*>(codes);
    const unsigned short hi = *reinterpret_cast<const unsigned short*>(codes + 2);
    return make_float4(scale * static_cast<float>(static_cast<signed char>(lo & 0xff)),
                       scale * static_cast<float>(static_cast<signed char>(lo >> 8)),
                       scale * static_cast<float>(static_cast<signed char>(hi & 0xff)),
                       scale * static_cast<float>(static_cast<signed char>(hi >> 8)));
  }
}

// Shared memory of one block, in floats: queries [rows][d]; keys [keys][d + 4] (the padding
// puts the 16-byte reads of 8 consecutive lanes on distinct banks); values [keys][d];
// probabilities [keys][rows] (read as float4 by every thread); per row max, denominator,
// correction, position.
struct Shared {
  float *q, *k, *v, *p, *m, *l, *correction;
  int* pos;
};

__host__ __device__ constexpr std::size_t shared_floats(int d) {
  return static_cast<std::size_t>(kRows) * d + static_cast<std::size_t>(kKeys) * (d + 4) +
         static_cast<std::size_t>(kKeys) * d + kKeys * kRows + 3 * kRows;
}

__device__ Shared carve(float* base, int d) {
  Shared s;
  s.q = base;
  s.k = s.q + kRows * d;
  s.v = s.k + kKeys * (d + 4);
  s.p = s.v + kKeys * d;
  s.m = s.p + kKeys * kRows;
  s.l = s.m + kRows;
  s.correction = s.l + kRows;
  s.pos = reinterpret_cast<int*>(s.correction + kRows);
  return s;
}

// Grid: (row tiles, kv heads, splits). Rows of kv head g: row = t × group + j is query head
// g × group + j of token t; a tile's rows are tokens of one slot. Each thread keeps the sums of
// columns tid and tid + 128 of every row in registers (head_dim ≤ 256); scores go a lane per
// key and a warp per four rows.
template <KvFormat F>
__global__ void __launch_bounds__(kThreads) attention_kernel(AttentionCall c, int group, int rows_total) {
  extern __shared__ float4 shared_memory4[];  // float4: 16-byte alignment for the vector reads
  const int d = c.layer.head_dim, d4 = d / 4;
  const Shared s = carve(reinterpret_cast<float*>(shared_memory4), d);
  const std::int32_t* tile_of_block = c.tiles + 3 * blockIdx.x;
  const int g = blockIdx.y, split = blockIdx.z, r0 = tile_of_block[0], rows = tile_of_block[1];
  const std::int64_t slot_rows = tile_of_block[2];  // the slot's first cache row
  const int tid = threadIdx.x, lane = tid % 32, warp = tid / 32;

  for (int idx = tid; idx < rows * d; idx += kThreads) {
    const int r = idx / d, i = idx % d, row = r0 + r;
    const std::int64_t t = row / group, h = static_cast<std::int64_t>(g) * group + row % group;
    s.q[idx] = c.q[(t * c.heads + h) * d + i];
  }
  for (int idx = tid; idx < kKeys * kRows; idx += kThreads) s.p[idx] = 0.0f;  // rows past `rows` stay 0
  if (tid < kRows) {
    s.m[tid] = -INFINITY;
    s.l[tid] = 0.0f;
    s.correction[tid] = 1.0f;  // (rows past `rows` keep it)
    s.pos[tid] = tid < rows ? c.positions[(r0 + tid) / group] : -1;
  }
  __syncthreads();
  int len = 0;  // keys any row of this tile sees
  int lowest = 0;  // with a window: the first key any row sees (tiles before it are skipped)
  for (int r = 0; r < rows; ++r) len = max(len, s.pos[r] + 1);
  if (c.window > 0) {
    lowest = len;
    for (int r = 0; r < rows; ++r) lowest = min(lowest, max(0, s.pos[r] - c.window + 1));
  }
  const int begin = max(split * c.split_len, lowest), end = min(len, split * c.split_len + c.split_len);
  const std::uint8_t* keys = c.layer.keys + g * c.layer.head_bytes + slot_rows * c.layer.row_bytes;
  const std::uint8_t* values = c.layer.values + g * c.layer.head_bytes + slot_rows * c.layer.row_bytes;

  float acc[2][kRows];
#pragma unroll
  for (int r = 0; r < kRows; ++r) acc[0][r] = acc[1][r] = 0.0f;
  const int col0 = tid, col1 = tid + kThreads;

  for (int k0 = begin; k0 < end; k0 += kKeys) {
    const int tile = min(kKeys, end - k0), chunks = tile * d4;
    // Keys and values of the tile, four elements a load, four loads in flight per thread.
    for (int c0 = tid; c0 < chunks; c0 += 4 * kThreads) {
      float4 kx[4], vx[4];
#pragma unroll
      for (int u = 0; u < 4; ++u) {
        const int chunk = c0 + u * kThreads;
        if (chunk < chunks) {
          const std::int64_t at = static_cast<std::int64_t>(k0 + chunk / d4) * c.layer.row_bytes;
          kx[u] = load4<F>(keys + at, 4 * (chunk % d4));
          vx[u] = load4<F>(values + at, 4 * (chunk % d4));
        }
      }
#pragma unroll
      for (int u = 0; u < 4; ++u) {
        const int chunk = c0 + u * kThreads;
        if (chunk < chunks) {
          const int kk = chunk / d4, i = 4 * (chunk % d4);
          *reinterpret_cast<float4*>(s.k + kk * (d + 4) + i) = kx[u];
          *reinterpret_cast<float4*>(s.v + kk * d + i) = vx[u];
        }
      }
    }
    __syncthreads();
    // Scores of four rows against this lane's key, then each row's online softmax across the
    // warp: the running max rises to the tile's, what was summed is rescaled by exp(old − new).
    float dot[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    const float4* key = reinterpret_cast<const float4*>(s.k + lane * (d + 4));
    for (int i4 = 0; i4 < d4; ++i4) {
      const float4 kv = key[i4];
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        const int r = warp + kWarps * j;
        if (r < rows) {
          const float4 qv = reinterpret_cast<const float4*>(s.q + r * d)[i4];
          dot[j] += qv.x * kv.x + qv.y * kv.y + qv.z * kv.z + qv.w * kv.w;
        }
      }
    }
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const int r = warp + kWarps * j;
      if (r >= rows) continue;  // (the same for the whole warp)
      // Causal mask, and the window's: a key at least `window` positions back is not seen.
      const bool seen = lane < tile && k0 + lane <= s.pos[r] && (c.window <= 0 || k0 + lane > s.pos[r] - c.window);
      float score = dot[j] * c.scale;
      if (c.softcap > 0.0f) score = c.softcap * tanhf(score / c.softcap);
      score = seen ? score : -INFINITY;
      float tile_max = score;
      for (int offset = 16; offset > 0; offset /= 2) tile_max = fmaxf(tile_max, __shfl_xor_sync(0xffffffffu, tile_max, offset));
      const float old_max = s.m[r], new_max = fmaxf(old_max, tile_max);
      float p = 0.0f, correction = 1.0f;
      if (new_max != -INFINITY) {  // else no key of this row yet: nothing to add or rescale
        p = expf(score - new_max);             // 0 for a masked key
        correction = expf(old_max - new_max);  // 0 while old_max is -inf
      }
      float sum = p;
      for (int offset = 16; offset > 0; offset /= 2) sum += __shfl_xor_sync(0xffffffffu, sum, offset);
      s.p[lane * kRows + r] = p;
      if (lane == 0) {
        s.l[r] = s.l[r] * correction + sum;
        s.m[r] = new_max;
        s.correction[r] = correction;
      }
    }
    __syncthreads();
    // The probability-weighted values into this thread's columns of every row.
#pragma unroll
    for (int r = 0; r < kRows; ++r) {
      const float correction = s.correction[r];
      acc[0][r] *= correction;
      acc[1][r] *= correction;
    }
    for (int kk = 0; kk < tile; ++kk) {
      const float4* p4 = reinterpret_cast<const float4*>(s.p + kk * kRows);
      float p[kRows];
#pragma unroll
      for (int r4 = 0; r4 < kRows / 4; ++r4) {
        const float4 x = p4[r4];
        p[4 * r4] = x.x, p[4 * r4 + 1] = x.y, p[4 * r4 + 2] = x.z, p[4 * r4 + 3] = x.w;
      }
      if (col0 < d) {
        const float v0 = s.v[kk * d + col0];
#pragma unroll
        for (int r = 0; r < kRows; ++r) acc[0][r] += p[r] * v0;
      }
      if (col1 < d) {
        const float v1 = s.v[kk * d + col1];
#pragma unroll
        for (int r = 0; r < kRows; ++r) acc[1][r] += p[r] * v1;
      }
    }
    __syncthreads();  // before the next tile overwrites keys, values and probabilities
  }

  // Out: normalized (one split), or the partial sums with (max, denominator) per row:
  // [split][kv head][row] sums of d floats, then the pairs.
  const std::int64_t slot = (static_cast<std::int64_t>(split) * c.layer.kv_heads + g) * rows_total + r0;
  float* ml = c.scratch + static_cast<std::int64_t>(c.splits) * c.layer.kv_heads * rows_total * d;
#pragma unroll
  for (int r = 0; r < kRows; ++r) {
    if (r >= rows) break;
    const int row = r0 + r;
    const std::int64_t t = row / group, h = static_cast<std::int64_t>(g) * group + row % group;
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      const int col = half == 0 ? col0 : col1;
      if (col >= d) continue;
      const float sum = half == 0 ? acc[0][r] : acc[1][r];
      if (c.splits == 1) {
        const float l = s.l[r];
        c.out[(t * c.heads + h) * d + col] = l > 0.0f ? sum / l : 0.0f;
      } else {
        c.scratch[(slot + r) * d + col] = sum;
      }
    }
  }
  if (c.splits > 1 && tid < rows) {
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

cudaError_t kv_store(const KvLayer& layer, const float* k, const float* v, const std::int32_t* rows, std::int64_t n,
                     cudaStream_t stream) {
  if (n <= 0) return cudaSuccess;
  const dim3 grid(static_cast<unsigned>(n), static_cast<unsigned>(layer.kv_heads), 2);
  kv_store_kernel<<<grid, 128, 0, stream>>>(layer, k, v, rows);
  return cudaGetLastError();
}

std::int64_t attention_scratch_floats(std::int64_t n, int heads, int head_dim, int splits) {
  return splits <= 1 ? 0 : static_cast<std::int64_t>(splits) * n * heads * (head_dim + 2);
}

std::size_t attention_shared_bytes(int head_dim) { return shared_floats(head_dim) * sizeof(float) + kRows * sizeof(int); }

namespace {

using Kernel = void (*)(AttentionCall, int, int);

Kernel kernel_for(KvFormat format) {
  switch (format) {
    case KvFormat::F32: return attention_kernel<KvFormat::F32>;
    case KvFormat::F16: return attention_kernel<KvFormat::F16>;
    case KvFormat::Q8_0: return attention_kernel<KvFormat::Q8_0>;
  }
  return attention_kernel<KvFormat::F16>;
}

// Shared memory beyond the default 48 KiB must be asked for, per kernel and GPU: once per size
// (the largest asked so far, per GPU and format, is remembered).
cudaError_t allow_shared(Kernel kernel, KvFormat format, std::size_t bytes) {
  if (bytes <= 48 * 1024) return cudaSuccess;
  static std::size_t allowed[64][3] = {};
  int device = 0;
  cudaError_t status = cudaGetDevice(&device);
  if (status != cudaSuccess) return status;
  std::size_t* slot = device < 64 ? &allowed[device][static_cast<int>(format)] : nullptr;
  if (slot && *slot >= bytes) return cudaSuccess;
  status = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(bytes));
  if (status == cudaSuccess && slot) *slot = bytes;
  return status;
}

}  // namespace

cudaError_t attention(const AttentionCall& call, cudaStream_t stream) {
  if (call.n <= 0 || call.tile_count <= 0) return cudaSuccess;
  const int group = call.heads / call.layer.kv_heads;
  const int rows_total = static_cast<int>(call.n) * group;
  const std::size_t shared = attention_shared_bytes(call.layer.head_dim);
  const Kernel kernel = kernel_for(call.layer.format);
  cudaError_t status = allow_shared(kernel, call.layer.format, shared);
  if (status != cudaSuccess) return status;
  const dim3 grid(static_cast<unsigned>(call.tile_count), static_cast<unsigned>(call.layer.kv_heads),
                  static_cast<unsigned>(call.splits));
  kernel<<<grid, kThreads, shared, stream>>>(call, group, rows_total);
  if (call.splits > 1) {
    status = cudaGetLastError();
    if (status != cudaSuccess) return status;
    combine_kernel<<<dim3(static_cast<unsigned>(rows_total), static_cast<unsigned>(call.layer.kv_heads)), 128, 0, stream>>>(
        call, group, rows_total);
  }
  return cudaGetLastError();
}

}  // namespace aero::backend::cuda::kernels
