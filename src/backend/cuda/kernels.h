// The CUDA backend's kernels other than the matrix products, as thin launchers: the one
// header shared by the host code (.cpp, g++) and the kernels (.cu, nvcc), so it includes
// nothing but the CUDA runtime (no fmt, no aero/error.h). Every launcher queues its work on
// `stream` and returns the launch's status; the host side turns a failure into aero::Error.
// Sizes are checked by the host before a launch: launchers trust them.
#pragma once

#include <cstdint>

#include <cuda_runtime.h>

namespace aero::backend::cuda::kernels {

// Compiles for this GPU? Launches an empty kernel: cudaErrorNoKernelImageForDevice when the
// build has no code for the GPU's architecture.
cudaError_t probe(cudaStream_t stream);
// Reads `bytes` (a multiple of 16, 16-byte aligned) once with `blocks` blocks: the bandwidth
// probe's kernel. `sink` is device memory it may write.
cudaError_t read_all(const void* data, std::size_t bytes, int blocks, unsigned* sink, cudaStream_t stream);

// y = x / rms(x) · weight per row of `width`; y may be x.
cudaError_t rms_norm(const float* x, const float* weight, std::int64_t width, std::int64_t rows, float eps, float* y,
                     cudaStream_t stream);
// x[r] += bias for `rows` rows of `width`.
cudaError_t add_bias(float* x, const float* bias, std::int64_t width, std::int64_t rows, cudaStream_t stream);
// x += y
cudaError_t add(float* x, const float* y, std::int64_t count, cudaStream_t stream);
// out = silu(gate) · up; out may be gate or up.
cudaError_t silu_mul(const float* gate, const float* up, std::int64_t count, float* out, cudaStream_t stream);
// out = gelu_tanh(gate) · up; out may be gate or up.
cudaError_t gelu_tanh_mul(const float* gate, const float* up, std::int64_t count, float* out, cudaStream_t stream);
// x *= factor
cudaError_t scale(float* x, std::int64_t count, float factor, cudaStream_t stream);
// x = cap · tanh(x / cap)
cudaError_t softcap(float* x, std::int64_t count, float cap, cudaStream_t stream);
// dst[i] = src[rows[i]] (rows of `width` floats, `count` of them; rows in device memory).
cudaError_t gather_rows(const float* src, const std::int32_t* rows, std::int64_t count, std::int64_t width, float* dst,
                        cudaStream_t stream);
// dst[rows[i]] += weights[i] · src[i]; the rows of one call are distinct (no two threads add to
// one element).
cudaError_t scatter_add_rows(const float* src, const std::int32_t* rows, const float* weights, std::int64_t count,
                             std::int64_t width, float* dst, cudaStream_t stream);
// Rotates n × heads heads of head_dim by cos_sin ([token][pair][cos, sin]): pairs (i, i + d/2)
// when `half_split`, else (2i, 2i + 1).
cudaError_t rope(float* x, std::int64_t n, std::int64_t heads, std::int64_t head_dim, const float* cos_sin,
                 bool half_split, cudaStream_t stream);

// The key/value cache of one layer as attention reads it: keys then values, each
// [kv_heads][slots × capacity][row], a row `row_bytes` of head_dim elements in `format`;
// cache row slot × capacity + position holds that position of that slot's sequence.
enum class KvFormat : int { F32 = 0, F16 = 1, Q8_0 = 2 };
struct KvLayer {
  std::uint8_t* keys = nullptr;    // device: key head 0, position 0
  std::uint8_t* values = nullptr;  // device: value head 0, position 0
  KvFormat format = KvFormat::F16;
  int kv_heads = 0, head_dim = 0;
  std::int64_t row_bytes = 0, head_bytes = 0;  // head_bytes = row_bytes × slots × capacity
};

// Stores n tokens' keys and values (n × kv_heads × head_dim f32) at cache rows rows[t].
cudaError_t kv_store(const KvLayer& layer, const float* k, const float* v, const std::int32_t* rows, std::int64_t n,
                     cudaStream_t stream);

// Causal attention of n tokens' queries (n × heads × head_dim) over the cache, query head h
// reading key/value head h / (heads / kv_heads), token t positions 0..positions[t] of its
// slot (only the last `window` of them when window > 0); scores scaled by `scale`, then
// soft-capped to softcap · tanh(score / softcap) when softcap > 0. Query row t × group + j is head j of token t's group. One
// flash-style pass (online softmax) per tile of query rows of one slot, `tiles` giving per
// block (first query row, rows ≤ kAttentionRows, the slot's first cache row); with `splits` > 1
// each block covers `split_len` positions and a second kernel combines the partial results
// through `scratch` (attention_scratch_floats() floats).
struct AttentionCall {
  KvLayer layer;
  const float* q = nullptr;
  float* out = nullptr;
  const std::int32_t* positions = nullptr;  // device, n
  const std::int32_t* tiles = nullptr;      // device, 3 × tile_count
  int tile_count = 0;
  std::int64_t n = 0;
  int heads = 0;
  float scale = 1;
  float softcap = 0;
  int window = 0;
  int max_len = 0;  // max(positions) + 1
  int splits = 1, split_len = 0;
  float* scratch = nullptr;
};
// Query rows one block takes (token, head-of-group pairs) and keys per tile.
inline constexpr int kAttentionRows = 16;
inline constexpr int kAttentionKeys = 32;
// Heads the kernel takes: a multiple of 4 (rows are read four elements at a time), at most
// 256 (each thread sums two columns). The host refuses others when the cache is made.
inline constexpr int kAttentionMaxHeadDim = 256;
std::int64_t attention_scratch_floats(std::int64_t n, int heads, int head_dim, int splits);
// Shared memory one block needs for head_dim.
std::size_t attention_shared_bytes(int head_dim);
cudaError_t attention(const AttentionCall& call, cudaStream_t stream);

}  // namespace aero::backend::cuda::kernels
