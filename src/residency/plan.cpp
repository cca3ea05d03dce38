// The placement planner: every assignment it considers is scored by the one time model in
// predict(); see plan.h for the model and docs/architecture.md for why it looks like this.
#include "aero/residency/plan.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>

#include <fmt/format.h>

#include "aero/error.h"

namespace aero::residency {
namespace {

constexpr int kRingSlots = 3;  // layer i in use, i+1 and i+2 arriving
// Slack per ring slot over the largest layer: a layer's reads are whole 4 KiB blocks, at most
// two partial blocks for each of its seven matrices.
constexpr std::uint64_t kSlotSlack = std::uint64_t{64} << 10;

bool positive(double v) { return v > 0 && std::isfinite(v); }

// 0, n/2, n/4, 3n/4, ...: any prefix (or suffix) of this order is spread evenly over 0..n-1,
// so layers decided first and last are interleaved with each other.
std::vector<std::int64_t> spread_order(std::int64_t n) {
  std::int64_t bits = 0;
  while ((std::int64_t{1} << bits) < n) ++bits;
  std::vector<std::int64_t> order;
  for (std::int64_t k = 0; k < (std::int64_t{1} << bits); ++k) {
    std::int64_t rev = 0;
    for (std::int64_t b = 0; b < bits; ++b)
      if (k & (std::int64_t{1} << b)) rev |= std::int64_t{1} << (bits - 1 - b);
    if (rev < n) order.push_back(rev);
  }
  return order;
}

// Running sums of the time model, so that the greedy assignment can score one more layer.
struct Times {
  double gpu_memory = 0, gpu_compute = 0, host_memory = 0, cpu_compute = 0, copy = 0, disk = 0;
  double host_reads = 0;  // bytes the CPU and the copy engine read from RAM, over its bandwidth

  void add(const LayerCost& c, Placement p, double tokens, const Bandwidths& bw) {
    const double flops = c.flops_per_token * tokens, bytes = static_cast<double>(c.weight_bytes);
    const double read = bytes_read(c, tokens);  // where it computes; copies move all of it
    if (p.compute == Processor::Gpu) {
      const double mem = read / bw.gpu_memory, fl = flops / bw.gpu_flops;
      (mem >= fl ? gpu_memory : gpu_compute) += std::max(mem, fl);
    } else {
      const double mem = read / bw.host_memory, fl = flops / bw.cpu_flops;
      (mem >= fl ? host_memory : cpu_compute) += std::max(mem, fl);
    }
    const double ram = bw.ram_total > 0 ? bw.ram_total : bw.host_memory;
    if (p.compute == Processor::Gpu && p.tier != Tier::GpuResident) {
      copy += bytes / bw.host_to_gpu;
      host_reads += bytes / ram;
    } else if (p.compute == Processor::Cpu) {
      host_reads += read / ram;
    }
    if (p.tier == Tier::Disk) disk += bytes / bw.disk;
  }
  double chain() const { return gpu_memory + gpu_compute + host_memory + cpu_compute; }
  double pass() const { return std::max({chain(), copy, disk, host_reads}); }
  double total() const { return chain() + copy + disk; }

