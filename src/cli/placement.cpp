#include "cli/placement.h"

#include <algorithm>

#include <fmt/format.h>

#include "aero/backend/compute_peak.h"
#include "aero/backend/memory_bandwidth.h"
#include "aero/backend/thread_pool.h"
#include "aero/engine/placement.h"
#include "aero/error.h"
#include "aero/model/weights.h"
#include "aero/residency/budgets.h"
#include "aero/residency/disk_weights.h"

namespace aero::cli {
namespace {

std::int64_t context_of(const ModelOptions& o, const model::ModelSpec& spec) {
  return o.context > 0 ? o.context : std::min<std::int64_t>(spec.context, 4096);
}

std::filesystem::path first_layer_file(const format::ModelSource& source) {
  for (const auto* t : model::layer_tensors(source, 0)) return source.locate(t->data).path;
  fail("the model has no layer 0 tensors");
}

}  // namespace

residency::Budgets budgets(const ModelOptions& o, const backend::Device& device) {
  return engine::budgets_for(o.placement(), device);
}

engine::Planner run_planner(const ModelOptions& o, const backend::Device& device) {
  return engine::planner_for(o.placement(), device);
}

MeasuredPlan measured_plan(const ModelOptions& o, const backend::Device& device, const residency::Budgets& budgets,
                           const format::ModelSource& source, const model::ModelSpec& spec, double host_gbs,
                           double cpu_gflops) {
  MeasuredPlan m;
  m.budgets = budgets;
  m.costs = engine::costs_for(o.placement(), source, spec);
  m.bandwidths = device.kind == backend::Device::Kind::Cuda ? engine::assumed_gpu_bandwidths() : residency::Bandwidths{};
  if (host_gbs <= 0 || cpu_gflops <= 0) {
    backend::ThreadPool pool(o.threads);
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
  if (residency::plan(m.costs, m.budgets, trial, residency::Workload::decode(), engine::executor()).needs_disk()) {
    const auto file = first_layer_file(source);
    const double gbs = residency::measure_disk_read(file, std::uint64_t{512} << 20);
    m.bandwidths.disk = gbs * 1e9;
    m.measured.push_back(fmt::format("disk {:.2f} GB/s (O_DIRECT reads of {})", gbs, file.filename().string()));
  }
  if (device.kind == backend::Device::Kind::Cuda)
    m.measured.push_back("GPU figures assumed, not measured: copy 55 GB/s, memory 4000 GB/s, 400 TFLOP/s");
  m.plan = residency::plan(m.costs, m.budgets, m.bandwidths, residency::Workload::decode(), engine::executor());
  return m;
}

void print_plan(const ModelOptions& o) {
  const auto device = backend::choose_device(o.device);
  const auto b = budgets(o, device);
  auto source = format::ModelSource::open(o.model);
  if (!o.config.empty()) source->adopt_metadata(format::ModelSource::open(o.config)->metadata());
  const auto spec = model::read_spec(*source);
  const auto m = measured_plan(o, device, b, *source, spec);
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
  return fmt::format("disk tier ({}): {} layer reads, {} read, {:.2f} s waiting for reads; {} held in RAM", s.engine,
                     s.layer_reads, residency::format_size(s.bytes_read), s.wait_seconds, residency::format_size(s.ram_bytes));
}

}  // namespace aero::cli
