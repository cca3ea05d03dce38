// Where each layer of a model lives and runs when the model does not fit where it would run
// fastest: the placement planner. From per-layer sizes, memory budgets, measured bandwidths and
// the workload (tokens per pass) it decides for every layer one of
//   GpuResident    weights kept in GPU memory;
//   StreamedToGpu  weights kept in host RAM, copied to a ring of GPU slots each pass;
//   CpuCompute     weights kept in host RAM, computed there by the CPU;
//   Disk           weights not in the RAM budget: read from disk each pass into a ring of host
//                  buffers, then computed on the CPU or copied to the GPU (`compute` says which);
// and predicts the seconds of one pass with the resource that bounds it.
//
// The time model (docs/architecture.md, "Residency and planning"): the layers' compute is one
// chain (each layer needs the previous one's output), but copies and disk reads do not depend on
// activations, so the copy engine brings streamed layers and the disk reads Disk layers while the
// chain computes (streamed and CPU layers interleaved, S C S C, so the copy engine is never idle
// while the CPU computes). A pass takes the longest of
//   chain = Σ GPU-computed layers max(bytes / GPU memory, FLOPs / GPU FLOP/s)
//         + Σ CPU-computed layers max(bytes / host memory, FLOPs / CPU FLOP/s)
//   copy  = Σ layers crossing PCIe bytes / host→GPU
//   disk  = Σ Disk layers bytes / disk
//   RAM   = (Σ CPU-computed bytes + Σ bytes crossing PCIe) / RAM bandwidth (ram_total)
// The last term: the copy engine reads the same RAM the CPU computes from. On the H200 machine
// (RAM 106 GB/s to 16 cores, PCIe 55 GB/s) a split 8B F16 decode moved 84 GB/s of RAM in all,
// the copies slowing to 30 GB/s while the CPU read: the two add up only where RAM has room for
// both. So for bs=1 decode the part that is not resident moves at about min(PCIe + host, RAM)
// bandwidth, and for prefill or large batches (CPU FLOP-bound) streaming everything wins. Attention's own work and
// the KV cache's reads are left out of the times (small against the weights at these contexts).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace aero::residency {

// "4GiB", "512MiB", "1.5G", "300M", "4096": K/M/G/T with or without "iB"/"B" are binary (1024^n,
// as memory is sized), KB/MB/GB/TB decimal; a bare number is bytes. Throws aero::Error naming
// `what` (e.g. "--ram") for anything else: empty, negative, a unit it does not know, overflow.
std::uint64_t parse_size(std::string_view text, std::string_view what);
// "3.50 GiB", "512 MiB", "100 B": for plans and messages.
std::string format_size(std::uint64_t bytes);

enum class Tier { GpuResident, StreamedToGpu, CpuCompute, Disk };
enum class Processor { Gpu, Cpu };
std::string_view tier_name(Tier tier);  // "gpu-resident", "streamed-to-gpu", "cpu", "disk"

struct Placement {
  Tier tier = Tier::CpuCompute;
  Processor compute = Processor::Cpu;  // Gpu for GpuResident and StreamedToGpu; either for Disk
  bool operator==(const Placement&) const = default;
};

// What one layer (or the output head) costs: bytes as stored, its KV cache, its work.
struct LayerCost {
  std::uint64_t weight_bytes = 0;  // everything stored (and copied, when it streams): matrices, norms, biases
  std::uint64_t kv_bytes = 0;      // its KV cache at the planned context (on the device computing it)
  double flops_per_token = 0;      // 2 × multiply-adds of one token through its matrices
  // A sparse layer: `experts` of `expert_bytes` each, of which a token reads `experts_used`.
  std::uint64_t expert_bytes = 0;
  std::int64_t experts = 0, experts_used = 0;
};
// Bytes a pass of `tokens` tokens reads of the layer where it computes: all of a dense layer; of a
// sparse one, the rest and at most tokens × experts_used experts (as if each token took others).
double bytes_read(const LayerCost& cost, double tokens);

struct ModelCosts {
  std::vector<LayerCost> layers;
  // The output head (flops per row of logits). When `output_tied` it is the embedding: on the
  // CPU it costs no RAM beyond the embedding's.
  LayerCost output;
  bool output_tied = false;
  std::uint64_t embedding_bytes = 0;  // always in host RAM: rows are looked up on the host
  // Activations of one pass (at the most tokens a pass takes), on the device that computes.
  std::uint64_t activation_bytes = 0;
  // The tokens activation_bytes is for (0: a fixed size): a plan may pass fewer tokens at a time
  // to make room (Plan::max_batch).
  std::int64_t activation_tokens = 0;
};

struct Budgets {
  std::uint64_t gpu = 0;  // 0: no GPU, a CPU run
  std::uint64_t ram = 0;
};

