#include "aero/engine/placement.h"

#include <algorithm>
#include <chrono>
#include <vector>

#include <fmt/format.h>

#include "aero/backend/compute_peak.h"
#include "aero/backend/memory_bandwidth.h"
#include "aero/backend/thread_pool.h"
#include "aero/error.h"
#include "aero/model/weights.h"
#include "aero/parallel.h"
#include "aero/residency/budgets.h"
#include "aero/residency/disk_weights.h"

namespace aero::engine {
namespace {

constexpr std::int64_t kPromptBatch = 256;  // Session's tokens per pass for prompts

// Any positive figures for what a plan on the CPU does not depend on (it depends only on sizes).
residency::Bandwidths placeholders() {
  auto b = assumed_gpu_bandwidths();
  b.host_memory = b.cpu_flops = b.disk = 1;
  return b;
}

std::filesystem::path first_layer_file(const format::ModelSource& source) {
  for (const auto* t : model::layer_tensors(source, 0)) return source.locate(t->data).path;
  fail("the model has no layer 0 tensors");
}

}  // namespace

residency::Bandwidths assumed_gpu_bandwidths() {
  return {.gpu_memory = 4.0e12, .host_to_gpu = 55e9, .host_memory = 0, .disk = 0, .gpu_flops = 400e12, .cpu_flops = 0};
}

residency::Executor executor() { return {.cpu_layers = true, .streamed_head = false, .wide_passes = true}; }

residency::ModelCosts costs_for(const PlacementOptions& o, const format::ModelSource& source, const model::ModelSpec& spec) {
  const std::int64_t context = o.context > 0 ? o.context : std::min<std::int64_t>(spec.context, 4096);
  return residency::model_costs(source, spec, context, o.kv_type, kPromptBatch);
}

residency::Budgets budgets_for(const PlacementOptions& o, const backend::Device& device) {
  residency::Budgets b;
  b.ram = o.ram.empty() ? residency::default_ram_budget() : residency::parse_size(o.ram, "--ram");
  if (b.ram == 0) fail("--ram {}: the budget must be more than 0 bytes", o.ram.empty() ? "(free memory)" : o.ram);
  if (device.kind == backend::Device::Kind::Cuda) {
    if (!o.gpu_mem.empty()) {
      b.gpu = residency::parse_size(o.gpu_mem, "--gpu-mem");
      if (b.gpu == 0) fail("--gpu-mem {}: the budget must be more than 0 bytes", o.gpu_mem);
    } else {
      for (const auto& g : backend::list_gpus())
        if (g.index == device.index) b.gpu = residency::with_margin(g.free_bytes);
      if (b.gpu == 0) fail("cuda:{}: no free GPU memory to plan with (give --gpu-mem)", device.index);
    }
  } else if (!o.gpu_mem.empty()) {
    residency::parse_size(o.gpu_mem, "--gpu-mem");  // still a size, or one clear error
  }
  return b;
}

Planner planner_for(const PlacementOptions& o, const backend::Device& device) {
  if (device.kind == backend::Device::Kind::Cuda && o.gpu_mem.empty()) return {};
  const auto b = budgets_for(o, device);
  if (device.kind == backend::Device::Kind::Cuda)
    return [o, b, device](const format::ModelSource& source, const model::ModelSpec& spec) {
      return measured_plan(o, device, b, source, spec).plan;
    };
  return [o, b](const format::ModelSource& source, const model::ModelSpec& spec) {
    return residency::plan(costs_for(o, source, spec), b, placeholders(), residency::Workload::decode(), executor());
  };
}

MeasuredPlan measured_plan(const PlacementOptions& o, const backend::Device& device, const residency::Budgets& budgets,
                           const format::ModelSource& source, const model::ModelSpec& spec, double host_gbs,
                           double cpu_gflops) {
  MeasuredPlan m;
  m.budgets = budgets;
  m.costs = costs_for(o, source, spec);
  m.bandwidths = device.kind == backend::Device::Kind::Cuda ? assumed_gpu_bandwidths() : residency::Bandwidths{};
  if (host_gbs <= 0 || cpu_gflops <= 0) {
    // Every core: a GPU run's CPU layers run on all of them (ForwardPass's CPU lane).
    backend::ThreadPool pool(default_thread_count());
    // A probe buffer well past the caches, but no more than a slice of the budget.
    const std::size_t probe = std::clamp<std::uint64_t>(m.budgets.ram / 8, 64ull << 20, 512ull << 20);
    if (host_gbs <= 0) host_gbs = backend::measure_read_bandwidth(pool, probe, 3);
    if (cpu_gflops <= 0) cpu_gflops = backend::measure_f32_peak(pool, 3);
  }
  m.bandwidths.host_memory = host_gbs * 1e9;
  m.bandwidths.cpu_flops = cpu_gflops * 1e9;
  m.measured.push_back(fmt::format("host memory {:.1f} GB/s", host_gbs));
  m.measured.push_back(fmt::format("CPU {:.0f} GFLOP/s", cpu_gflops));
  // The disk only matters when something is read from it: sizes decide that, not speeds.
  auto trial = m.bandwidths;
  trial.disk = 1;
  if (residency::plan(m.costs, m.budgets, trial, residency::Workload::decode(), executor()).needs_disk()) {
    const auto file = first_layer_file(source);
    const double gbs = residency::measure_disk_read(file, std::uint64_t{512} << 20);
    m.bandwidths.disk = gbs * 1e9;
    m.measured.push_back(fmt::format("disk {:.2f} GB/s (O_DIRECT reads of {})", gbs, file.filename().string()));
  }
  if (device.kind == backend::Device::Kind::Cuda) {
    // The pinned copy, alone and beside the CPU reading RAM (~0.3 s): whether RAM has room for a
    // split's copies and CPU layers together.
    backend::ThreadPool pool(default_thread_count());
    const std::size_t bytes = std::clamp<std::uint64_t>(m.budgets.ram / 8, 64ull << 20, 512ull << 20);
    std::vector<std::uint8_t> buffer(bytes, 1);
    const auto copies = backend::probe_host_copies(device.index, [&] {
      double gbs = 0;
      int passes = 0;
      const auto t0 = std::chrono::steady_clock::now();
      while (std::chrono::steady_clock::now() - t0 < std::chrono::milliseconds(200)) gbs += backend::read_pass(pool, buffer), ++passes;
      return gbs / passes;
    });
    if (copies.copy > 0) {
      m.bandwidths.host_to_gpu = copies.copy * 1e9;
      m.measured.push_back(fmt::format("pinned copy to the GPU {:.1f} GB/s", copies.copy));
    }
    if (copies.copy_with_cpu > 0 && copies.cpu_with_copy > 0) {
      m.bandwidths.ram_total = (copies.copy_with_cpu + copies.cpu_with_copy) * 1e9;
      m.measured.push_back(fmt::format("RAM with both {:.1f} GB/s (copy {:.1f} + CPU {:.1f})", m.bandwidths.ram_total / 1e9,
                                       copies.copy_with_cpu, copies.cpu_with_copy));
    }
    m.measured.push_back(fmt::format("GPU figures assumed: {}memory 4000 GB/s, 400 TFLOP/s",
                                     copies.copy > 0 ? "" : "copy 55 GB/s, "));
  }
  m.plan = residency::plan(m.costs, m.budgets, m.bandwidths, residency::Workload::decode(), executor());
  return m;
}

}  // namespace aero::engine
