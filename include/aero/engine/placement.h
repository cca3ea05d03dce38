// Memory budgets as users give them (`--gpu-mem`, `--ram`; the Python API's gpu_mem, ram) and
// the planner engine::Model takes for them: the one place the CLI, the server and the bindings
// turn budgets into a plan.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "aero/backend/backend.h"
#include "aero/engine/session.h"
#include "aero/residency/plan.h"

namespace aero::engine {

struct PlacementOptions {
  std::string gpu_mem, ram;  // sizes as typed ("4GiB"); empty: what the device has free, less a margin
  std::int64_t context = 0;  // the KV cache's context (0: the model's, at most 4096)
  backend::KvType kv_type = backend::KvType::F16;
};

// The budgets: as given, or what the device has free (less a margin). Throws aero::Error (one
// line naming the flag) for a size that is not one, or a zero budget.
residency::Budgets budgets_for(const PlacementOptions& options, const backend::Device& device);

// The planner for a run: on the CPU, layers beyond the RAM budget go to disk (the plan depends
// only on sizes there, so nothing is measured); on a GPU with a GPU budget, layers that do not
// fit it are streamed to it or computed on the CPU (as `executor()` allows), by the plan with the
// shortest predicted decode step (measured_plan: the CPU's share is worth what this CPU's memory
// and f32 peak measure). Null on a GPU without a GPU budget (the whole model goes to the GPU, as
// without budgets).
Planner planner_for(const PlacementOptions& options, const backend::Device& device);

struct MeasuredPlan {
  residency::Plan plan;
  residency::ModelCosts costs;
  residency::Budgets budgets;
  residency::Bandwidths bandwidths;
  std::vector<std::string> measured;  // "host memory 18.2 GB/s", ... as printed
};
// The decode plan of `source` within `budgets` (taken before the model is loaded: a loaded model
// holds some of the memory they count) with measured bandwidths: host memory and CPU peak with
// every core unless given (> 0), the disk only when the plan reads from it, GPU figures assumed
// (assumed_gpu_bandwidths) until the streaming executor measures them.
MeasuredPlan measured_plan(const PlacementOptions& options, const backend::Device& device,
                           const residency::Budgets& budgets, const format::ModelSource& source,
                           const model::ModelSpec& spec, double host_gbs = 0, double cpu_gflops = 0);

// What a plan weighs: the model's per-layer bytes, KV cache and FLOPs at the options' context.
residency::ModelCosts costs_for(const PlacementOptions& options, const format::ModelSource& source,
                                const model::ModelSpec& spec);
// What the engine can run of a GPU plan: CPU layers in a GPU run (streamed to the GPU in passes
// of many tokens), but not a streamed head.
residency::Executor executor();
// The GPU figures a plan assumes until the streaming executor measures them: the pinned copy as
// issue 26 measured it on an H200, nominal HBM and tensor throughput of the same GPU.
residency::Bandwidths assumed_gpu_bandwidths();

}  // namespace aero::engine
