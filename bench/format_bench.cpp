// Micro-benchmarks of the container layer: BLAKE3 throughput (the bound on validate --full)
// and the cost of opening a file, which is dominated by the tensor index.
#include <benchmark/benchmark.h>

#include <filesystem>
#include <random>

#include "aero/format/aero_model.h"
#include "aero/format/aero_writer.h"
#include "aero/hash.h"

namespace {

void BM_Blake3(benchmark::State& state) {
  std::vector<std::uint8_t> data(static_cast<std::size_t>(state.range(0)));
  std::mt19937 rng(1);
  for (auto& b : data) b = static_cast<std::uint8_t>(rng());
  for (auto _ : state) benchmark::DoNotOptimize(aero::blake3(data));
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * state.range(0));
}
BENCHMARK(BM_Blake3)->Arg(4 << 10)->Arg(1 << 20)->Arg(64 << 20);

// Opening a file whose index lists N tensors (a 70B model has ~700; an MoE, tens of thousands).
void BM_OpenAero(benchmark::State& state) {
  auto path = std::filesystem::temp_directory_path() / "aero-bench-open.aero";
  std::vector<aero::format::TensorWrite> tensors;
  static const std::vector<std::uint8_t> bytes(64, 1);
  for (int i = 0; i < state.range(0); ++i)
    tensors.push_back({"model.layers." + std::to_string(i) + ".mlp.down_proj.weight", aero::format::DType::F32, -1,
                       std::nullopt, {4, 4}, 64, [](aero::format::ByteSink& s) { s.write(bytes); }, {}});
  aero::format::write_aero(path, {"bench", "llama"}, tensors);
  for (auto _ : state) benchmark::DoNotOptimize(aero::format::AeroModel::open(path).tensors().size());
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()) * state.range(0));
  std::filesystem::remove(path);
}
BENCHMARK(BM_OpenAero)->Arg(300)->Arg(3000)->Arg(30000)->Unit(benchmark::kMillisecond);

}  // namespace
