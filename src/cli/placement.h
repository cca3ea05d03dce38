// --gpu-mem, --ram and --plan: the budgets, the measurements and the planner the commands
// that run a model hand to engine::Model.
#pragma once

#include <string>

#include "aero/backend/backend.h"
#include "aero/engine/session.h"
#include "aero/residency/plan.h"
#include "cli/model_options.h"

namespace aero::cli {

// Budgets as the flags give them, or what the device has free (less a margin).
residency::Budgets budgets(const ModelOptions& options, const backend::Device& device);

// The planner for a run (engine::planner_for of the flags).
engine::Planner run_planner(const ModelOptions& options, const backend::Device& device);

// --plan: prints the plan for one-token passes and what it predicts for a 512-token prompt.
void print_plan(const ModelOptions& options);

// The disk tier's reads in one line ("disk tier: 3.2 GB read at 0.85 GB/s while waiting ..."),
// empty when the model is not on it.
std::string disk_tier_summary(const engine::Model& model);
// "GPU streaming: ..." when the session streams layers to the GPU (pinned RAM, bytes copied and
// their rate over `seconds`), else "".
std::string streaming_summary(const engine::Session& session, double seconds);

}  // namespace aero::cli
