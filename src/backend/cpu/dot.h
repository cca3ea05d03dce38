// Dot products of weight rows with the prepared activations, one set per instruction set.
// A call handles `rows` (1 to kMaxRows) consecutive rows `stride` bytes apart and writes one
// sum per row to `out`: several rows per pass share the activation loads and give the CPU
// independent accumulation chains. `x` is the f32 activation row, `xq` the same row prepared
// for the integer kernels as the kernel set's ActivationLayout for that format says.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <utility>

#include "aero/backend/cpu_gemv.h"
#include "quant/half.h"

namespace aero::backend::cpu {

inline constexpr int kMaxRows = 4;

// Row kernels prefetch the bytes at the same offset `rows` × prefetch_calls_ahead rows ahead:
// the rows a call reads lie one after another, and the next call reads the `rows` rows after
// them. Each row alone is a short stream (1-3 KiB) that the hardware prefetcher picks up too
// late on some CPUs, so without this every call began with its rows' first lines missing in
// cache (measured on Zen 5: Q4_0 GEMV at 9 GB/s of one core's 38; 38 GB/s with it), while on
// others (Zen 4 reading rows in sequence) it only costs. How far ahead, if at all, is part of
// the GEMV variant the calibration picks (GemvVariant); the product sets it on the thread that
// runs each task, so the kernels read it per call. 0: no software prefetch.
inline thread_local int prefetch_calls_ahead = 1;
inline void prefetch_next_rows(const std::uint8_t* p, std::size_t stride, int rows, int lines = 1) {
  if (!prefetch_calls_ahead) return;
  const std::size_t ahead = static_cast<std::size_t>(rows * prefetch_calls_ahead) * stride;
  for (int l = 0; l < lines; ++l) __builtin_prefetch(p + ahead + 64 * l, 0, 3);
}
using DotFn = void (*)(const std::uint8_t* w, std::size_t stride, int rows, const float* x, const std::uint8_t* xq,
                       std::int64_t n, float* out);

// y[i] += a · v[i] for a row v of f32 or f16 values: attention's weighted sum of values.
using AxpyFn = void (*)(const std::uint8_t* v, float a, float* y, std::int64_t n);

// The feed-forward gate: out[i] = silu(gate[i]) · up[i] = gate[i] / (1 + e^−gate[i]) · up[i]
// (out may be gate).
using SiluMulFn = void (*)(const float* gate, const float* up, std::int64_t n, float* out);

// Attention of `heads` query heads (q: heads × d, one after another) that share one key/value
// head, over cache rows 0..len-1 (`stride` bytes apart, f32 or f16): out[h] = softmax(scale ·
// q[h]·Kᵀ) · V, each scaled score s soft-capped to softcap · tanh(s / softcap) first when
// softcap > 0. Each key and value row is loaded once for all the heads. `scores` holds
// heads × len floats of scratch. (d a multiple of 8.)
using AttendFn = void (*)(const std::uint8_t* keys, const std::uint8_t* values, std::size_t stride, std::int64_t len,
                          const float* q, int heads, std::int64_t d, float scale, float softcap, float* out,
                          float* scores);

// A 4-row × 4-token tile of a batched product (prompt processing): out[t·out_stride + r]
// for weight rows r < 4 (`stride` bytes apart) and prepared activation rows t < 4
// (`xq_stride` bytes apart). Each weight block is unpacked once for the four tokens and each
// activation block loaded once for the four rows.
inline constexpr int kTileRows = 4, kTileTokens = 4;
using TileFn = void (*)(const std::uint8_t* w, std::size_t stride, const std::uint8_t* xq, std::size_t xq_stride,
                        std::int64_t n, float* out, std::size_t out_stride);

// How a kernel set wants one row of activations prepared for an integer weight format:
// the bytes one row takes and the function that fills them from the f32 row.
struct ActivationLayout {
  std::size_t (*bytes)(std::int64_t cols) = nullptr;
  void (*prepare)(const float* x, std::int64_t cols, std::uint8_t* out) = nullptr;
};
// The common layouts: Q8_0 blocks, and Q8_K blocks (which carry their own sums).
ActivationLayout q8_0_layout();
ActivationLayout q8_k_layout();
// The SIMD Q4_K/Q5_K row kernels' (dot_simd.inc): Q8_K blocks with each 64 columns' quants
// reordered as [0..15, 32..47, 16..31, 48..63], so that 32 bytes hold the first or the second
// 16 columns of two consecutive 32-column sub-blocks (as one load of those formats' nibbles,
// broadcast to both halves, gives them); the sixteen sums stay in column order.
ActivationLayout q8_k_nibble_pairs_layout();
// The SIMD Q4_0 row kernels' (dot_simd.inc): Q8_0 blocks (which the tiles read), then from
// q4_0_pairs_offset on, per chunk of 8 blocks (kQ4PairChunkBytes): the quants of block pairs
// (2p, 2p+1), p < 4, as 64 bytes [x_2p[0..15] x_2p+1[0..15] x_2p[16..31] x_2p+1[16..31]], the
// 8 blocks' scales dx (f32), then their 8·dx·Σx (f32), each in the order of blocks 0, 2, 4, 6,
// 1, 3, 5, 7; blocks past the row's end are zero.
ActivationLayout q4_0_pairs_layout();
inline constexpr std::size_t kQ4PairChunkBytes = 320;
inline std::size_t q4_0_pairs_offset(std::int64_t cols) { return static_cast<std::size_t>((cols / 32 * 34 + 31) / 32 * 32); }

// The generic block kernels' activations (rows_avx512.cpp, rows_avx2.cpp): the int8 quants of
// every column (Q8_K when `q8k`, else Q8_0, as ggml pairs the format; zero up to a multiple of
// 64), then per `sub`-column sub-block the scale dx of the activation block it lies in, then
// dx·Σx over the sub-block (sub is 16 or 32).
ActivationLayout sub_block_layout(bool q8k, int sub);
inline std::size_t sub_block_quant_bytes(std::int64_t cols) { return static_cast<std::size_t>((cols + 63) / 64 * 64); }

// A row kernel with the layout of the activations it reads.
struct RowKernel {
  DotFn dot = nullptr;
  ActivationLayout act;
};

// A batched product for prompt processing on packed panels (gemm_avx512.cpp, gemm_avx2.cpp):
// y[t][r] for `rows` weight rows (best a multiple of row_block) and n tokens. The activations come
// prepared either token by token (`act`, the block formats), as a whole batch
// (`batch_bytes`/`batch_prepare`, called once per block of `batch_tokens` tokens: AVX-512's
// floats), or not at all (neither: the f32 rows themselves, AVX2's floats).
inline constexpr int kGemmRows = 32;
// Below this many tokens a batched product runs the row kernels: unpacking weights for a panel
// costs about as much as a few tokens' worth of its products.
inline constexpr std::int64_t kGemmMinTokens = 8;
struct GemmKernel {
  ActivationLayout act;
  std::size_t (*batch_bytes)(std::int64_t n, std::int64_t cols) = nullptr;
  void (*batch_prepare)(const float* x, std::int64_t n, std::int64_t cols, std::uint8_t* out, std::int64_t block) = nullptr;
  std::int64_t batch_tokens = 0;
  std::int64_t row_block = kGemmRows;  // rows a task should be a multiple of
  void (*run)(const std::uint8_t* w, std::size_t stride, std::int64_t rows, std::int64_t cols, const std::uint8_t* x,
              std::size_t x_stride, std::int64_t n, float* y, std::size_t y_stride) = nullptr;
};

// The entry of `type` in a table of (format, kernel) pairs, or null.
template <class K, std::size_t N>
const K* find_kernel(const std::pair<quant::GgmlType, K> (&table)[N], quant::GgmlType type) {
  for (const auto& [format, kernel] : table)
    if (format == type) return &kernel;
  return nullptr;
}

struct DotKernels {
  DotFn f32 = nullptr;
  DotFn f16 = nullptr;
  DotFn bf16 = nullptr;
  DotFn q8_0 = nullptr;
  DotFn q4_0 = nullptr;
  DotFn q4_k = nullptr;
  DotFn q6_k = nullptr;
  AxpyFn axpy_f32 = nullptr;
  AxpyFn axpy_f16 = nullptr;
  TileFn tile_q8_0 = nullptr;  // null: the batched product calls the row kernels per token
  TileFn tile_q4_0 = nullptr;
  TileFn tile_f32 = nullptr;  // float tiles take the f32 activation rows as `xq`
  TileFn tile_f16 = nullptr;
  TileFn tile_bf16 = nullptr;
  TileFn tile_q4_k = nullptr;  // (kept after the positional initializers of the kernel sets)
  // How each integer kernel (and its tile) takes its activations.
  ActivationLayout act_q8_0 = q8_0_layout();
  ActivationLayout act_q4_0 = q8_0_layout();
  ActivationLayout act_q4_k = q8_k_layout();
  ActivationLayout act_q6_k = q8_k_layout();
  AttendFn attend_f32 = nullptr;  // null: attention goes head by head through the row kernels
  AttendFn attend_f16 = nullptr;
  DotFn q5_k = nullptr;  // Q8_K activations as act_q5_k lays them out
  TileFn tile_q5_k = nullptr;
  ActivationLayout act_q5_k = q8_k_layout();
  ActivationLayout act_bf16 = {};  // none: the bf16 kernel reads the f32 row
  SiluMulFn silu_mul = nullptr;  // null: a scalar loop with std::exp
  // Batched products on packed panels, per weight format (null: none, or for this format).
  const GemmKernel* (*gemm)(quant::GgmlType) = nullptr;
  // Row kernels of the formats with no kernel above (null: none, or for this format).
  const RowKernel* (*block_rows)(quant::GgmlType) = nullptr;
};

// The kernel set's row kernel for a format: its own field, else its generic block kernels
// (no dot: none on this set).
RowKernel row_kernel(quant::GgmlType type, const DotKernels& k);
// The row kernel of one token's product of `type` with the `isa` set under `variant`: the
// 256-bit one when the variant is narrow and the AVX2 set has it (see GemvVariant).
RowKernel gemv_row_kernel(quant::GgmlType type, Isa isa, const GemvVariant& variant);
// Rows per kernel call in one token's product: 1 where rows are read in sequence, else kMaxRows.
inline int gemv_rows_per_call(const GemvVariant& v) { return v.order == RowOrder::Sequence ? 1 : kMaxRows; }

DotKernels scalar_kernels();
DotKernels avx2_kernels();    // built with -mavx2 -mfma -mf16c
DotKernels avx512_kernels();  // built with AVX-512 F/BW/VL/VNNI
// With VBMI's byte permutes as well: Q8_0, Q4_0, Q4_K and Q6_K kernels on 512-bit registers
// that gather the quants and scales of several blocks per instruction (dot_avx512_vbmi.cpp).
void use_vbmi_kernels(DotKernels& k);
bool cpu_has_avx512_vbmi();
const GemmKernel* avx512_gemm(quant::GgmlType type);
// With AVX512_BF16 as well: BF16 weights' row kernel and panels on VDPBF16PS (bf16_avx512.cpp),
// which take the activations rounded to bf16 — on machines where rounds_bf16_activations().
void use_bf16_kernels(DotKernels& k);
const GemmKernel* avx512_bf16_gemm(quant::GgmlType type);  // avx512_gemm's, BF16's replaced
bool cpu_has_avx512_bf16();
bool rounds_bf16_activations(Isa isa);
const GemmKernel* avx2_gemm(quant::GgmlType type);  // gemm_avx2.cpp
const RowKernel* avx512_block_rows(quant::GgmlType type);  // rows_avx512.cpp
const RowKernel* avx2_block_rows(quant::GgmlType type);    // rows_avx2.cpp
// Q8_0 / Q8_K blocks of a row, identical to the reference quantizer's (AVX-512 F machines only).
void quantize_q8_0_avx512(const float* x, std::int64_t cols, std::uint8_t* blocks);
void quantize_q8_k_avx512(const float* x, std::int64_t cols, std::uint8_t* blocks);
// The same on AVX2 machines (quantize_avx2.cpp).
void quantize_q8_0_avx2(const float* x, std::int64_t cols, std::uint8_t* blocks);
void quantize_q8_k_avx2(const float* x, std::int64_t cols, std::uint8_t* blocks);
// A row of activations as Q8_K (`q8k`) or Q8_0 blocks: the widest vector quantizer the CPU
// runs, else the reference. Every kernel quantizes its activations through here.
void quantize_activations(bool q8k, const float* x, std::int64_t cols, std::uint8_t* blocks);
// The same row in a buffer of the calling thread's (valid until its next call), read block by
// block: block b's int8 quants (256 of Q8_K, or 32 of Q8_0) and their scale. For the layouts
// that rearrange the quants and add terms of their own.
struct ActivationBlocks {
  bool q8k;
  const std::uint8_t* data;
  std::size_t block_bytes() const { return q8k ? 292 : 34; }
  const std::int8_t* quants(std::int64_t b) const {
    return reinterpret_cast<const std::int8_t*>(data + static_cast<std::size_t>(b) * block_bytes() + (q8k ? 4 : 2));
  }
  float scale(std::int64_t b) const {
    const std::uint8_t* block = data + static_cast<std::size_t>(b) * block_bytes();
    if (!q8k) return quant::fp16_to_fp32(quant::load_u16(block));
    float d;
    std::memcpy(&d, block, 4);
    return d;
  }
};
ActivationBlocks quantize_activation_blocks(bool q8k, const float* x, std::int64_t cols);
const DotKernels& kernels(Isa isa);

}  // namespace aero::backend::cpu
