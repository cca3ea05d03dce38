// The decode kernel (see matmul_gemv.cu for its design) as a template, instantiated per format
// by matmul_gemv_float.cu, matmul_gemv_legacy.cu, matmul_gemv_k23.cu and matmul_gemv_k456.cu so
// that they compile in parallel.
#pragma once

#include <cstdint>
#include <type_traits>

#include "backend/cuda/matmul_formats.cuh"
#include "backend/cuda/matmul_kernels.h"

namespace aero::backend::cuda::kernels {

// One launcher per format (defined in the files above).
cudaError_t gemv_f32(const GemvLaunch& p, cudaStream_t stream);
cudaError_t gemv_f16(const GemvLaunch& p, cudaStream_t stream);
cudaError_t gemv_bf16(const GemvLaunch& p, cudaStream_t stream);
cudaError_t gemv_q4_0(const GemvLaunch& p, cudaStream_t stream);
cudaError_t gemv_q4_1(const GemvLaunch& p, cudaStream_t stream);
cudaError_t gemv_q5_0(const GemvLaunch& p, cudaStream_t stream);
cudaError_t gemv_q5_1(const GemvLaunch& p, cudaStream_t stream);
cudaError_t gemv_q8_0(const GemvLaunch& p, cudaStream_t stream);
cudaError_t gemv_q2_k(const GemvLaunch& p, cudaStream_t stream);
cudaError_t gemv_q3_k(const GemvLaunch& p, cudaStream_t stream);
cudaError_t gemv_q4_k(const GemvLaunch& p, cudaStream_t stream);
cudaError_t gemv_q5_k(const GemvLaunch& p, cudaStream_t stream);
cudaError_t gemv_q6_k(const GemvLaunch& p, cudaStream_t stream);

namespace gemv_detail {


using namespace dev;

constexpr int kStages = 3;  // ring depth: kStages - 1 stages in flight while one is computed

template <class F>
struct Stage {
  static constexpr int kBytes = F::B * F::BB;              // a row's segment
  static constexpr int kPieces = (kBytes + 14 + 15) / 16;  // 16-byte pieces covering it at any even phase
  // A row's slot: the pieces and one more (a word is read past the last byte used), an odd
  // number of 16-byte units so that 8 lanes' 16-byte loads at one offset take distinct banks.
  static constexpr int kSlot = 16 * ((kPieces + 1) % 2 == 1 ? kPieces + 1 : kPieces + 2);
  static constexpr int kStageBytes = kTileRows * kSlot;
  static constexpr int kWarpBytes = kStages * kStageBytes;
};

constexpr int gcd16(int v) { return (v & 15) == 0 ? 16 : (v & 7) == 0 ? 8 : (v & 3) == 0 ? 4 : (v & 1) == 0 ? 2 : 1; }

__device__ __forceinline__ void cp_async16(void* smem_dst, const void* src) {
  const auto dst = static_cast<unsigned>(__cvta_generic_to_shared(smem_dst));
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;" ::"r"(dst), "l"(src) : "memory");
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;" ::: "memory"); }
template <int N>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;" ::"n"(N) : "memory");
}

template <class F, int NT, class R, class A>
__device__ __forceinline__ void block_dot(const R& r, const A& act, std::int64_t c, float (&acc)[NT]) {
  if constexpr (F::kInteger) F::template dot<NT>(r, act, c, acc);
  else float_dot<F, NT>(r, act, c, acc);
}

// One stage of a lane's row, its first block at the compile-time offset PH of the slot.
template <class F, int NT, int PH, class A>
__device__ __forceinline__ void stage_static(const uint4* slot, int nblk, std::int64_t b0, const A& act, float (&acc)[NT]) {
  static_for<0, F::B>([&](auto k) {
    constexpr int K = decltype(k)::value;
    if (K < nblk) block_dot<F, NT>(SmemStaticReader<PH + K * F::BB>{slot}, act, (b0 + K) * F::BE, acc);
  });
}

// The phase (the segment's place modulo 16, a multiple of gcd(block bytes, 16)) to its code.
template <class F, int NT, int PH = 0, class A>
__device__ __forceinline__ void stage_by_phase(int phase, const uint4* slot, int nblk, std::int64_t b0, const A& act,
                                               float (&acc)[NT]) {
  if constexpr (PH < 16) {
    if (PH + gcd16(F::BB) >= 16 || phase == PH) stage_static<F, NT, PH>(slot, nblk, b0, act, acc);
    else stage_by_phase<F, NT, PH + gcd16(F::BB)>(phase, slot, nblk, b0, act, acc);
  }
}

template <class F, int NT, class A>
__device__ __forceinline__ void stage_dynamic(const std::uint32_t* words, unsigned base, int nblk, std::int64_t b0,
                                              const A& act, float (&acc)[NT]) {
#pragma unroll
  for (int k = 0; k < F::B; ++k)
    if (k < nblk) block_dot<F, NT>(SmemDynamicReader(words, base + k * F::BB), act, (b0 + k) * F::BE, acc);
}

template <class F, int NT, bool ALIGNED>
__global__ void __launch_bounds__(256, 2) gemv_kernel(const GemvLaunch p) {
  using St = Stage<F>;
  constexpr int P = St::kPieces, SB = St::kSlot, STAGE = St::kStageBytes;
  extern __shared__ uint4 smem[];
  auto* smem_bytes = reinterpret_cast<std::uint8_t*>(smem);
  const int lane = static_cast<int>(threadIdx.x & 31), warp = static_cast<int>(threadIdx.x >> 5);
  const int warps = static_cast<int>(blockDim.x >> 5);

  // This block's tile and matrix.
  const std::int64_t tile = blockIdx.x / p.splits;
  const int split = static_cast<int>(blockIdx.x % p.splits);
  const std::uint8_t* data = p.m[0].data;
  float* y = p.m[0].y;
  std::int64_t rows = p.m[0].rows, first_tile = 0;
#pragma unroll
  for (int i = 1; i < kGemvGroup; ++i)
    if (i < p.count && tile >= p.m[i].tile_begin) data = p.m[i].data, y = p.m[i].y, rows = p.m[i].rows, first_tile = p.m[i].tile_begin;
  const std::int64_t row0 = (tile - first_tile) * kTileRows;
  const std::int64_t row = row0 + lane;
  const std::size_t rb = p.row_bytes;
  const std::uint8_t* mat_end = data + rows * static_cast<std::int64_t>(rb);

  // This warp's column slice, in blocks (16-byte pieces of floats).
  const std::int64_t nb = F::kInteger ? p.cols / F::BE : (static_cast<std::int64_t>(rb) + 15) / 16;
  const int slices = p.splits * warps, slice = split * warps + warp;
  const std::int64_t kb = nb * slice / slices, ke = nb * (slice + 1) / slices;
  const int stages = static_cast<int>((ke - kb + F::B - 1) / F::B);
  std::uint8_t* ring = smem_bytes + static_cast<std::size_t>(warp) * St::kWarpBytes;

  // Stage s of all 32 rows into its slot: row r's segment starts at byte (address & 15) of the
  // row's slot. Flat index f = 32i + lane over (row r, piece q) = (f / P, f % P): consecutive
  // lanes take consecutive pieces of a row.
  const auto tile_rows = static_cast<int>(rows - row0 < kTileRows ? rows - row0 : kTileRows);
  const std::uint8_t* tile_data = data + row0 * static_cast<std::int64_t>(rb);
  auto issue = [&](int s) {
    if (s < stages) {
      const std::int64_t b0 = kb + static_cast<std::int64_t>(s) * F::B;
      const int len = static_cast<int>(ke - b0 < F::B ? ke - b0 : F::B) * F::BB;
      std::uint8_t* slot0 = ring + (s % kStages) * STAGE;
      if constexpr (ALIGNED) {
        // Every row's segment has the same place modulo 16 and the matrix ends on a 16-byte
        // boundary: no piece crosses it.
        const std::int64_t off = b0 * F::BB;
        const std::uint8_t* base = tile_data + (off & ~std::int64_t{15});
        const int pieces = static_cast<int>(((off & 15) + len + 15) >> 4);
#pragma unroll
        for (int i = 0; i < P; ++i) {
          const int f = i * 32 + lane, r = f / P, q = f % P;
          if (r < tile_rows && q < pieces)
            cp_async16(slot0 + r * SB + 16 * q, base + static_cast<std::uint32_t>(r) * static_cast<std::uint32_t>(rb) + 16 * q);
        }
      } else {
        // Pieces past the matrix's end are copied byte by byte up to it.
#pragma unroll
        for (int i = 0; i < P; ++i) {
          const int f = i * 32 + lane, r = f / P, q = f % P;
          if (r < tile_rows) {
            const std::uint8_t* a = tile_data + r * static_cast<std::int64_t>(rb) + b0 * F::BB;
            const auto* src = reinterpret_cast<const std::uint8_t*>(reinterpret_cast<std::uintptr_t>(a) & ~std::uintptr_t{15}) + 16 * q;
            if (src < a + len) {
              std::uint8_t* dst = slot0 + r * SB + 16 * q;
              if (src + 16 <= mat_end) {
                cp_async16(dst, src);
              } else {
                for (int b = 0; b < 16; ++b)
                  if (src + b < mat_end) dst[b] = src[b];
              }
            }
          }
        }
      }
    }
    cp_async_commit();  // empty groups too: the wait below counts groups
  };

  using Act = std::conditional_t<F::kInteger, IntAct, FloatAct<ALIGNED>>;
  Act act;
  if constexpr (F::kInteger) act = IntAct{p.xq, p.xds, p.cols, p.n};
  else act = FloatAct<ALIGNED>{p.x, p.cols, p.n};

  float acc[NT];
#pragma unroll
  for (int t = 0; t < NT; ++t) acc[t] = 0.0f;

  const auto* words = reinterpret_cast<const std::uint32_t*>(smem);
#pragma unroll
  for (int s = 0; s < kStages - 1; ++s) issue(s);
  for (int s = 0; s < stages; ++s) {
    issue(s + kStages - 1);
    cp_async_wait<kStages - 1>();
    __syncwarp();
    if (row < rows) {
      const std::int64_t b0 = kb + static_cast<std::int64_t>(s) * F::B;
      const int nblk = static_cast<int>(ke - b0 < F::B ? ke - b0 : F::B);
      const std::uint8_t* slot = ring + (s % kStages) * STAGE + lane * SB;
      if constexpr (ALIGNED) {
        stage_by_phase<F, NT>(static_cast<int>((b0 * F::BB) & 15), reinterpret_cast<const uint4*>(slot), nblk, b0, act, acc);
      } else {
        const auto phase = static_cast<unsigned>(reinterpret_cast<std::uintptr_t>(data + row * static_cast<std::int64_t>(rb) + b0 * F::BB) & 15);
        stage_dynamic<F, NT>(words, static_cast<unsigned>(slot - smem_bytes) + phase, nblk, b0, act, acc);
      }
    }
    __syncwarp();
  }
  cp_async_wait<0>();

  // The warps' partial sums, [warp][token][lane], then one sum per (token, row).
  __syncthreads();
  float* red = reinterpret_cast<float*>(smem);
#pragma unroll
  for (int t = 0; t < NT; ++t) red[(warp * NT + t) * 32 + lane] = acc[t];
  __syncthreads();
  const int n = p.n;
  float* part = p.splits > 1 ? p.partials + (tile * p.splits + split) * (kGemvTokens * 32) : nullptr;
  for (int i = static_cast<int>(threadIdx.x); i < NT * 32; i += static_cast<int>(blockDim.x)) {
    const int t = i >> 5, l = i & 31;
    float s = 0.0f;
    for (int w = 0; w < warps; ++w) s += red[(w * NT + t) * 32 + l];
    if (p.splits == 1) {
      if (t < n && row0 + l < rows) y[t * rows + row0 + l] = s;
    } else {
      __stcg(part + i, s);
    }
  }
  if (p.splits == 1) return;

  // Split tiles: the last block to finish sums the partials in split order.
  __shared__ bool last;
  __threadfence();
  __syncthreads();
  if (threadIdx.x == 0) last = atomicAdd(p.counters + tile, 1u) == static_cast<unsigned>(p.splits - 1);
  __syncthreads();
  if (!last) return;
  __threadfence();
  const float* parts = p.partials + tile * p.splits * (kGemvTokens * 32);
  for (int i = static_cast<int>(threadIdx.x); i < NT * 32; i += static_cast<int>(blockDim.x)) {
    const int t = i >> 5, l = i & 31;
    if (t < n && row0 + l < rows) {
      float s = 0.0f;
      for (int sp = 0; sp < p.splits; ++sp) s += __ldcg(parts + sp * (kGemvTokens * 32) + i);
      y[t * rows + row0 + l] = s;
    }
  }
  if (threadIdx.x == 0) p.counters[tile] = 0;
}

template <class F>
constexpr std::size_t warp_bytes() {
  return Stage<F>::kWarpBytes;
}

template <class F, int NT, bool ALIGNED>
cudaError_t launch(const GemvLaunch& p, cudaStream_t stream) {
  const std::size_t reduce = static_cast<std::size_t>(p.warps) * NT * 32 * sizeof(float);
  const std::size_t ring = static_cast<std::size_t>(p.warps) * warp_bytes<F>();
  const std::size_t smem = ring > reduce ? ring : reduce;
  auto* kernel = gemv_kernel<F, NT, ALIGNED>;
  // Raise the kernel's dynamic shared-memory limit once to what this launch needs (a host-side
  // setting, done before any capture by the warm-up calls).
  static std::size_t raised = 0;
  if (smem > raised) {
    if (cudaError_t e = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem));
        e != cudaSuccess)
      return e;
    raised = smem;
  }
  kernel<<<static_cast<unsigned>(p.tiles * p.splits), static_cast<unsigned>(p.warps * 32), smem, stream>>>(p);
  return cudaGetLastError();
}

template <class F, int NT>
cudaError_t launch_tokens(const GemvLaunch& p, cudaStream_t stream) {
  return p.aligned ? launch<F, NT, true>(p, stream) : launch<F, NT, false>(p, stream);
}

template <class F>
cudaError_t launch_format(const GemvLaunch& p, cudaStream_t stream) {
  if (p.n <= 1) return launch_tokens<F, 1>(p, stream);
  if (p.n <= 2) return launch_tokens<F, 2>(p, stream);
  if (p.n <= 4) return launch_tokens<F, 4>(p, stream);
  return launch_tokens<F, 8>(p, stream);
}

}  // namespace gemv_detail
}  // namespace aero::backend::cuda::kernels