  Prediction prediction() const {
    Prediction p;
    p.chain_seconds = chain();
    p.copy_seconds = copy;
    p.disk_seconds = disk;
    p.gpu_memory_seconds = gpu_memory;
    p.gpu_compute_seconds = gpu_compute;
    p.host_memory_seconds = host_memory;
    p.cpu_compute_seconds = cpu_compute;
    p.host_reads_seconds = host_reads;
    p.seconds = pass();
    if (disk >= chain() && disk >= copy && disk >= host_reads && disk > 0) {
      p.bound = Bound::Disk;
    } else if (copy >= chain() && copy >= host_reads && copy > 0) {
      p.bound = Bound::HostToGpu;
    } else if (host_reads > chain() && copy > 0) {
      // The CPU's reads and the copies' together (a CPU-only chain is its own host_memory).
      p.bound = Bound::HostMemory;
    } else {
      const std::pair<double, Bound> parts[] = {{host_memory, Bound::HostMemory},
                                                {cpu_compute, Bound::CpuCompute},
                                                {gpu_memory, Bound::GpuMemory},
                                                {gpu_compute, Bound::GpuCompute}};
      p.bound = std::max_element(std::begin(parts), std::end(parts),
                                 [](const auto& a, const auto& b) { return a.first < b.first; })
                    ->second;
    }
    return p;
  }
};

std::uint64_t sum_kv(const ModelCosts& c) {
  std::uint64_t s = 0;
  for (const auto& l : c.layers) s += l.kv_bytes;
  return s;
}

std::uint64_t max_weights(const ModelCosts& c) {
  std::uint64_t m = 0;
  for (const auto& l : c.layers) m = std::max(m, l.weight_bytes);
  return m;
}

// RAM the output head needs beyond the embedding (none when it is the embedding).
std::uint64_t head_ram(const ModelCosts& c) { return c.output_tied ? 0 : c.output.weight_bytes; }

void check_inputs(const ModelCosts& costs, const Budgets& budgets, const Bandwidths& bw) {
  if (costs.layers.empty()) fail("planning: the model has no layers");
  if (budgets.ram == 0) fail("the RAM budget is 0 bytes: nothing can run (give --ram a size such as 8GiB)");
  auto need = [](double v, const char* what) {
    if (!positive(v)) fail("planning needs the {} (a positive number), not {}", what, v);
  };
  need(bw.host_memory, "host memory bandwidth");
  need(bw.cpu_flops, "CPU FLOP/s");
  if (budgets.gpu > 0) {
    need(bw.gpu_memory, "GPU memory bandwidth");
    need(bw.gpu_flops, "GPU FLOP/s");
    need(bw.host_to_gpu, "host-to-GPU copy bandwidth");
  }
  if (bw.disk < 0 || !std::isfinite(bw.disk)) fail("planning: the disk bandwidth {} is not a speed", bw.disk);
}

// Every layer on the CPU: in RAM while the budget lasts (spread over the model), the rest read
// from disk through a ring of buffers.
Plan plan_cpu(const ModelCosts& costs, const Budgets& budgets, const Bandwidths& bw, const Workload& work) {
  const auto layers = static_cast<std::int64_t>(costs.layers.size());
  std::uint64_t fixed = costs.embedding_bytes + head_ram(costs) + sum_kv(costs) + costs.activation_bytes;
  std::int64_t max_batch = 0;
  {
    // With layers on disk, a second ring buffer (the next layer read while one computes) is worth
    // more than long prompt chunks: activations shrink (halving the tokens a pass takes, down to
    // 16) until it fits — or, where not even one buffer fits beside them, until one does.
    const std::uint64_t slot = max_weights(costs) + kSlotSlack, rest = fixed - costs.activation_bytes;
    std::uint64_t all = fixed;
    for (const auto& l : costs.layers) all += l.weight_bytes;
    auto act = [&](std::int64_t t) {
      return costs.activation_bytes * static_cast<std::uint64_t>(t) / static_cast<std::uint64_t>(costs.activation_tokens);
    };
    auto largest = [&](std::uint64_t slots) -> std::int64_t {
      for (std::int64_t t = costs.activation_tokens / 2; t >= 16; t /= 2)
        if (rest + act(t) + slots * slot <= budgets.ram) return t;
      return 0;
    };
    if (all > budgets.ram && costs.activation_tokens > 16 && fixed + 2 * slot > budgets.ram) {
      max_batch = layers > 1 ? largest(2) : 0;
      if (max_batch == 0 && fixed + slot > budgets.ram) max_batch = largest(1);
      if (max_batch > 0) fixed = rest + act(max_batch);
    }
  }
  if (fixed > budgets.ram)
    fail("the RAM budget of {} is less than the {} the embedding, output head, KV cache and activations need "
         "(give --ram more, or a shorter --ctx)",
         format_size(budgets.ram), format_size(fixed));
  Plan p;
  p.layers.assign(static_cast<std::size_t>(layers), Placement{Tier::CpuCompute, Processor::Cpu});
  p.output = {Tier::CpuCompute, Processor::Cpu};
  p.max_batch = max_batch;
  std::uint64_t all = fixed;
  for (const auto& l : costs.layers) all += l.weight_bytes;
  if (all <= budgets.ram) {
    p.ram_bytes = all;
  } else {
    // Some layers come from disk: the ring first, then cached layers while they fit.
    const std::uint64_t slot = max_weights(costs) + kSlotSlack;
    int slots = static_cast<int>(std::min<std::int64_t>(kRingSlots, layers));
    while (slots > 1 && fixed + static_cast<std::uint64_t>(slots) * slot > budgets.ram) --slots;
    if (fixed + slot > budgets.ram)
      fail("the RAM budget of {} is too small: the embedding, output head, KV cache and activations ({}) and one "
           "layer read from disk ({}) need {}",
           format_size(budgets.ram), format_size(fixed), format_size(slot), format_size(fixed + slot));
    std::uint64_t used = fixed + static_cast<std::uint64_t>(slots) * slot;
    std::vector<bool> cached(static_cast<std::size_t>(layers), false);
    for (std::int64_t i : spread_order(layers)) {
      const auto w = costs.layers[static_cast<std::size_t>(i)].weight_bytes;
      if (used + w <= budgets.ram) used += w, cached[static_cast<std::size_t>(i)] = true;
    }
    std::int64_t disk_layers = 0;
    for (std::int64_t i = 0; i < layers; ++i)
      if (!cached[static_cast<std::size_t>(i)]) p.layers[static_cast<std::size_t>(i)].tier = Tier::Disk, ++disk_layers;
    if (disk_layers < slots) used -= static_cast<std::uint64_t>(slots - disk_layers) * slot, slots = static_cast<int>(disk_layers);
    p.disk_slots = slots;
    p.disk_slot_bytes = slot;
    p.ram_bytes = used;
    if (!positive(bw.disk)) fail("the plan reads {} layers from disk but no disk read speed was measured", disk_layers);
  }
  p.prediction = predict(p, costs, bw, work);
  return p;
}

// One candidate for a GPU run: the first `resident` layers in GPU memory, the output head
// placed as `head`, `gpu_slots` ring slots for layers crossing PCIe (0: none may), the rest
// assigned greedily (in spread order, so the kinds interleave) to whatever shortens the pass
// most within the budgets. Empty when it does not fit.
std::optional<Plan> gpu_candidate(const ModelCosts& costs, const Budgets& budgets, const Bandwidths& bw,
                                  const Workload& work, std::int64_t resident, Placement head, int gpu_slots,
                                  bool disk_ring, const Executor& can) {
  const auto layers = static_cast<std::int64_t>(costs.layers.size());
  const double tokens = static_cast<double>(work.tokens);
  Plan p;
  p.layers.resize(static_cast<std::size_t>(layers));
  p.output = head;
  Times t;
  std::uint64_t gpu = costs.activation_bytes, ram = costs.embedding_bytes + costs.activation_bytes;
  // The ring holds the largest layer that may cross PCIe (and the head, when it streams).
  std::uint64_t slot = 0;
  for (std::int64_t i = resident; i < layers; ++i) slot = std::max(slot, costs.layers[static_cast<std::size_t>(i)].weight_bytes);
  if (head.tier == Tier::StreamedToGpu) slot = std::max(slot, costs.output.weight_bytes);
  if (gpu_slots > 0) slot += kSlotSlack, gpu += static_cast<std::uint64_t>(gpu_slots) * slot;
  if (head.tier == Tier::StreamedToGpu && gpu_slots == 0) return std::nullopt;
  const std::uint64_t disk_slot = max_weights(costs) + kSlotSlack;
  const int disk_slots = disk_ring ? static_cast<int>(std::min<std::int64_t>(kRingSlots, layers - resident)) : 0;
  ram += static_cast<std::uint64_t>(disk_slots) * disk_slot;

  for (std::int64_t i = 0; i < resident; ++i) {
    const auto& c = costs.layers[static_cast<std::size_t>(i)];
    p.layers[static_cast<std::size_t>(i)] = {Tier::GpuResident, Processor::Gpu};
    gpu += c.weight_bytes + c.kv_bytes;
    t.add(c, p.layers[static_cast<std::size_t>(i)], tokens, bw);
  }
  if (head.tier == Tier::GpuResident) gpu += costs.output.weight_bytes;
  else ram += head_ram(costs);
  t.add(costs.output, head, static_cast<double>(work.logit_rows), bw);
  if (gpu > budgets.gpu || ram > budgets.ram) return std::nullopt;

  std::int64_t crossing = 0, on_disk = 0;
  std::vector<std::int64_t> rest_order;
  for (std::int64_t k : spread_order(layers - resident)) rest_order.push_back(resident + k);
  for (std::int64_t i : rest_order) {
    const auto& c = costs.layers[static_cast<std::size_t>(i)];
    struct Option {
      Placement where;
      std::uint64_t gpu, ram;
    };
    std::vector<Option> options;
    if (gpu_slots > 0) options.push_back({{Tier::StreamedToGpu, Processor::Gpu}, c.kv_bytes, c.weight_bytes});
    if (can.cpu_layers) options.push_back({{Tier::CpuCompute, Processor::Cpu}, 0, c.weight_bytes + c.kv_bytes});
    if (disk_slots > 0) {
      if (gpu_slots > 0) options.push_back({{Tier::Disk, Processor::Gpu}, c.kv_bytes, 0});
      if (can.cpu_layers) options.push_back({{Tier::Disk, Processor::Cpu}, 0, c.kv_bytes});
    }
    const Option* best = nullptr;
    Times best_t;
    for (const auto& o : options) {
      if (gpu + o.gpu > budgets.gpu || ram + o.ram > budgets.ram) continue;
      Times next = t;
      next.add(c, o.where, tokens, bw);
      // Shortest pass; among equals the least work in all (keeps the other resources free).
      if (!best || next.pass() < best_t.pass() || (next.pass() == best_t.pass() && next.total() < best_t.total()))
        best = &o, best_t = next;
    }
    if (!best) return std::nullopt;
    p.layers[static_cast<std::size_t>(i)] = best->where;
    gpu += best->gpu;
    ram += best->ram;
    t = best_t;
    if (best->where.compute == Processor::Gpu) ++crossing;
    if (best->where.tier == Tier::Disk) ++on_disk;
  }
  if (head.tier == Tier::StreamedToGpu) ++crossing;
  // Wide passes stream the CPU layers through the ring: a plan with CPU layers keeps two slots.
  std::int64_t on_cpu = 0;
  for (const auto& l : p.layers) on_cpu += l.tier == Tier::CpuCompute ? 1 : 0;
  const bool wide = can.wide_passes && on_cpu > 0;
  if (wide && gpu_slots < 2) return std::nullopt;
  if (wide) crossing += on_cpu;
  // Rings sized for what uses them: unused slots are given back.
  const int used_gpu_slots = static_cast<int>(std::min<std::int64_t>(gpu_slots, crossing));
  gpu -= static_cast<std::uint64_t>(gpu_slots - used_gpu_slots) * slot;
  const int used_disk_slots = static_cast<int>(std::min<std::int64_t>(disk_slots, on_disk));
  ram -= static_cast<std::uint64_t>(disk_slots - used_disk_slots) * disk_slot;
  if (on_disk > 0 && !positive(bw.disk)) return std::nullopt;
  p.gpu_slots = used_gpu_slots;
  p.gpu_slot_bytes = used_gpu_slots > 0 ? slot : 0;
  p.disk_slots = used_disk_slots;
  p.disk_slot_bytes = used_disk_slots > 0 ? disk_slot : 0;
  p.gpu_bytes = gpu;
  p.ram_bytes = ram;
  if (wide) p.wide_tokens = kWidePassTokens;
  p.prediction = predict(p, costs, bw, work);
  return p;
}

Plan plan_gpu(const ModelCosts& costs, const Budgets& budgets, const Bandwidths& bw, const Workload& work,
              const Executor& can) {
  const auto layers = static_cast<std::int64_t>(costs.layers.size());
  // The least a GPU-computed layer needs: its weights, its KV cache, the activations.
  std::uint64_t working_set = 0;
  const LayerCost* largest = &costs.layers.front();
  for (const auto& l : costs.layers)
    if (l.weight_bytes + l.kv_bytes > working_set) working_set = l.weight_bytes + l.kv_bytes, largest = &l;
  working_set += costs.activation_bytes;
  if (working_set > budgets.gpu)
    fail("the GPU budget of {} is less than one layer's working set of {} (weights {}, KV cache {}, activations {}): "
         "give --gpu-mem more or run on the CPU (--device cpu)",
         format_size(budgets.gpu), format_size(working_set), format_size(largest->weight_bytes),
         format_size(largest->kv_bytes), format_size(costs.activation_bytes));
  const std::uint64_t must_ram = costs.embedding_bytes + costs.activation_bytes;
  if (must_ram > budgets.ram)
    fail("the RAM budget of {} is less than the {} the embedding and activations need", format_size(budgets.ram),
         format_size(must_ram));

  std::optional<Plan> best;
  auto better = [](const Plan& a, const Plan& b) {  // a better than b
    const double ta = a.prediction.seconds, tb = b.prediction.seconds;
    if (std::abs(ta - tb) > 1e-12 * std::max(ta, tb)) return ta < tb;
    if (a.count(Tier::GpuResident) != b.count(Tier::GpuResident)) return a.count(Tier::GpuResident) > b.count(Tier::GpuResident);
    return a.count(Tier::Disk) < b.count(Tier::Disk);
  };
  const Placement heads[] = {{Tier::GpuResident, Processor::Gpu},
                             {Tier::StreamedToGpu, Processor::Gpu},
                             {Tier::CpuCompute, Processor::Cpu}};
  // A ring of one slot cannot overlap a layer's copy with anything before it computes: only
  // when two slots of the largest layer do not fit at all.
  const std::uint64_t two_slots = costs.activation_bytes + 2 * (max_weights(costs) + kSlotSlack);
  std::vector<int> ring_sizes = {kRingSlots, 2, 0};
  if (two_slots > budgets.gpu) ring_sizes = {1, 0};
  auto search = [&](const Executor& with) {
    for (std::int64_t resident = layers; resident >= 0; --resident)
      for (const Placement& head : heads)
        for (int slots : ring_sizes)
          for (bool disk_ring : {false, true}) {
            if (resident == layers && (slots > 0 && head.tier != Tier::StreamedToGpu)) continue;
            if ((!with.cpu_layers && head.compute == Processor::Cpu) ||
                (!with.streamed_head && head.tier == Tier::StreamedToGpu))
              continue;
            auto c = gpu_candidate(costs, budgets, bw, work, resident, head, slots, disk_ring, with);
            if (c && (!best || better(*c, *best))) best = std::move(c);
          }
  };
  search(can);
  // A budget too small for a ring beside the CPU layers still runs, without wide passes.
  if (!best && can.wide_passes) {
    Executor narrow = can;
    narrow.wide_passes = false;
    search(narrow);
  }
  if (!best)
    fail("no placement of the {} layers fits the budgets (GPU {}, RAM {}): the KV cache and the rings need more "
         "(give more memory or a shorter --ctx)",
         layers, format_size(budgets.gpu), format_size(budgets.ram));
  if (best->needs_disk() && !positive(bw.disk))
    fail("the plan reads layers from disk but no disk read speed was measured");
  return *best;
}

std::string describe_placement(Placement p) {
  if (p.tier != Tier::Disk) return std::string(tier_name(p.tier));
  return p.compute == Processor::Gpu ? "disk, then streamed to the GPU" : "disk, computed on the CPU";
}

std::string millis(double seconds) { return fmt::format("{:.1f} ms", seconds * 1e3); }

}  // namespace

double bytes_read(const LayerCost& c, double tokens) {
  const double all = static_cast<double>(c.weight_bytes);
  if (c.experts <= 0) return all;
  const double experts = static_cast<double>(c.experts) * static_cast<double>(c.expert_bytes);
  const double routed = std::min(static_cast<double>(c.experts), tokens * static_cast<double>(c.experts_used));
  return all - experts + routed * static_cast<double>(c.expert_bytes);
}

std::string_view tier_name(Tier tier) {
  switch (tier) {
    case Tier::GpuResident: return "gpu-resident";
    case Tier::StreamedToGpu: return "streamed-to-gpu";
    case Tier::CpuCompute: return "cpu";
    case Tier::Disk: return "disk";
  }
  return "?";
}

std::string_view bound_name(Bound bound) {
  switch (bound) {
    case Bound::GpuMemory: return "GPU memory bandwidth";
    case Bound::GpuCompute: return "GPU compute";
    case Bound::HostMemory: return "host memory bandwidth";
    case Bound::CpuCompute: return "CPU compute";
    case Bound::HostToGpu: return "host-to-GPU copy";
    case Bound::Disk: return "disk reads";
  }
  return "?";
}

bool Plan::uses_gpu() const {
  return output.compute == Processor::Gpu ||
         std::any_of(layers.begin(), layers.end(), [](Placement p) { return p.compute == Processor::Gpu; });
}
bool Plan::needs_disk() const { return count(Tier::Disk) > 0; }
int Plan::count(Tier tier) const {
  return static_cast<int>(std::count_if(layers.begin(), layers.end(), [&](Placement p) { return p.tier == tier; }));
}

Prediction predict(const Plan& plan, const ModelCosts& costs, const Bandwidths& bw, const Workload& work) {
  if (plan.layers.size() != costs.layers.size())
    fail("a plan for {} layers applied to a model of {}", plan.layers.size(), costs.layers.size());
  if (work.tokens < 1 || work.logit_rows < 0) fail("a pass needs at least one token");
  Times t;
  const Plan used = pass_plan(plan, work.tokens);  // a wide pass streams the CPU layers
  for (std::size_t i = 0; i < used.layers.size(); ++i) t.add(costs.layers[i], used.layers[i], static_cast<double>(work.tokens), bw);
  t.add(costs.output, plan.output, static_cast<double>(work.logit_rows), bw);
  return t.prediction();
}

Plan pass_plan(const Plan& plan, std::int64_t tokens) {
  if (plan.wide_tokens <= 0 || tokens < plan.wide_tokens) return plan;
  Plan wide = plan;
  for (auto& p : wide.layers)
    if (p.tier == Tier::CpuCompute) p = {Tier::StreamedToGpu, Processor::Gpu};
  return wide;
}

Plan plan(const ModelCosts& costs, const Budgets& budgets, const Bandwidths& bw, const Workload& work,
          const Executor& executor) {
  check_inputs(costs, budgets, bw);
  if (work.tokens < 1 || work.logit_rows < 0) fail("a pass needs at least one token");
  return budgets.gpu > 0 ? plan_gpu(costs, budgets, bw, work, executor) : plan_cpu(costs, budgets, bw, work);
}

std::string layer_ranges(const std::vector<std::int64_t>& layers) {
  std::string out;
  for (std::size_t i = 0; i < layers.size();) {
    std::size_t j = i;
    while (j + 1 < layers.size() && layers[j + 1] == layers[j] + 1) ++j;
    if (!out.empty()) out += ", ";
    out += j == i ? fmt::format("{}", layers[i]) : fmt::format("{}-{}", layers[i], layers[j]);
    i = j + 1;
  }
  return out;
}

std::vector<std::string> describe(const Plan& plan, const ModelCosts& costs, const Budgets& budgets,
                                  const Workload& work) {
  std::vector<std::string> lines;
  lines.push_back(fmt::format("plan: {} layers, {} token{} per pass; budgets: {}RAM {}", plan.layers.size(), work.tokens,
                              work.tokens == 1 ? "" : "s",
                              budgets.gpu > 0 ? fmt::format("GPU {}, ", format_size(budgets.gpu)) : "",
                              format_size(budgets.ram)));
  // Groups in the order their kinds first appear.
  std::vector<std::pair<Placement, std::vector<std::int64_t>>> groups;
  for (std::size_t i = 0; i < plan.layers.size(); ++i) {
    auto it = std::find_if(groups.begin(), groups.end(), [&](const auto& g) { return g.first == plan.layers[i]; });
    if (it == groups.end()) groups.push_back({plan.layers[i], {}}), it = groups.end() - 1;
    it->second.push_back(static_cast<std::int64_t>(i));
  }
  for (const auto& [where, indices] : groups) {
    std::uint64_t bytes = 0;
    for (auto i : indices) bytes += costs.layers[static_cast<std::size_t>(i)].weight_bytes;
    lines.push_back(fmt::format("  layer{} {}: {} ({} layer{}, {})", indices.size() == 1 ? "" : "s", layer_ranges(indices),
                                describe_placement(where), indices.size(), indices.size() == 1 ? "" : "s",
                                format_size(bytes)));
  }
  lines.push_back(fmt::format("  output head: {} ({}{}); embedding: host RAM ({})", describe_placement(plan.output),
                              format_size(costs.output.weight_bytes), costs.output_tied ? ", tied to the embedding" : "",
                              format_size(costs.embedding_bytes)));
  if (plan.gpu_slots > 0)
    lines.push_back(fmt::format("  GPU ring: {} slots of {}", plan.gpu_slots, format_size(plan.gpu_slot_bytes)));
  if (plan.disk_slots > 0)
    lines.push_back(fmt::format("  disk ring: {} host buffer(s) of {}", plan.disk_slots, format_size(plan.disk_slot_bytes)));
  if (plan.max_batch > 0)
    lines.push_back(fmt::format("  prompts in chunks of {} tokens (activations sized to the RAM budget)", plan.max_batch));
  lines.push_back(fmt::format("  memory: {}RAM {} of {}",
                              budgets.gpu > 0 ? fmt::format("GPU {} of {}, ", format_size(plan.gpu_bytes), format_size(budgets.gpu)) : "",
                              format_size(plan.ram_bytes), format_size(budgets.ram)));
  const auto& pr = plan.prediction;
  lines.push_back(fmt::format("predicted: {} per pass ({:.2f} tokens/s), bound by {} (compute chain {}, host-to-GPU copies "
                              "{}, {}disk reads {})",
                              millis(pr.seconds), pr.seconds > 0 ? static_cast<double>(work.tokens) / pr.seconds : 0.0,
                              bound_name(pr.bound), millis(pr.chain_seconds), millis(pr.copy_seconds),
                              pr.copy_seconds > 0 ? fmt::format("RAM reads (CPU and copies) {}, ", millis(pr.host_reads_seconds)) : "",
                              millis(pr.disk_seconds)));
  return lines;
}

}  // namespace aero::residency
