// This machine's f32 multiply-add throughput, measured: the ceiling prompt processing is judged
// against (a batch of tokens reuses each weight many times, so its products are compute-bound).
#pragma once

#include "aero/backend/thread_pool.h"

namespace aero::backend {

// GFLOP/s (a multiply-add counts as two) with every pool thread running independent chains of
// fused multiply-adds on the widest vectors the CPU kernels use; the fastest of `runs` passes.
double measure_f32_peak(ThreadPool& pool, int runs = 5);

}  // namespace aero::backend
