// GEMV throughput per weight format, in GB/s of weights read, against this machine's measured
// read bandwidth (issue: quantized tensors). Prints a markdown table.
//   aero_gemv_bench [GiB of weights per matrix = 1] [runs = 7] [formats, e.g. Q4_0,Q4_K = all]
//                   [kernels: scalar, avx2, avx512 or best] [gemv | gemm | rows = gemv and gemm]
// Matrices of 1 GiB are larger than the last-level cache, so every run streams from DRAM; one
// of a few MiB (0.008) measures the kernels' own speed from the cache. `rows` times the row
// kernels alone (no threads, no activation quantizing) on a 64 × 4096 matrix in L2, best of
// 2000 passes: the figure to compare when changing a kernel on a machine whose timings swing.
// `gemm` times 128 tokens through a 5632 × 2048 matrix as llama.cpp's test-backend-ops does
// (bench/gemm_vs_llama_cpp.sh runs both side by side); a 6th argument, the columns, reshapes it
// at the same size (5632 gives the feed-forward down projection, 2048 × 5632).
#include <immintrin.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "aero/backend/compute_peak.h"
#include "aero/backend/cpu_gemv.h"
#include "aero/backend/memory_bandwidth.h"
#include "backend/cpu/dot.h"

using namespace aero;
using backend::ThreadPool;
using quant::GgmlType;

namespace {

// The fastest of `runs` timings after a warm-up (pages mapped in, clock settled): the least
// disturbed by the neighbours of a shared machine.
template <class F>
double best_seconds(int runs, F&& f) {
  f();
  double best = 1e30;
  for (int i = 0; i < runs; ++i) {
    auto a = std::chrono::steady_clock::now();
    f();
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - a).count());
  }
  return best;
}

// Prompt processing's figure, timed as llama.cpp's test-backend-ops times an op: the mean over a
// batch of calls lasting at least a second (after one warm-up call); the best of `runs` batches.
template <class F>
double best_batch_mean_seconds(int runs, F&& f) {
  f();
  double best = 1e30;
  for (int i = 0; i < runs; ++i) {
    int calls = 0;
    const auto a = std::chrono::steady_clock::now();
    double elapsed = 0;
    do {
      f();
      ++calls;
      elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - a).count();
    } while (elapsed < 1.0);
    best = std::min(best, elapsed / calls);
  }
  return best;
}

std::vector<std::uint8_t> make_matrix(GgmlType type, std::int64_t rows, std::int64_t cols) {
  auto traits = *quant::type_traits(static_cast<std::uint32_t>(type));
  const std::size_t row_bytes = *quant::row_bytes(traits, static_cast<std::uint64_t>(cols));
  // A 64-row template of realistic blocks, repeated: no NaNs or denormals to skew timing.
  std::mt19937 rng(1);
  std::normal_distribution<float> normal(0.0f, 0.02f);
  std::vector<std::uint8_t> pattern(row_bytes * 64);
  std::vector<float> row(static_cast<std::size_t>(cols));
  for (int r = 0; r < 64; ++r) {
    for (auto& v : row) v = normal(rng);
    auto* dst = pattern.data() + r * row_bytes;
    if (traits.encode) {
      quant::encode_from_f32(type, row, {dst, row_bytes});
    } else if (type == GgmlType::TQ2_0 || type == GgmlType::MXFP4) {  // no quantizer: random codes, sane scales
      for (std::size_t i = 0; i < row_bytes; ++i) dst[i] = static_cast<std::uint8_t>(rng());
      for (std::size_t b = 0; b < row_bytes; b += traits.block_bytes) {
        const std::uint16_t d = 0x2000;  // 2^-7
        if (type == GgmlType::TQ2_0) std::memcpy(dst + b + 64, &d, 2);
        else dst[b] = static_cast<std::uint8_t>(118 + rng() % 6);
      }
    } else {
      for (std::int64_t c = 0; c < cols; ++c) {
        std::uint32_t bits;
        std::memcpy(&bits, &row[c], 4);
        if (type == GgmlType::F32) std::memcpy(dst + 4 * c, &bits, 4);
        if (type == GgmlType::BF16 || type == GgmlType::F16) {
          std::uint16_t h = static_cast<std::uint16_t>(bits >> 16);
          if (type == GgmlType::F16) h = static_cast<std::uint16_t>(0x2000 | (rng() & 0x0fff));
          std::memcpy(dst + 2 * c, &h, 2);
        }
      }
    }
  }
  std::vector<std::uint8_t> m(row_bytes * static_cast<std::size_t>(rows));
  for (std::size_t at = 0; at < m.size(); at += pattern.size())
    std::memcpy(m.data() + at, pattern.data(), std::min(pattern.size(), m.size() - at));
  return m;
}

