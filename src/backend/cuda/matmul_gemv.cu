// Decode products: y[t] = W · x[t] for 1..8 tokens, reading W's blocks as stored, once for all
// tokens.
//
// Shape of the work. A thread block takes a tile of 32 rows; lane i of every warp owns row i of
// the tile, and the block's warps (and, for matrices of few tiles, several blocks: `splits`)
// share out the row's blocks as column slices. The activations a warp needs are the same for all
// its lanes (one broadcast load serves 32 rows), each lane keeps one accumulator per token, and
// nothing is reduced across lanes: the warps' partial sums meet once, in shared memory, at the
// end of the tile (and across split blocks in a small buffer, summed in a fixed order by the last
// block to finish, so results are deterministic).
//
// Memory. Weight rows are not 16-byte multiples of blocks (Q4_0's are 18 bytes), so each warp
// streams its slice of the 32 rows through shared memory: a ring of three stages, each one
// segment of every row copied by cp.async in 16-byte pieces (consecutive lanes take consecutive
// pieces of a row: coalesced), two stages in flight while the third is computed. Each row's segment keeps its alignment modulo 16 in
// its slot. When every row starts 16-byte aligned (`aligned`: row_bytes % 16 == 0, as for the
// usual widths) the segment's place modulo 16 is the same for every row and is one of a few
// values: the kernel branches once per stage (uniformly) to code where every field's offset is a
// constant, so blocks are read with 16-byte shared loads, conflict-free (slots are an odd number
// of 16-byte units apart) and constant shifts. Otherwise the place is found per lane at run time
// and words are read with two 4-byte loads and a funnel shift.
//
// Arithmetic. Integer formats dot their codes against q8_1 activations (int8 + d + d·Σq per 32
// columns, made once per call by quantize_q8_1) with __dp4a, applying the block's scales (and
// minimums through d·Σq) in f32; float formats multiply in f32.
#include "backend/cuda/matmul_gemv.cuh"

namespace aero::backend::cuda::kernels {

using namespace dev;
using gemv_detail::warp_bytes;

namespace {

template <class Fn>
auto with_format(Format f, Fn&& fn) {
  switch (f) {
    case Format::F32: return fn(FF32{});
    case Format::F16: return fn(FF16{});
    case Format::BF16: return fn(FBF16{});
    case Format::Q4_0: return fn(FQ4_0{});
    case Format::Q4_1: return fn(FQ4_1{});
    case Format::Q5_0: return fn(FQ5_0{});
    case Format::Q5_1: return fn(FQ5_1{});
    case Format::Q8_0: return fn(FQ8_0{});
    case Format::Q2_K: return fn(FQ2_K{});
    case Format::Q3_K: return fn(FQ3_K{});
    case Format::Q4_K: return fn(FQ4_K{});
    case Format::Q5_K: return fn(FQ5_K{});
    case Format::Q6_K: return fn(FQ6_K{});
  }
  return fn(FF32{});
}

}  // namespace

GemvPlan plan_gemv(Format format, std::int64_t tiles, std::int64_t cols, const DeviceLimits& limits) {
  return with_format(format, [&](auto f) {
    using F = decltype(f);
    // Shared memory for two blocks per multiprocessor (an H100/H200 has 228 KiB: two blocks of
    // up to 8 warps for every format but Q4_K/Q5_K/Q6_K, whose wider stages fit 6, 5 and 4).
    std::size_t budget = limits.smem_per_sm / 2;
    budget = budget > limits.smem_reserved_per_block ? budget - limits.smem_reserved_per_block : budget;
    if (budget > limits.smem_per_block_optin) budget = limits.smem_per_block_optin;
    const std::int64_t nb = F::kInteger ? cols / F::BE : (cols * (F::BB / F::BE) + 15) / 16;
    const std::int64_t max_slices = nb / F::B > 0 ? nb / F::B : 1;  // a stage or more each
    std::int64_t warps = static_cast<std::int64_t>(budget / warp_bytes<F>());
    warps = warps < 1 ? 1 : warps > 8 ? 8 : warps;
    if (warps > max_slices) warps = max_slices;
    // Matrices of few tiles are also split across blocks, so that two blocks per multiprocessor
    // have work.
    const std::int64_t target = 2 * static_cast<std::int64_t>(limits.sms > 0 ? limits.sms : 1);
    std::int64_t splits = tiles >= target ? 1 : (target + tiles - 1) / tiles;
    const std::int64_t split_cap = max_slices / warps > 0 ? max_slices / warps : 1;
    if (splits > split_cap) splits = split_cap;
    if (splits > 16) splits = 16;
    return GemvPlan{static_cast<int>(warps), static_cast<int>(splits)};
  });
}

cudaError_t gemv(const GemvLaunch& p, cudaStream_t stream) {
  switch (p.format) {
    case Format::F32: return gemv_f32(p, stream);
    case Format::F16: return gemv_f16(p, stream);
    case Format::BF16: return gemv_bf16(p, stream);
    case Format::Q4_0: return gemv_q4_0(p, stream);
    case Format::Q4_1: return gemv_q4_1(p, stream);
    case Format::Q5_0: return gemv_q5_0(p, stream);
    case Format::Q5_1: return gemv_q5_1(p, stream);
    case Format::Q8_0: return gemv_q8_0(p, stream);
    case Format::Q2_K: return gemv_q2_k(p, stream);
    case Format::Q3_K: return gemv_q3_k(p, stream);
    case Format::Q4_K: return gemv_q4_k(p, stream);
    case Format::Q5_K: return gemv_q5_k(p, stream);
    case Format::Q6_K: return gemv_q6_k(p, stream);
  }
  return cudaErrorInvalidValue;
}

}  // namespace aero::backend::cuda::kernels
