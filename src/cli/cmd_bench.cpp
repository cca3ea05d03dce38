// aero bench: prompt-processing and generation speed, in the shape of llama-bench's report,
// each also against the limit this machine puts on it: prompt processing as GFLOP/s and a
// fraction of the measured f32 multiply-add peak (a batch reuses every weight, so it is
// compute-bound), generation as GB/s of weights read and a fraction of the measured memory
// bandwidth (each token reads every weight once).
#include <algorithm>
#include <chrono>
#include <memory>
#include <optional>
#include <cmath>
#include <numeric>
#include <random>

#include "aero/backend/compute_peak.h"
#include "aero/backend/cpu_calibration.h"
#include "aero/backend/memory_bandwidth.h"
#include "aero/engine/batch.h"
#include "aero/engine/placement.h"
#include "aero/error.h"
#include "cli/commands.h"
#include "cli/display.h"
#include "cli/model_options.h"
#include "cli/placement.h"

namespace aero::cli {
namespace {

struct Spread {
  double mean = 0, sd = 0;
};

Spread spread(const std::vector<double>& v) {
  Spread s;
  s.mean = std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size());
  for (double x : v) s.sd += (x - s.mean) * (x - s.mean);
  s.sd = v.size() > 1 ? std::sqrt(s.sd / static_cast<double>(v.size() - 1)) : 0.0;
  return s;
}

template <class F>
double seconds(F&& f) {
  const auto start = std::chrono::steady_clock::now();
  f();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

void add_bench_command(CLI::App& app) {
  struct Options {
    ModelOptions model;
    std::int64_t prompt = 128, generate = 64;
    int repetitions = 3;
    int batch = 1;
    bool skip_probes = false;
    bool calibrate = false;
  };
  auto opt = std::make_shared<Options>();
  auto* cmd = app.add_subcommand("bench", "Measure prompt-processing and generation speed");
  opt->model.add_to(*cmd);
  opt->model.add_budgets_to(*cmd);
  cmd->add_option("-p,--n-prompt", opt->prompt, "prompt tokens (default 128; 0 skips)")->check(CLI::NonNegativeNumber);
  cmd->add_option("-n,--n-gen", opt->generate, "generated tokens (default 64; 0 skips)")->check(CLI::NonNegativeNumber);
  cmd->add_option("-r,--repetitions", opt->repetitions, "repetitions of each test (default 3)")->check(CLI::Range(1, 1000));
  cmd->add_option("-b,--batch", opt->batch,
                  "also generate for this many sequences at once, one pass for all (batch mode; default 1: not)")
      ->check(CLI::Range(1, 1024));
  cmd->add_flag("--no-probes,--no-bandwidth", opt->skip_probes, "skip measuring the memory bandwidth and f32 peak");
  cmd->add_flag("--calibrate", opt->calibrate,
                "measure the CPU's one-token product variants again, whatever the calibration cache holds");
  cmd->callback([opt] {
    if (opt->model.context == 0) opt->model.context = std::max<std::int64_t>(opt->prompt, opt->generate) + 1;
    if (opt->model.show_plan) return print_plan(opt->model);
    const auto device = backend::choose_device(opt->model.device);
    // Before anything is loaded: the budgets count what is free.
    const auto budget = device.kind == backend::Device::Kind::Cpu || !opt->model.gpu_mem.empty() || !opt->skip_probes
                            ? std::optional(budgets(opt->model, device))
                            : std::nullopt;
    auto backend = backend::make_backend(device, opt->model.threads);
    double bandwidth = 0, peak = 0;
    // The CPU's probes measure its memory and f32 peak (what its plan predicts with); a GPU
    // backend measures its own memory (its plan's CPU share measures the CPU's).
    if (!opt->skip_probes && device.kind == backend::Device::Kind::Cpu) {
      backend::ThreadPool probe_pool(opt->model.threads);
      // 1 GiB, or less under a small RAM budget (a model larger than memory, a cgroup cap).
      const auto probe = std::clamp<std::uint64_t>(budget->ram / 8, 64ull << 20, 1ull << 30);
      bandwidth = backend::measure_read_bandwidth(probe_pool, probe, 3);
      peak = backend::measure_f32_peak(probe_pool);
    } else if (!opt->skip_probes) {
      bandwidth = backend->measure_read_bandwidth();
    }
    // What the planner predicts for these passes (none with --no-probes): the plan the model
    // runs, where it has one.
    std::optional<engine::MeasuredPlan> planned;
    const double host_gbs = device.kind == backend::Device::Kind::Cpu ? bandwidth : 0;
    const double cpu_gflops = device.kind == backend::Device::Kind::Cpu ? peak : 0;
    auto planner = run_planner(opt->model, device);
    if (planner && !opt->skip_probes)
      planner = [&](const format::ModelSource& source, const model::ModelSpec& spec) {
        planned = engine::measured_plan(opt->model.placement(), device, *budget, source, spec, host_gbs, cpu_gflops);
        return planned->plan;
      };
    auto model = engine::Model::open(opt->model.model, opt->model.config, {.planner = planner, .disk = {.verify = opt->model.verify}});
    const auto& spec = model->spec();
    std::uint64_t bytes = 0, params = 0;
    for (const auto& t : model->source().tensors()) {
      bytes += t.data.size();
      params += std::accumulate(t.shape.begin(), t.shape.end(), std::uint64_t{1}, std::multiplies<>());
    }
    if (!opt->skip_probes && !planned)  // no plan to run: what one would predict with every layer placed
      planned = engine::measured_plan(opt->model.placement(), device, *budget, model->source(), spec, host_gbs, cpu_gflops);
    auto predicted = [&](residency::Workload work) -> std::string {
      if (!planned) return "-";
      const auto p = residency::predict(planned->plan, planned->costs, planned->bandwidths, work);
      return fmt::format("{:.2f} ({})", static_cast<double>(work.tokens) / p.seconds, residency::bound_name(p.bound));
    };
    backend::cpu::force_gemv_calibration(opt->calibrate);
    auto session_options = opt->model.session();
    // Streamed layers cross PCIe once per pass: the whole prompt in one pass.
    if (model->plan() && model->plan()->uses_gpu() && model->plan()->gpu_slots > 0)
      session_options.max_batch = std::max(session_options.max_batch, opt->prompt);
    // (Held by pointer: it goes before batch mode's session, whose ring and pinned copies the
    // budgets count once.)
    auto session_ptr = std::make_unique<engine::Session>(*model, *backend, session_options);  // the CPU calibrates first
    auto& session = *session_ptr;
    std::mt19937 rng(42);
    std::uniform_int_distribution<std::int32_t> token(0, static_cast<std::int32_t>(spec.vocab - 1));
    auto tokens = [&](std::int64_t n) {
      std::vector<std::int32_t> ids(static_cast<std::size_t>(n));
      for (auto& id : ids) id = token(rng);
      return ids;
    };
    // As llama-bench: pp runs the prompt as one batch from an empty context; tg generates one
    // token at a time from an empty context.
    auto run_pp = [&] {
      const auto ids = tokens(opt->prompt);
      session.reset();
      return seconds([&] { session.eval(ids); });
    };
    auto run_tg = [&] {
      const auto ids = tokens(opt->generate);
      session.reset();
      return seconds([&] {
        for (std::int32_t id : ids) session.eval(std::span(&id, 1));
      });
    };
    const auto measured = [](double v, const char* unit) { return v > 0 ? fmt::format("{:.1f} {}", v, unit) : "not measured"; };
    fmt::print("model: {} ({} {}, {} params, {})\nbackend: {}; KV cache {}; memory read bandwidth: {}; f32 peak: {}\n",
               opt->model.model, model::family_name(spec.family), spec.architecture, params, human_bytes(bytes),
               backend->name(), opt->model.kv_type, measured(bandwidth, "GB/s"), measured(peak, "GFLOP/s"));
    // What the CPU's one-token products run as, and the measurements that chose it.
    const bool on_cpu = device.kind == backend::Device::Kind::Cpu;
    for (const auto& c : backend::cpu::gemv_calibrations()) {
      fmt::print("GEMV {}\n", c.why());
      if (opt->calibrate)  // every candidate, as measured on synthetic {rows}x{cols} matrices
        for (const auto& m : c.measured)
          fmt::print("  {:6.1f} GB/s  {}{}\n", m.gbps, m.variant.name(), m.variant == c.chosen ? "  <- chosen" : "");
    }
    if (on_cpu && backend::cpu::gemv_calibrations().empty())
      fmt::print("GEMV: {} ({})\n", backend::cpu::default_gemv_variant().name(),
                 !backend::cpu::gemv_calibration_enabled() ? "AERO_GEMV_CALIBRATE=0"
                 : model->weight_bytes_per_token() < backend::cpu::kMinCalibratedBytesPerToken
                     ? "default: the model is too small to calibrate on"
                     : "default");
    if (opt->calibrate && !backend::cpu::gemv_calibration_file().empty())
      fmt::print("calibration cache: {}\n", backend::cpu::gemv_calibration_file().string());
    if (planned) {
      fmt::print("plan from: {}\n", fmt::join(planned->measured, ", "));
      for (const auto& line : residency::describe(planned->plan, planned->costs, planned->budgets, residency::Workload::decode()))
        fmt::print("{}\n", line);
    }
    fmt::print("\n| test | t/s | GFLOP/s | of f32 peak | GB/s of weights | of bandwidth | predicted t/s (bound) |\n"
               "|---|---|---|---|---|---|---|\n");
    std::fflush(stdout);
    double streamed_gbs = 0;  // host-to-GPU copies of streamed layers during tg
    // One row per test: an untimed warm-up, then the repetitions.
    auto measure = [&](std::int64_t tokens, const auto& run_once) {
      run_once();
      std::vector<double> rates;
      for (int r = 0; r < opt->repetitions; ++r) rates.push_back(static_cast<double>(tokens) / run_once());
      return spread(rates);
    };
    if (opt->prompt > 0) {
      const auto s = measure(opt->prompt, run_pp);
      const double gflops = s.mean / static_cast<double>(opt->prompt) * 2.0 * static_cast<double>(spec.forward_macs(opt->prompt)) / 1e9;
      fmt::print("| pp{} | {:.2f} ± {:.2f} | {:.0f} | {} | | | {} |\n", opt->prompt, s.mean, s.sd, gflops,
                 peak > 0 ? fmt::format("{:.0f}%", 100 * gflops / peak) : "-",
                 predicted(residency::Workload::prefill(std::min<std::int64_t>(opt->prompt, 256))));
      std::fflush(stdout);
    }
    if (opt->generate > 0) {
      const auto streamed_before = session.streamed_bytes();
      const auto started = std::chrono::steady_clock::now();
      const auto s = measure(opt->generate, run_tg);
      streamed_gbs = static_cast<double>(session.streamed_bytes() - streamed_before) / 1e9 /
                     std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
      const double gbs = s.mean * static_cast<double>(model->weight_bytes_per_token()) / 1e9;
      fmt::print("| tg{} | {:.2f} ± {:.2f} | | | {:.1f} | {} | {} |\n", opt->generate, s.mean, s.sd, gbs,
                 bandwidth > 0 ? fmt::format("{:.0f}%", 100 * gbs / bandwidth) : "-",
                 predicted(residency::Workload::decode()));
    }
    const std::string streaming =
        session.streamed_bytes() > 0
            ? fmt::format("GPU streaming: {} of layers kept in pinned RAM; {} copied to the GPU in all; {:.1f} GB/s during tg{}",
                          residency::format_size(session.pinned_bytes()), residency::format_size(session.streamed_bytes()),
                          streamed_gbs, opt->generate)
            : "";
    session_ptr.reset();
    if (opt->batch > 1 && opt->generate > 0) {
      // Batch mode: every step runs one token of each of the sequences in one pass over the
      // weights (streamed ones cross PCIe once for all of them).
      const auto so = opt->model.session();
      engine::BatchSession batch(*model, *backend,
                                 {.slots = opt->batch, .context = opt->generate + 1, .kv_type = so.kv_type,
                                  .max_batch = opt->batch});
      auto run_batch = [&] {
        std::vector<std::vector<std::int32_t>> ids;
        for (int b = 0; b < opt->batch; ++b) ids.push_back(tokens(opt->generate)), batch.reset(b);
        std::vector<engine::BatchEntry> entries(static_cast<std::size_t>(opt->batch));
        return seconds([&] {
          for (std::int64_t i = 0; i < opt->generate; ++i) {
            for (int b = 0; b < opt->batch; ++b)
              entries[static_cast<std::size_t>(b)] = {.slot = b, .tokens = std::span(&ids[static_cast<std::size_t>(b)][static_cast<std::size_t>(i)], 1), .logits = true};
            batch.step(entries);
          }
        });
      };
      const auto s = measure(opt->generate * opt->batch, run_batch);
      const double gbs = s.mean / opt->batch * static_cast<double>(model->weight_bytes_per_token()) / 1e9;
      fmt::print("| tg{} b{} | {:.2f} ± {:.2f} | | | {:.1f} | {} | {} |\n", opt->generate, opt->batch, s.mean, s.sd, gbs,
                 bandwidth > 0 ? fmt::format("{:.0f}%", 100 * gbs / bandwidth) : "-",
                 predicted(residency::Workload::batch(opt->batch)));
    }
    if (!streaming.empty()) fmt::print("{}\n", streaming);
    if (auto d = disk_tier_summary(*model); !d.empty()) fmt::print("{}\n", d);
  });
}

}  // namespace aero::cli
