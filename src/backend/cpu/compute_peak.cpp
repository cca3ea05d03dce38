#include "aero/backend/compute_peak.h"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <vector>

#include "aero/backend/cpu_gemv.h"
#include "backend/cpu/avx512_intrinsics.h"

namespace aero::backend {
namespace {

// Twelve independent chains: enough to cover the multiply-add latency (4-5 cycles) on two
// pipes. The factor and addend keep the values finite and normal. Returns a value that depends
// on every chain, so that none is optimized away.
constexpr int kChains = 12;
constexpr std::int64_t kSteps = 1 << 17;  // per task: ~0.5 ms
constexpr std::size_t kTasksPerThread = 16;  // small tasks: a late-waking thread costs little

__attribute__((target("avx2,fma"))) float chains_avx2() {
  __m256 a[kChains];
  for (int i = 0; i < kChains; ++i) a[i] = _mm256_set1_ps(1.0f + 0.01f * static_cast<float>(i));
  const __m256 b = _mm256_set1_ps(0.999f), c = _mm256_set1_ps(1e-3f);
  for (std::int64_t s = 0; s < kSteps; ++s) {
#pragma GCC unroll 12
    for (int i = 0; i < kChains; ++i) a[i] = _mm256_fmadd_ps(a[i], b, c);
  }
  __m256 sum = a[0];
  for (int i = 1; i < kChains; ++i) sum = _mm256_add_ps(sum, a[i]);
  return _mm256_cvtss_f32(sum);
}

__attribute__((target("avx512f"))) float chains_avx512() {
  __m512 a[kChains];
  for (int i = 0; i < kChains; ++i) a[i] = _mm512_set1_ps(1.0f + 0.01f * static_cast<float>(i));
  const __m512 b = _mm512_set1_ps(0.999f), c = _mm512_set1_ps(1e-3f);
  for (std::int64_t s = 0; s < kSteps; ++s) {
#pragma GCC unroll 12
    for (int i = 0; i < kChains; ++i) a[i] = _mm512_fmadd_ps(a[i], b, c);
  }
  __m512 sum = a[0];
  for (int i = 1; i < kChains; ++i) sum = _mm512_add_ps(sum, a[i]);
  return _mm512_reduce_add_ps(sum);
}

// Without AVX2 the kernels are what the compiler makes of scalar code, at best SSE2 vectors:
// a multiply and an add on 4 lanes.
float chains_sse2() {
  __m128 a[kChains];
  for (int i = 0; i < kChains; ++i) a[i] = _mm_set1_ps(1.0f + 0.01f * static_cast<float>(i));
  const __m128 b = _mm_set1_ps(0.999f), c = _mm_set1_ps(1e-3f);
  for (std::int64_t s = 0; s < kSteps; ++s) {
#pragma GCC unroll 12
    for (int i = 0; i < kChains; ++i) a[i] = _mm_add_ps(_mm_mul_ps(a[i], b), c);
  }
  __m128 sum = a[0];
  for (int i = 1; i < kChains; ++i) sum = _mm_add_ps(sum, a[i]);
  return _mm_cvtss_f32(sum);
}

}  // namespace

double measure_f32_peak(ThreadPool& pool, int runs) {
  const cpu::Isa isa = cpu::best_isa();
  const int lanes = isa == cpu::Isa::Avx512 ? 16 : isa == cpu::Isa::Avx2 ? 8 : 4;
  const std::size_t tasks = pool.size() * kTasksPerThread;
  std::vector<float> sink(tasks);
  auto pass = [&] {
    pool.run(tasks, [&](std::size_t t) {
      sink[t] = isa == cpu::Isa::Avx512 ? chains_avx512() : isa == cpu::Isa::Avx2 ? chains_avx2() : chains_sse2();
    });
  };
  pass();  // warm-up: settle the clock
  double best = 0;
  for (int i = 0; i < std::max(runs, 1); ++i) {
    const auto start = std::chrono::steady_clock::now();
    pass();
    best = std::max(best, 1.0 / std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  const double flops = 2.0 * kChains * lanes * static_cast<double>(kSteps) * static_cast<double>(tasks);
  return flops * best / 1e9;
}

}  // namespace aero::backend
