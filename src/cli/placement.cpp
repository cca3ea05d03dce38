#include "cli/placement.h"

#include <algorithm>

#include <fmt/format.h>

#include "aero/engine/placement.h"
#include "aero/error.h"
#include "aero/model/weights.h"
#include "aero/residency/budgets.h"

namespace aero::cli {
namespace {

std::int64_t context_of(const ModelOptions& o, const model::ModelSpec& spec) {
  return o.context > 0 ? o.context : std::min<std::int64_t>(spec.context, 4096);
}

}  // namespace

residency::Budgets budgets(const ModelOptions& o, const backend::Device& device) {
  return engine::budgets_for(o.placement(), device);
}

engine::Planner run_planner(const ModelOptions& o, const backend::Device& device) {
  return engine::planner_for(o.placement(), device);
}

engine::ModelOptions ModelOptions::model_options(const backend::Device& dev) const {
  return {.planner = run_planner(*this, dev), .disk = {.verify = verify}};
}

void print_plan(const ModelOptions& o) {
  const auto device = backend::choose_device(o.device);
  const auto b = budgets(o, device);
  auto source = format::ModelSource::open(o.model);
  if (!o.config.empty()) source->adopt_metadata(format::ModelSource::open(o.config)->metadata());
  const auto spec = model::read_spec(*source);
  const auto m = engine::measured_plan(o.placement(), device, b, *source, spec);
  std::uint64_t weights = 0;
  for (const auto& l : m.costs.layers) weights += l.weight_bytes;
  fmt::print("model: {} ({}, {} layers, {} of layer weights, context {})\n", o.model, model::family_name(spec.family),
             spec.layers, residency::format_size(weights), context_of(o, spec));
  fmt::print("device: {}; measured: {}\n", backend::device_name(device), fmt::join(m.measured, ", "));
  for (const auto& line : residency::describe(m.plan, m.costs, m.budgets, residency::Workload::decode()))
    fmt::print("{}\n", line);
  const auto prompt = residency::predict(m.plan, m.costs, m.bandwidths, residency::Workload::prefill(512));
  fmt::print("prompt of 512 tokens with this plan: predicted {:.1f} ms per pass ({:.1f} tokens/s), bound by {}\n",
             prompt.seconds * 1e3, 512 / prompt.seconds, residency::bound_name(prompt.bound));
}

std::string streaming_summary(const engine::Session& session, double seconds) {
  if (session.streamed_bytes() == 0) return "";
  return fmt::format("GPU streaming: {} of layers kept in pinned RAM, {} copied to the GPU{}",
                     residency::format_size(session.pinned_bytes()), residency::format_size(session.streamed_bytes()),
                     seconds > 0 ? fmt::format(" ({:.1f} GB/s over the run)", static_cast<double>(session.streamed_bytes()) / 1e9 / seconds)
                                 : std::string());
}

std::string disk_tier_summary(const engine::Model& model) {
  const auto* d = model.disk_weights();
  if (!d) return "";
  const auto s = d->stats();
  return fmt::format("disk tier ({}): {} layer reads, {} read, {:.2f} s waiting for reads; {} held in RAM{}", s.engine,
                     s.layer_reads, residency::format_size(s.bytes_read), s.wait_seconds, residency::format_size(s.ram_bytes),
                     s.pages_verified > 0 ? fmt::format("; {} pages verified", s.pages_verified) : "");
}

}  // namespace aero::cli
