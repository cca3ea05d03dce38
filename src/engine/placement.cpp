#include "aero/engine/placement.h"

#include <algorithm>

#include "aero/error.h"
#include "aero/residency/budgets.h"

namespace aero::engine {
namespace {

constexpr std::int64_t kPromptBatch = 256;  // Session's tokens per pass for prompts

// Any positive figures for what a plan on the CPU does not depend on (it depends only on sizes).
residency::Bandwidths placeholders() {
  auto b = assumed_gpu_bandwidths();
  b.host_memory = b.cpu_flops = b.disk = 1;
  return b;
}

}  // namespace

residency::Bandwidths assumed_gpu_bandwidths() {
  return {.gpu_memory = 4.0e12, .host_to_gpu = 55e9, .host_memory = 0, .disk = 0, .gpu_flops = 400e12, .cpu_flops = 0};
}

residency::Executor executor() { return {.cpu_layers = true, .streamed_head = false}; }

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
  return [o, b](const format::ModelSource& source, const model::ModelSpec& spec) {
    return residency::plan(costs_for(o, source, spec), b, placeholders(), residency::Workload::decode(), executor());
  };
}

}  // namespace aero::engine