// Bytes/s and FLOP/s as measured on this machine. GPU figures are unused without a GPU and disk
// is unused when no layer goes to disk (a plan needs it only for its prediction then).
struct Bandwidths {
  double gpu_memory = 0;   // GPU reading its own memory
  double host_to_gpu = 0;  // pinned host memory → GPU copy
  double host_memory = 0;  // CPU reading RAM with every compute thread
  double disk = 0;         // sequential O_DIRECT reads of the model file
  double gpu_flops = 0;
  double cpu_flops = 0;
  // RAM's bandwidth to the CPU and the copy engine together, as measured with both at work
  // (backend::probe_host_copies); 0: host_memory, as where the cores alone fill it (the H200
  // machine's 16 cores read 98-106 GB/s alone, 84 GB/s in all with the copies).
  double ram_total = 0;
};

struct Workload {
  std::int64_t tokens = 1;      // tokens through every layer per pass
  std::int64_t logit_rows = 1;  // rows of logits per pass (one per sequence)
  static Workload decode() { return {1, 1}; }
  static Workload prefill(std::int64_t n) { return {n, 1}; }
  static Workload batch(std::int64_t sequences) { return {sequences, sequences}; }
};

enum class Bound { GpuMemory, GpuCompute, HostMemory, CpuCompute, HostToGpu, Disk };
std::string_view bound_name(Bound bound);  // "GPU memory bandwidth", "host→GPU copy", ...

struct Prediction {
  double seconds = 0;  // one pass: max(chain, copy, disk, RAM reads)
  Bound bound = Bound::HostMemory;
  double chain_seconds = 0, copy_seconds = 0, disk_seconds = 0;
  double host_reads_seconds = 0;  // RAM read by the CPU and the copies together
  // The chain's parts, each layer counted under the limit that sets its time.
  double gpu_memory_seconds = 0, gpu_compute_seconds = 0, host_memory_seconds = 0, cpu_compute_seconds = 0;
};

struct Plan {
  std::vector<Placement> layers;
  Placement output;  // the output head (never Disk: it is read every pass, whatever the layers)
  // Rings: GPU slots for layers that cross PCIe (streamed or from disk), host buffers for layers
  // read from disk; each slot holds the largest such layer.
  int gpu_slots = 0;
  std::uint64_t gpu_slot_bytes = 0;
  int disk_slots = 0;
  std::uint64_t disk_slot_bytes = 0;
  std::uint64_t gpu_bytes = 0, ram_bytes = 0;  // what the plan uses of each budget
  // Tokens a pass may take, when the plan shrank the activations to fit a second disk ring
  // buffer (reads then overlap computing); 0: as many as the costs were given for.
  std::int64_t max_batch = 0;
  // Passes of at least this many tokens (prompts, batches) compute the CPU layers on the GPU
  // too, streamed through the ring (pass_plan); 0: never. The CPU computes a layer's prompt of
  // many tokens FLOP-bound, the GPU after a copy at PCIe speed.
  std::int64_t wide_tokens = 0;
  Prediction prediction;

  bool uses_gpu() const;
  bool needs_disk() const;
  int count(Tier tier) const;
};

// The plan with the shortest predicted pass that fits both budgets (ties: more on the GPU, less
// read from disk). Throws aero::Error (one line) when it cannot run at all: a zero budget, a
// needed bandwidth that is not positive, one layer's working set larger than the GPU budget, or
// RAM too small for what must stay in it (embedding, KV cache and activations of CPU-computed
// layers, the disk ring).
// What the engine can run of a GPU plan (the planner considers only that). Today's computes
// layers and the head on the CPU within a GPU run but does not stream the head.
struct Executor {
  bool cpu_layers = true;     // layers (and the head) computed by the CPU in a GPU run
  bool streamed_head = true;  // the output head copied to the GPU each pass
  // Passes of many tokens stream the CPU layers through the ring (Plan::wide_tokens): a plan
  // with CPU layers keeps a ring of two slots or more for them.
  bool wide_passes = false;
};
// The tokens from which a plan's wide passes pay: llama.cpp's figure for copying CPU weights to
// the GPU (a prompt of 32 tokens on the CPU is already FLOP-bound there).
inline constexpr std::int64_t kWidePassTokens = 32;
Plan plan(const ModelCosts& costs, const Budgets& budgets, const Bandwidths& bw, const Workload& work,
          const Executor& executor = {});

// The time model applied to a given plan (e.g. a decode plan's time on a prefill workload), as
// the pass runs it (pass_plan: a wide pass streams the CPU layers).
Prediction predict(const Plan& plan, const ModelCosts& costs, const Bandwidths& bw, const Workload& work);

// Where the layers of a pass of `tokens` tokens run: the plan itself, or for a wide pass
// (tokens ≥ plan.wide_tokens > 0) with its CPU-computed layers streamed to the GPU.
Plan pass_plan(const Plan& plan, std::int64_t tokens);

// What --plan prints: one line per group of layers with the same placement ("layers 0-7, 12:
// gpu-resident (3.50 GiB)"), the output head, the rings, memory used of each budget, and the
// predicted time per pass with its bound.
std::vector<std::string> describe(const Plan& plan, const ModelCosts& costs, const Budgets& budgets,
                                  const Workload& work);

// "0-7, 9, 11-12": layer indices as ranges.
std::string layer_ranges(const std::vector<std::int64_t>& layers);

}  // namespace aero::residency
