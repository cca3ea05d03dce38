// The AVX2 kernels recompiled for AVX-512 machines: VNNI's single-instruction u8·s8 dot
// replaces maddubs + madd, and the compiler may use the wider register file.
#define AERO_DPBUSD 1
#include "backend/cpu/avx512_intrinsics.h"
#include "backend/cpu/dot_simd.inc"

namespace aero::backend::cpu {
DotKernels avx512_kernels() {
  DotKernels k{dot_f32, dot_f16, dot_bf16, dot_q8_0, dot_q4_0, dot_q4_k, dot_q6_k, axpy<F32Load>, axpy<F16Load>, q_tile<false>, q_tile<true>,
               float_tile<F32Load>, float_tile<F16Load>, float_tile<Bf16Load>};
  k.gemm = avx512_gemm;
  k.act_q4_0 = q4_0_pairs_layout();
  k.act_q4_k = q8_k_nibble_pairs_layout();
  k.attend_f32 = attend<F32Load>;
  k.silu_mul = silu_mul;
  k.attend_f16 = attend<F16Load>;
  // The generic block kernels take Q8_0 (measured faster than this set's: one thread 28-35
  // against 18-19 GB/s on Zen 5) and Q5_K, unless VBMI's kernel takes it.
  k.q8_0 = nullptr;
  k.tile_q8_0 = nullptr;
  k.block_rows = avx512_block_rows;
  if (cpu_has_avx512_vbmi()) use_vbmi_kernels(k);
  if (cpu_has_avx512_bf16()) use_bf16_kernels(k);
  return k;
}
}  // namespace aero::backend::cpu