// 20,000 dependent integer additions: 20,000 cycles of the core's clock of the moment (one
// cycle of latency each on every x86 core), the yardstick that turns a kernel's time into cycles
// on a machine whose clock swings.
constexpr int kClockCycles = 20000;
void clock_chain() {
  std::uint64_t v = 0;
  for (int i = 0; i < kClockCycles / 10; ++i)
    asm volatile("add $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\t"
                 "add $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\tadd $1, %0"
                 : "+r"(v));
}

// Every format with a kernel (the third argument picks some by name).
constexpr GgmlType kFormats[] = {GgmlType::F32,  GgmlType::F16,  GgmlType::BF16, GgmlType::Q8_0,   GgmlType::Q4_0,
                                 GgmlType::Q4_1, GgmlType::Q5_0, GgmlType::Q5_1, GgmlType::IQ4_NL, GgmlType::Q2_K,
                                 GgmlType::Q3_K, GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K,   GgmlType::IQ4_XS,
                                 GgmlType::TQ2_0, GgmlType::MXFP4};

}  // namespace

int main(int argc, char** argv) {
  const double gib = argc > 1 ? std::atof(argv[1]) : 1.0;
  const int runs = argc > 2 ? std::atoi(argv[2]) : 7;
  const std::string only = argc > 3 && std::string(argv[3]) != "all" ? "," + std::string(argv[3]) + "," : "";
  const std::string isa_arg = argc > 4 && std::string(argv[4]) != "best" ? argv[4] : "";
  const std::string part = argc > 5 ? argv[5] : "both";
  const backend::cpu::Isa isa = isa_arg == "scalar" ? backend::cpu::Isa::Scalar
                                : isa_arg == "avx2" ? backend::cpu::Isa::Avx2
                                : isa_arg == "avx512" ? backend::cpu::Isa::Avx512
                                                      : backend::cpu::best_isa();
  const std::int64_t cols = argc > 6 ? std::atoll(argv[6]) : 4096;
  if (part == "rows") {
    std::printf("CPU kernels: %s; row kernels alone, 64 x %lld in L2, best of 2000 passes, each after a "
                "clock-measuring chain of %d dependent additions (best of those)\n\n"
                "| kernel | ns per 32 columns and row | cycles per 32 columns and row | GB/s |\n|---|---|---|---|\n",
                std::string(backend::cpu::isa_name(isa)).c_str(), static_cast<long long>(cols), kClockCycles);
    for (GgmlType type : kFormats) {
      auto traits = *quant::type_traits(static_cast<std::uint32_t>(type));
      if (!only.empty() && only.find("," + std::string(traits.name) + ",") == std::string::npos) continue;
      const backend::cpu::GemvVariant variant = backend::cpu::gemv_variant(type);  // AERO_GEMV_ROWS applies
      const backend::cpu::RowKernel kernel = backend::cpu::gemv_row_kernel(type, isa, variant);  // as one token's product takes it
      if (!kernel.dot) continue;
      const std::int64_t rows = 64;
      const int per_call = backend::cpu::gemv_rows_per_call(variant);  // as the GEMV makes its calls
      backend::cpu::prefetch_calls_ahead = variant.prefetch_ahead;
      const std::size_t row_bytes = *quant::row_bytes(traits, cols);
      auto w = make_matrix(type, rows, cols);
      std::vector<float> x(cols), y(rows);
      std::mt19937 rng(5);
      for (auto& v : x) v = std::normal_distribution<float>(0.0f, 1.0f)(rng);
      std::vector<std::uint8_t> xq(kernel.act.bytes ? kernel.act.bytes(cols) : 0);
      if (kernel.act.prepare) kernel.act.prepare(x.data(), cols, xq.data());
      double best = 1e9, clock = 1e9;
      for (int pass = 0; pass < 2000; ++pass) {
        auto start = std::chrono::steady_clock::now();
        clock_chain();
        clock = std::min(clock, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
        start = std::chrono::steady_clock::now();
        for (std::int64_t r = 0; r < rows; r += per_call)
          kernel.dot(w.data() + r * row_bytes, row_bytes, per_call, x.data(), xq.data(), cols, y.data() + r);
        best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
      }
      const double per_32 = best / static_cast<double>(rows * cols / 32);
      std::printf("| %s | %.2f | %.2f | %.1f |\n", std::string(traits.name).c_str(), per_32 * 1e9,
                  per_32 / (clock / kClockCycles), static_cast<double>(w.size()) / best / 1e9);
    }
    return 0;
  }
  ThreadPool one(1), two(2);
  std::printf("CPU kernels: %s, %s; weights per matrix: %.2f GiB; %lld columns; best of %d passes, each GEMV pass "
              "after a read-probe pass over the same matrix\n\n",
              backend::cpu::kernel_set_name(isa).c_str(),
              backend::cpu::default_gemv_variant().name().c_str(), gib,
              static_cast<long long>(cols), runs);
  // The probe and the kernel alternate pass by pass on the same bytes and each keeps its best:
  // on a VM whose clock and neighbours change from one second to the next, a median of the
  // probe taken before the kernels swung their ratio by ±15%.
  // A third figure per thread count: the median over passes of the kernel's rate against the probe
  // pass just before it. The two bests may come from different spells of the machine; a pair
  // of adjacent passes mostly shares one.
  std::printf("| kernel | 1 thread GB/s | probe | of probe | paired median | 2 threads GB/s | probe | of probe | paired median |\n"
              "|---|---|---|---|---|---|---|---|---|\n");
  for (GgmlType type : kFormats) {
    auto traits = *quant::type_traits(static_cast<std::uint32_t>(type));
    if (part == "gemm") break;
    if (!only.empty() && only.find("," + std::string(traits.name) + ",") == std::string::npos) continue;
    const std::size_t row_bytes = *quant::row_bytes(traits, cols);
    const auto rows = static_cast<std::int64_t>(gib * (1ull << 30) / static_cast<double>(row_bytes));
    auto w = make_matrix(type, rows, cols);
    quant::Matrix m{type, w.data(), rows, cols, row_bytes};
    std::vector<float> x(cols, 0.01f), y(static_cast<std::size_t>(rows));
    double gemv_best[2] = {0, 0}, probe_best[2] = {0, 0}, paired[2] = {0, 0};
    ThreadPool* pools[2] = {&one, &two};
    for (int t = 0; t < 2; ++t) {
      backend::cpu::gemv(m, x, y, *pools[t], isa);  // warm-up: pages mapped in
      std::vector<double> ratios;
      for (int i = 0; i < runs; ++i) {
        const double probe = backend::read_pass(*pools[t], w);
        const auto start = std::chrono::steady_clock::now();
        backend::cpu::gemv(m, x, y, *pools[t], isa);
        const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        const double rate = static_cast<double>(w.size()) / seconds / 1e9;
        probe_best[t] = std::max(probe_best[t], probe);
        gemv_best[t] = std::max(gemv_best[t], rate);
        ratios.push_back(rate / probe);
      }
      std::sort(ratios.begin(), ratios.end());
      paired[t] = ratios[ratios.size() / 2];
    }
    std::printf("| %s%s | %.1f | %.1f | %.0f%% | %.0f%% | %.1f | %.1f | %.0f%% | %.0f%% |\n", std::string(traits.name).c_str(),
                backend::cpu::has_fast_dot(type, isa) ? "" : " (decode + f32 dot)", gemv_best[0], probe_best[0],
                100 * gemv_best[0] / probe_best[0], 100 * paired[0], gemv_best[1], probe_best[1],
                100 * gemv_best[1] / probe_best[1], 100 * paired[1]);
  }

  // Prompt processing's product: 128 tokens through one 5632 × 2048 matrix (TinyLlama's
  // feed-forward shape; its weights fit in the last-level cache only for the 4-bit formats).
  const std::int64_t gemm_cols = argc > 6 ? cols : 2048, gemm_rows = 5632 * 2048 / gemm_cols, tokens = 128;
  if (part == "gemv") return 0;
  const double peak1 = backend::measure_f32_peak(one), peak2 = backend::measure_f32_peak(two);
  std::printf("\n| GEMM %lld x %lld, %lld tokens | 1 thread GFLOP/s | of f32 peak | 2 threads GFLOP/s | of f32 peak |\n"
              "|---|---|---|---|---|\n| f32 multiply-add peak | %.0f | 100%% | %.0f | 100%% |\n",
              static_cast<long long>(gemm_rows), static_cast<long long>(gemm_cols), static_cast<long long>(tokens), peak1, peak2);
  for (GgmlType type : kFormats) {
    auto traits = *quant::type_traits(static_cast<std::uint32_t>(type));
    if (!only.empty() && only.find("," + std::string(traits.name) + ",") == std::string::npos) continue;
    auto w = make_matrix(type, gemm_rows, gemm_cols);
    quant::Matrix m{type, w.data(), gemm_rows, gemm_cols, *quant::row_bytes(traits, gemm_cols)};
    std::vector<float> x(static_cast<std::size_t>(tokens * gemm_cols)), y(static_cast<std::size_t>(tokens * gemm_rows));
    std::mt19937 rng(3);
    for (auto& v : x) v = std::uniform_real_distribution<float>(-1, 1)(rng);
    const double flop = 2.0 * static_cast<double>(gemm_rows * gemm_cols * tokens);
    double gflops[2];
    ThreadPool* pools[2] = {&one, &two};
    for (int t = 0; t < 2; ++t)
      gflops[t] = flop / best_batch_mean_seconds(runs, [&] { backend::cpu::matmul(m, x, tokens, y, *pools[t], isa); }) / 1e9;
    std::printf("| %s | %.0f | %.0f%% | %.0f | %.0f%% |\n", std::string(traits.name).c_str(), gflops[0], 100 * gflops[0] / peak1,
                gflops[1], 100 * gflops[1] / peak2);
  }
  return 0;
}
