// The placement planner on synthetic models whose decisions and times can be worked out by
// hand: every number below is derived in the comment beside it, not recorded from a run.
#include <gtest/gtest.h>

#include <cmath>

#include "aero/error.h"
#include "aero/residency/budgets.h"
#include "aero/residency/plan.h"

namespace aero::residency {
namespace {

constexpr std::uint64_t MiB = 1ull << 20, GiB = 1ull << 30;
constexpr std::uint64_t kSlack = 64 << 10;  // the planner's slack per ring slot
constexpr double B = 100.0 * MiB;      // one synthetic layer

// `n` layers of 100 MiB (KV `kv` each), a tied head of `head` bytes, no activations.
ModelCosts uniform(int n, std::uint64_t kv = 0, double flops = 0, std::uint64_t head = 0) {
  ModelCosts c;
  for (int i = 0; i < n; ++i) c.layers.push_back({static_cast<std::uint64_t>(B), kv, flops});
  c.output = {head, 0, 0};
  c.output_tied = true;
  c.embedding_bytes = head;
  return c;
}

// Per 100 MiB layer: 1 ms on the GPU, 50 ms on the CPU, 100 ms over PCIe, 1 s from disk.
// RAM with room for the CPU's reads and the copies together (10 ms a layer), unless a test says.
Bandwidths bandwidths() {
  return {.gpu_memory = B / 0.001, .host_to_gpu = B / 0.1, .host_memory = B / 0.05, .disk = B / 1.0,
          .gpu_flops = 1e15, .cpu_flops = 1e12, .ram_total = B / 0.01};
}

std::vector<std::int64_t> layers_of(const Plan& p, Tier tier) {
  std::vector<std::int64_t> out;
  for (std::size_t i = 0; i < p.layers.size(); ++i)
    if (p.layers[i].tier == tier) out.push_back(static_cast<std::int64_t>(i));
  return out;
}

TEST(ParseSize, UnitsAndBytes) {
  EXPECT_EQ(parse_size("4GiB", "--ram"), 4 * GiB);
  EXPECT_EQ(parse_size("512MiB", "--ram"), 512 * MiB);
  EXPECT_EQ(parse_size("1.5G", "--ram"), 3 * GiB / 2);
  EXPECT_EQ(parse_size("300m", "--ram"), 300 * MiB);
  EXPECT_EQ(parse_size("2 GB", "--ram"), 2'000'000'000u);
  EXPECT_EQ(parse_size("10KB", "--ram"), 10'000u);
  EXPECT_EQ(parse_size("4096", "--ram"), 4096u);
  EXPECT_EQ(parse_size(" 1T ", "--ram"), 1ull << 40);
  EXPECT_EQ(parse_size("0", "--ram"), 0u);
}

TEST(ParseSize, GarbageIsOneLineNamingTheFlag) {
  for (const char* bad : {"", "-1G", "abc", "4XB", "1.2.3G", "G", "99999999999T", "4 GiB extra"}) {
    try {
      parse_size(bad, "--gpu-mem");
      ADD_FAILURE() << "accepted '" << bad << "'";
    } catch (const Error& e) {
      const std::string m = e.what();
      EXPECT_NE(m.find("--gpu-mem"), std::string::npos) << m;
      EXPECT_EQ(m.find('\n'), std::string::npos) << m;
    }
  }
}

TEST(FormatSize, Readable) {
  EXPECT_EQ(format_size(100), "100 B");
  EXPECT_EQ(format_size(512 * MiB), "512 MiB");
  EXPECT_EQ(format_size(3 * GiB + GiB / 2), "3.50 GiB");
  EXPECT_EQ(layer_ranges({0, 1, 2, 3, 5, 7, 8}), "0-3, 5, 7-8");
}

TEST(Plan, CpuEverythingFits) {
  auto c = uniform(4, 10 * MiB, 0, 50 * MiB);
  c.activation_bytes = 20 * MiB;
  const auto p = plan(c, {.gpu = 0, .ram = GiB}, bandwidths(), Workload::decode());
  for (auto l : p.layers) EXPECT_EQ(l, (Placement{Tier::CpuCompute, Processor::Cpu}));
  EXPECT_EQ(p.disk_slots, 0);
  // embedding 50 + KV 4×10 + activations 20 + layers 4×100 MiB.
  EXPECT_EQ(p.ram_bytes, 510 * MiB);
  // 4 layers × 50 ms, the 50 MiB head at 0.5 ms/MiB: 225 ms, host memory bound.
  EXPECT_NEAR(p.prediction.seconds, 0.225, 1e-9);
  EXPECT_EQ(p.prediction.bound, Bound::HostMemory);
  EXPECT_FALSE(p.uses_gpu());
}

TEST(Plan, CpuSomeLayersFromDiskSpreadOverTheModel) {
  auto c = uniform(8, 10 * MiB, 0, 50 * MiB);
  c.activation_bytes = 20 * MiB;
  // Fixed 150 MiB, a ring of three 100 MiB (+ slack) buffers, then room for 2.5 layers: 2 cached.
  const std::uint64_t ram = 150 * MiB + 3 * (100 * MiB + kSlack) + 250 * MiB;
  const auto p = plan(c, {.gpu = 0, .ram = ram}, bandwidths(), Workload::decode());
  // Layers decided in the order 0, 4, 2, 6, 1, 5, 3, 7: the first two stay in RAM.
  EXPECT_EQ(layers_of(p, Tier::CpuCompute), (std::vector<std::int64_t>{0, 4}));
  EXPECT_EQ(layers_of(p, Tier::Disk), (std::vector<std::int64_t>{1, 2, 3, 5, 6, 7}));
  for (auto i : layers_of(p, Tier::Disk)) EXPECT_EQ(p.layers[static_cast<std::size_t>(i)].compute, Processor::Cpu);
  EXPECT_EQ(p.disk_slots, 3);
  EXPECT_EQ(p.disk_slot_bytes, 100 * MiB + kSlack);
  EXPECT_EQ(p.ram_bytes, 150 * MiB + 3 * (100 * MiB + kSlack) + 200 * MiB);
  // Six layers from disk at 1 s each; the CPU chain is 8 × 50 ms + the head's 25 ms.
  EXPECT_NEAR(p.prediction.seconds, 6.0, 1e-9);
  EXPECT_NEAR(p.prediction.chain_seconds, 0.425, 1e-9);
  EXPECT_EQ(p.prediction.bound, Bound::Disk);
}

// Activations for 256 tokens leave room for one ring buffer; for 64 they leave two: the plan
// takes prompts in 64-token chunks so that a layer's read overlaps the one before it computing.
TEST(Plan, CpuShrinksPromptChunksForASecondRingBuffer) {
  auto c = uniform(10);
  c.activation_bytes = 256 * MiB;  // 1 MiB a token
  c.activation_tokens = 256;
  const std::uint64_t slot = static_cast<std::uint64_t>(B) + kSlack;
  const auto p = plan(c, {.gpu = 0, .ram = 64 * MiB + 2 * slot + MiB}, bandwidths(), Workload::decode());
  EXPECT_EQ(p.max_batch, 64);
  EXPECT_EQ(p.disk_slots, 2);
  EXPECT_EQ(p.count(Tier::Disk), 10);
  EXPECT_LE(p.ram_bytes, 64 * MiB + 2 * slot + MiB);
  // Room for two buffers as it is: nothing shrinks.
  EXPECT_EQ(plan(c, {.gpu = 0, .ram = 256 * MiB + 2 * slot}, bandwidths(), Workload::decode()).max_batch, 0);
  // A fixed activation size (no tokens given) never shrinks.
  c.activation_tokens = 0;
  EXPECT_EQ(plan(c, {.gpu = 0, .ram = 256 * MiB + slot + MiB}, bandwidths(), Workload::decode()).max_batch, 0);
}

TEST(Plan, CpuNothingFitsButOneBuffer) {
  auto c = uniform(8, 10 * MiB, 0, 50 * MiB);
  c.activation_bytes = 20 * MiB;
  const auto p = plan(c, {.gpu = 0, .ram = 150 * MiB + 100 * MiB + kSlack}, bandwidths(), Workload::decode());
  EXPECT_EQ(p.count(Tier::Disk), 8);
  EXPECT_EQ(p.disk_slots, 1);
  EXPECT_NEAR(p.prediction.seconds, 8.0, 1e-9);
}

TEST(Plan, CpuTooLittleRamIsAnError) {
  auto c = uniform(8, 10 * MiB, 0, 50 * MiB);
  c.activation_bytes = 20 * MiB;
  EXPECT_THROW(plan(c, {.gpu = 0, .ram = 200 * MiB}, bandwidths(), Workload::decode()), Error);  // no room for a buffer
  EXPECT_THROW(plan(c, {.gpu = 0, .ram = 100 * MiB}, bandwidths(), Workload::decode()), Error);  // not even the KV cache
}

TEST(Plan, ZeroAndGarbageInputs) {
  const auto c = uniform(4);
  EXPECT_THROW(plan(c, {.gpu = 0, .ram = 0}, bandwidths(), Workload::decode()), Error);
  auto bw = bandwidths();
  bw.host_memory = std::nan("");
  EXPECT_THROW(plan(c, {.gpu = 0, .ram = GiB}, bw, Workload::decode()), Error);
  bw = bandwidths();
  bw.host_to_gpu = -1;
  EXPECT_THROW(plan(c, {.gpu = GiB, .ram = GiB}, bw, Workload::decode()), Error);
  EXPECT_NO_THROW(plan(c, {.gpu = 0, .ram = GiB}, bw, Workload::decode()));  // the CPU needs no PCIe
  bw = bandwidths();
  bw.disk = 0;  // needed only when something is read from disk
  EXPECT_NO_THROW(plan(c, {.gpu = 0, .ram = GiB}, bw, Workload::decode()));
  EXPECT_THROW(plan(c, {.gpu = 0, .ram = 3 * 101 * MiB + 50 * MiB}, bw, Workload::decode()), Error);
  EXPECT_THROW(plan(c, {.gpu = 0, .ram = GiB}, bandwidths(), Workload{0, 0}), Error);
  EXPECT_THROW(plan(ModelCosts{}, {.gpu = 0, .ram = GiB}, bandwidths(), Workload::decode()), Error);
}

TEST(Plan, GpuEverythingFits) {
  const auto c = uniform(10, 10 * MiB, 0, 50 * MiB);
  const auto p = plan(c, {.gpu = 2 * GiB, .ram = GiB}, bandwidths(), Workload::decode());
  EXPECT_EQ(p.count(Tier::GpuResident), 10);
  EXPECT_EQ(p.output, (Placement{Tier::GpuResident, Processor::Gpu}));
  EXPECT_EQ(p.gpu_slots, 0);
  EXPECT_EQ(p.gpu_bytes, 10 * 110 * MiB + 50 * MiB);
  // 10 layers at 1 ms and the 50 MiB head at 0.5 ms: GPU memory bound.
  EXPECT_NEAR(p.prediction.seconds, 0.0105, 1e-9);
  EXPECT_EQ(p.prediction.bound, Bound::GpuMemory);
}

TEST(Plan, GpuDecodeSplitsStreamingAndCpu) {
  const auto c = uniform(10);
  // Two resident layers and a ring of two slots (three resident need 5 layers' room).
  const auto p = plan(c, {.gpu = 4 * 100 * MiB + 2 * kSlack, .ram = 4 * GiB}, bandwidths(), Workload::decode());
  EXPECT_EQ(layers_of(p, Tier::GpuResident), (std::vector<std::int64_t>{0, 1}));
  EXPECT_EQ(p.gpu_slots, 2);
  // Streamed s, on the CPU 8 - s: pass = max(0.1 s, 0.05 (8 - s) + 0.001 (2 + s)): s = 3 gives
  // max(0.3, 0.255) = 0.3; s = 2 gives max(0.2, 0.304); four resident and six on the CPU 0.304.
  EXPECT_EQ(p.count(Tier::StreamedToGpu), 3);
  EXPECT_EQ(p.count(Tier::CpuCompute), 5);
  EXPECT_NEAR(p.prediction.seconds, 0.3, 1e-9);
  EXPECT_NEAR(p.prediction.chain_seconds, 0.255, 1e-9);
  EXPECT_EQ(p.prediction.bound, Bound::HostToGpu);
  // Interleaved: the copy engine works while the CPU computes (no two streamed layers adjacent).
  const auto streamed = layers_of(p, Tier::StreamedToGpu);
  for (std::size_t i = 1; i < streamed.size(); ++i) EXPECT_GT(streamed[i] - streamed[i - 1], 1);
}

// Where the cores alone fill RAM's bandwidth (ram_total 0: host_memory), a layer streamed costs
// RAM time as one computed on the CPU does: splitting no longer pays. Four resident layers and
// six on the CPU take max(chain 0.304, RAM 0.3); any ring leaves fewer resident and the same RAM
// time for the rest (eight layers: 0.4 s).
TEST(Plan, GpuDecodeSplitNeedsRoomInRam) {
  const auto c = uniform(10);
  auto bw = bandwidths();
  bw.ram_total = 0;
  const auto p = plan(c, {.gpu = 4 * 100 * MiB + 2 * kSlack, .ram = 4 * GiB}, bw, Workload::decode());
  EXPECT_EQ(p.count(Tier::StreamedToGpu), 0);
  EXPECT_EQ(p.count(Tier::GpuResident), 4);
  EXPECT_EQ(p.count(Tier::CpuCompute), 6);
  EXPECT_NEAR(p.prediction.seconds, 0.304, 1e-9);
  EXPECT_NEAR(p.prediction.host_reads_seconds, 0.3, 1e-9);
  EXPECT_EQ(p.prediction.bound, Bound::HostMemory);
  // The split of GpuDecodeSplitsStreamingAndCpu, so predicted: bound by RAM, 8 layers' reads.
  Plan split = plan(c, {.gpu = 4 * 100 * MiB + 2 * kSlack, .ram = 4 * GiB}, bandwidths(), Workload::decode());
  const auto slow = predict(split, c, bw, Workload::decode());
  EXPECT_NEAR(slow.seconds, 0.4, 1e-9);
  EXPECT_EQ(slow.bound, Bound::HostMemory);
}

// An engine with wide passes keeps a ring of two slots in a plan with CPU layers (fewer layers
// resident than GpuDecodeSplitNeedsRoomInRam's four), and its prompts stream those layers: eight
// copies of 0.1 s, not eight layers on the CPU.
TEST(Plan, WidePassesKeepARingForTheCpuLayers) {
  const auto c = uniform(10, 0, 1e10);  // 10 GFLOP a token: 512 tokens take 5.12 s a layer on the CPU
  auto bw = bandwidths();
  bw.ram_total = 0;
  const Budgets budgets{.gpu = 4 * 100 * MiB + 2 * kSlack, .ram = 4 * GiB};
  const auto p = plan(c, budgets, bw, Workload::decode(), Executor{.cpu_layers = true, .streamed_head = false, .wide_passes = true});
  EXPECT_EQ(p.gpu_slots, 2);
  EXPECT_EQ(p.count(Tier::GpuResident), 2);
  EXPECT_GT(p.count(Tier::CpuCompute), 0);
  EXPECT_EQ(p.wide_tokens, kWidePassTokens);
  const auto prompt = predict(p, c, bw, Workload::prefill(512));
  EXPECT_NEAR(prompt.copy_seconds, 0.8, 1e-9);
  EXPECT_NEAR(prompt.seconds, 0.8, 1e-9);
  EXPECT_EQ(prompt.bound, Bound::HostToGpu);
  // Below the wide passes' tokens the CPU layers stay on the CPU.
  EXPECT_EQ(pass_plan(p, kWidePassTokens - 1).layers, p.layers);
  EXPECT_EQ(pass_plan(p, kWidePassTokens).count(Tier::CpuCompute), 0);
  // A GPU budget with room for one layer and no ring: the CPU layers stay, without wide passes.
  const auto small = plan(c, {.gpu = 100 * MiB + kSlack, .ram = 4 * GiB}, bw, Workload::decode(),
                          Executor{.cpu_layers = true, .streamed_head = false, .wide_passes = true});
  EXPECT_EQ(small.wide_tokens, 0);
  EXPECT_GT(small.count(Tier::CpuCompute), 0);
  // Without CPU layers there is nothing to widen.
  Plan all_gpu = p;
  for (auto& l : all_gpu.layers) l = {Tier::GpuResident, Processor::Gpu};
  all_gpu.wide_tokens = 0;
  EXPECT_EQ(pass_plan(all_gpu, 512).layers, all_gpu.layers);
}

// An engine that computes nothing on the CPU in a GPU run and streams no head gets the same
// budgets spent on the GPU only: the decode split becomes everything streamed, the head resident.
TEST(Plan, WithoutCpuLayersEveryLayerRunsOnTheGpu) {
  const auto c = uniform(10, 0, 0, 50 * MiB);
  const auto p = plan(c, {.gpu = 4 * 100 * MiB + 50 * MiB + 2 * kSlack, .ram = 4 * GiB}, bandwidths(), Workload::decode(),
                      Executor{.cpu_layers = false, .streamed_head = false});
  EXPECT_EQ(p.count(Tier::CpuCompute), 0);
  EXPECT_EQ(p.count(Tier::GpuResident) + p.count(Tier::StreamedToGpu), 10);
  EXPECT_GE(p.count(Tier::StreamedToGpu), 1);
  EXPECT_EQ(p.output, (Placement{Tier::GpuResident, Processor::Gpu}));
  EXPECT_GE(p.gpu_slots, 1);
  // With split allowed, the same budgets put layers on the CPU (the head may leave the GPU).
  EXPECT_GT(plan(c, {.gpu = 4 * 100 * MiB + 50 * MiB + 2 * kSlack, .ram = 4 * GiB}, bandwidths(), Workload::decode())
                .count(Tier::CpuCompute),
            0);
}

// A sparse layer is read where it computes only as far as its tokens are routed; a copy moves all
// of it. 100 MiB layers, 90 MiB of them 10 experts, 2 per token: a token reads 28 MiB (14 ms on the
// CPU), 512 tokens every expert (50 ms); streamed to the GPU each still copies 100 MiB (100 ms).
TEST(Plan, SparseLayersAreReadAsRouted) {
  auto c = uniform(4);
  for (auto& l : c.layers) l.experts = 10, l.experts_used = 2, l.expert_bytes = static_cast<std::uint64_t>(B * 0.09);
  EXPECT_NEAR(bytes_read(c.layers[0], 1), B * 0.28, 1.0);
  EXPECT_NEAR(bytes_read(c.layers[0], 512), B, 1.0);
  const auto p = plan(c, {.gpu = 0, .ram = GiB}, bandwidths(), Workload::decode());
  EXPECT_NEAR(p.prediction.seconds, 4 * 0.014, 1e-6);
  EXPECT_NEAR(predict(p, c, bandwidths(), Workload::prefill(512)).seconds, 4 * 0.05, 1e-6);
  Plan streamed = p;
  for (auto& l : streamed.layers) l = {Tier::StreamedToGpu, Processor::Gpu};
  streamed.output = {Tier::GpuResident, Processor::Gpu};
  EXPECT_NEAR(predict(streamed, c, bandwidths(), Workload::decode()).copy_seconds, 4 * 0.1, 1e-6);
}

TEST(Plan, GpuPrefillStreamsEverything) {
  // 10 GFLOP per token per layer: 512 tokens take 5.12 s on a 1 TFLOP/s CPU, 5.12 ms on the GPU.
  const auto c = uniform(10, 0, 1e10);
  const Budgets budgets{.gpu = 4 * 100 * MiB + 2 * kSlack, .ram = 4 * GiB};
  const auto p = plan(c, budgets, bandwidths(), Workload::prefill(512));
  EXPECT_EQ(p.count(Tier::GpuResident), 2);
  EXPECT_EQ(p.count(Tier::StreamedToGpu), 8);
  EXPECT_EQ(p.count(Tier::CpuCompute), 0);
  // Eight copies of 0.1 s; the chain is 10 × 5.12 ms.
  EXPECT_NEAR(p.prediction.seconds, 0.8, 1e-9);
  EXPECT_NEAR(p.prediction.chain_seconds, 0.0512, 1e-9);
  EXPECT_EQ(p.prediction.bound, Bound::HostToGpu);
  // For one token the CPU is memory-bound again (50 ms a layer) and the split of the decode test
  // returns; that plan on the prompt would keep its five CPU layers FLOP-bound: 25.6 s.
  const auto decode = plan(c, budgets, bandwidths(), Workload::decode());
  EXPECT_EQ(decode.count(Tier::CpuCompute), 5);
  EXPECT_NEAR(decode.prediction.seconds, 0.3, 1e-9);
  const auto slow = predict(decode, c, bandwidths(), Workload::prefill(512));
  EXPECT_NEAR(slow.seconds, 5 * 5.12 + 5 * 0.00512, 1e-9);
  EXPECT_EQ(slow.bound, Bound::CpuCompute);
}

TEST(Plan, GpuPrefillKeepsACpuLayerWhenItPays) {
  // 1 GFLOP per token: 0.512 s a layer on the CPU for 512 tokens. s streamed, 8 - s on the CPU:
  // max(0.1 s, 0.512 (8 - s) + 0.001 (2 + s)) is 0.7 at s = 7 (chain 0.521), 0.8 at s = 8.
  const auto c = uniform(10, 0, 1e9);
  const auto p = plan(c, {.gpu = 4 * 100 * MiB + 2 * kSlack, .ram = 4 * GiB}, bandwidths(), Workload::prefill(512));
  EXPECT_EQ(p.count(Tier::StreamedToGpu), 7);
  EXPECT_EQ(p.count(Tier::CpuCompute), 1);
  EXPECT_NEAR(p.prediction.seconds, 0.7, 1e-9);
  EXPECT_NEAR(p.prediction.chain_seconds, 0.521, 1e-9);
}

TEST(Plan, GpuLayersFromDisk) {
  const auto c = uniform(10);
  // RAM for the disk ring (three 100 MiB (+ slack) buffers) and two layers. Four layers resident on the
  // GPU without a ring leave six: two in RAM on the CPU, four from disk (4 s); two resident with
  // a ring leave eight, six from disk (6 s).
  const auto p = plan(c, {.gpu = 4 * 100 * MiB + 2 * kSlack, .ram = 3 * (100 * MiB + kSlack) + 2 * 100 * MiB},
                      bandwidths(), Workload::decode());
  EXPECT_EQ(p.count(Tier::GpuResident), 4);
  EXPECT_EQ(p.count(Tier::CpuCompute), 2);
  EXPECT_EQ(p.count(Tier::Disk), 4);
  EXPECT_EQ(p.disk_slots, 3);
  EXPECT_EQ(p.gpu_slots, 0);
  EXPECT_NEAR(p.prediction.seconds, 4.0, 1e-9);
  EXPECT_EQ(p.prediction.bound, Bound::Disk);
  EXPECT_TRUE(p.needs_disk());
}

TEST(Plan, OneLayerLargerThanTheGpuBudget) {
  auto c = uniform(4, 10 * MiB, 1e9);
  c.activation_bytes = 5 * MiB;
  try {
    plan(c, {.gpu = 100 * MiB, .ram = 4 * GiB}, bandwidths(), Workload::decode());
    FAIL() << "a 115 MiB working set planned into 100 MiB";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("working set of 115 MiB"), std::string::npos) << e.what();
  }
  // Room for one slot and the KV cache of every layer: for a prompt (0.512 s a layer on the CPU)
  // every layer streams through that slot (0.4 s of copies) rather than one staying resident.
  const auto p = plan(c, {.gpu = 5 * MiB + 100 * MiB + kSlack + 40 * MiB, .ram = 4 * GiB}, bandwidths(),
                      Workload::prefill(512));
  EXPECT_EQ(p.count(Tier::StreamedToGpu), 4);
  EXPECT_NEAR(p.prediction.seconds, 0.4, 1e-9);
  EXPECT_EQ(p.gpu_slots, 1);
  EXPECT_EQ(p.count(Tier::GpuResident), 0);
}

TEST(Plan, DescribeNamesGroupsAndTheBound) {
  const auto c = uniform(10);
  const Budgets budgets{.gpu = 4 * 100 * MiB + 2 * kSlack, .ram = 4 * GiB};
  const auto p = plan(c, budgets, bandwidths(), Workload::decode());
  const auto lines = describe(p, c, budgets, Workload::decode());
  std::string all;
  for (const auto& l : lines) all += l + "\n";
  EXPECT_NE(all.find("layers 0-1: gpu-resident (2 layers, 200 MiB)"), std::string::npos) << all;
  EXPECT_NE(all.find("streamed-to-gpu (3 layers"), std::string::npos) << all;
  EXPECT_NE(all.find("predicted: 300.0 ms per pass (3.33 tokens/s), bound by host-to-GPU copy"), std::string::npos) << all;
}

TEST(Budgets, MeminfoAndCgroup) {
  EXPECT_EQ(meminfo_available("MemTotal:       32000000 kB\nMemFree: 1 kB\nMemAvailable:   21084652 kB\n"),
            21084652ull * 1024);
  EXPECT_FALSE(meminfo_available("MemTotal: 5 kB\n"));
  // v2: 4 GiB limit, 3 GiB used of which 2 GiB page cache: 3 GiB free.
  EXPECT_EQ(cgroup_free("4294967296\n", "3221225472\n", "anon 1073741824\nfile 2147483648\n"), 3 * GiB);
  EXPECT_EQ(cgroup_free("1073741824", "0", "total_cache 0\ncache 0\n"), GiB);  // v1 names
  EXPECT_FALSE(cgroup_free("max\n", "100", ""));
  EXPECT_EQ(cgroup_free("100", "500", ""), 0u);
  EXPECT_EQ(with_margin(10 * GiB), 9 * GiB);     // a tenth
  EXPECT_EQ(with_margin(GiB), GiB - 128 * MiB);  // at least 128 MiB
  EXPECT_EQ(with_margin(100 * GiB), 98 * GiB);   // at most 2 GiB
  EXPECT_EQ(with_margin(MiB), 0u);
  EXPECT_GT(default_ram_budget(), 0u);  // this machine has some memory free
}

}  // namespace
}  // namespace aero::residency
