// The launchers of the product kernels (matmul_gemv.cu, matmul_dequant.cu) as plain functions:
// the one header between the host logic (matmul.cpp, g++, which checks shapes and throws) and
// the .cu files (nvcc, which include neither fmt nor aero/error.h). Launchers check nothing the
// host has checked; they return the launch's cudaError_t.
#pragma once

#include <cstddef>
#include <cstdint>

#include <cuda_runtime.h>

namespace aero::backend::cuda::kernels {

// The formats the kernels read as stored (ggml block layouts, see src/quant/decode_scalar.cpp).
enum class Format : int { F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K };

struct Geometry {
  int block_elements;
  int block_bytes;
  bool integer;  // dotted on 8-bit activations (__dp4a) rather than in f32
};

constexpr Geometry geometry(Format f) {
  switch (f) {
    case Format::F32: return {1, 4, false};
    case Format::F16: return {1, 2, false};
    case Format::BF16: return {1, 2, false};
    case Format::Q4_0: return {32, 18, true};
    case Format::Q4_1: return {32, 20, true};
    case Format::Q5_0: return {32, 22, true};
    case Format::Q5_1: return {32, 24, true};
    case Format::Q8_0: return {32, 34, true};
    case Format::Q2_K: return {256, 84, true};
    case Format::Q3_K: return {256, 110, true};
    case Format::Q4_K: return {256, 144, true};
    case Format::Q5_K: return {256, 176, true};
    case Format::Q6_K: return {256, 210, true};
  }
  return {1, 4, false};
}

// ---- activations ----------------------------------------------------------------------------
// q8_1-style activations for the integer formats: for each token t and each 32 columns j,
// xq[t * cols + c] = round(x / d) (int8) and xds[t * cols / 32 + j] = {d, d * sum of the 32 q},
// d = max |x| / 127. One launch per call, shared by every matrix of a group.
cudaError_t quantize_q8_1(const float* x, std::int64_t n, std::int64_t cols, std::int8_t* xq, float2* xds,
                          cudaStream_t stream);
// x (count f32) rounded to f16 (bf16 = false) or bf16, to nearest even.
cudaError_t convert_activations(const float* x, std::int64_t count, void* out, bool bf16, cudaStream_t stream);

// ---- decode: matrix-vector products on 1..kGemvTokens tokens ------------------------------------
inline constexpr int kGemvTokens = 8;  // tokens one launch takes; more go in several launches
inline constexpr int kGemvGroup = 8;   // matrices of one format one launch takes
inline constexpr int kTileRows = 32;   // rows of one thread block: one row per lane

struct GemvMatrix {
  const std::uint8_t* data;  // device, 16-byte aligned
  float* y;                  // device, n × rows, row-major (already offset to the first token)
  std::int64_t rows;
  std::int64_t tile_begin;   // index of its first 32-row tile among the launch's tiles
};

struct GemvLaunch {
  Format format = Format::F32;
  int count = 0;  // matrices, all of `format` and `cols` columns
  GemvMatrix m[kGemvGroup] = {};
  std::int64_t tiles = 0;  // 32-row tiles of all matrices
  std::int64_t cols = 0;
  std::size_t row_bytes = 0;
  int n = 0;                 // tokens, 1..kGemvTokens
  const float* x = nullptr;  // float formats: n × cols f32
  const std::int8_t* xq = nullptr;  // integer formats: quantize_q8_1's output for these tokens
  const float2* xds = nullptr;
  // Aligned: every row starts 16-byte aligned (row_bytes % 16 == 0) and so does x: the kernel
  // then knows each block's place in shared memory at compile time; otherwise it finds it at run
  // time (any even alignment).
  bool aligned = false;
  int warps = 8;   // warps per block, each a slice of the columns
  int splits = 1;  // thread blocks per tile (more column slices), summed by the last to finish
  float* partials = nullptr;       // splits > 1: tiles × splits × kGemvTokens × 32 floats
  unsigned* counters = nullptr;    // splits > 1: tiles counters, zero between launches
};

struct DeviceLimits {
  int sms = 0;
  std::size_t smem_per_sm = 0;
  std::size_t smem_per_block_optin = 0;
  std::size_t smem_reserved_per_block = 0;
};

// Warps per block and blocks per tile for a product of `tiles` 32-row tiles of `cols` columns.
struct GemvPlan {
  int warps;
  int splits;
};
GemvPlan plan_gemv(Format format, std::int64_t tiles, std::int64_t cols, const DeviceLimits& limits);

cudaError_t gemv(const GemvLaunch& launch, cudaStream_t stream);

// ---- prefill: weights to f16 for cuBLAS -------------------------------------------------------
// Rows [row_begin, row_begin + rows) of a quantized matrix decoded to f16, row-major, `cols`
// apart (out holds rows × cols halves).
cudaError_t dequantize_f16(Format format, const std::uint8_t* data, std::size_t row_bytes, std::int64_t row_begin,
                           std::int64_t rows, std::int64_t cols, void* out, cudaStream_t stream);

}  // namespace aero::backend::cuda::kernels
