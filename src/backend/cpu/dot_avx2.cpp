#define AERO_ROW_BY_ROW 1  // see dot_simd.inc: measured on Zen 3
#include "backend/cpu/dot_simd.inc"

namespace aero::backend::cpu {
DotKernels avx2_kernels() {
  DotKernels k{dot_f32, dot_f16, dot_bf16, dot_q8_0, dot_q4_0, dot_q4_k, dot_q6_k, axpy<F32Load>, axpy<F16Load>, q_tile<false>, q_tile<true>,
               float_tile<F32Load>, float_tile<F16Load>, float_tile<Bf16Load>};
  k.act_q4_0 = q4_0_pairs_layout();
  k.act_q4_k = q8_k_nibble_pairs_layout();
  k.q5_k = dot_q5_k;
  k.act_q5_k = q8_k_nibble_pairs_layout();
  k.attend_f32 = attend<F32Load>;
  k.silu_mul = silu_mul;
  k.attend_f16 = attend<F16Load>;
  k.block_rows = avx2_block_rows;
  k.gemm = avx2_gemm;
  return k;
}
}  // namespace aero::backend::cpu
