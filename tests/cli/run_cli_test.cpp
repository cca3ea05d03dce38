// aero run, logits, synth, bench and aero-run from the outside: what a user types and sees.
#include <cmath>

#include <fmt/format.h>

#include "aero/format/model_source.h"
#include "backend/cuda_test_support.h"
#include "engine/hf_reference.h"
#include "cli/run_command.h"
#include "test_support.h"

namespace aero {
namespace {

using test::CommandResult;
std::string aero_binary() { return test::built_binary(AERO_BINARY); }
std::string aero_run_binary() { return test::built_binary(AERO_RUN_BINARY); }
CommandResult run(const std::string& binary, const std::string& args) { return test::run_command(binary, args); }
CommandResult aero(const std::string& args) { return run(aero_binary(), args); }

std::string ids_text(std::span<const std::int32_t> ids) { return fmt::format("{}", fmt::join(ids, ",")); }

TEST(RunCli, GreedyIdsReproduceTransformers) {
  AERO_REQUIRE_SHARED(shared);
  for (const auto& name : test::hf_fixture_models()) {
    const auto dir = shared / "fixtures/hf" / name;
    const auto ref = test::HfReference::load(dir);
    const auto generated = std::span(ref.greedy_ids).subspan(ref.prompt_ids.size());
    auto r = aero(fmt::format("run {} --ids {} --greedy -n {} --print-ids --ignore-eos -t 2", dir.string(),
                              ids_text(ref.prompt_ids), generated.size()));
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(r.out, ids_text(generated) + "\n") << name;
    EXPECT_NE(r.err.find("generation: " + std::to_string(generated.size()) + " tokens"), std::string::npos) << r.err;
  }
}

TEST(RunCli, LogitsFileHoldsTransformersLogits) {
  AERO_REQUIRE_SHARED(shared);
  test::ScratchDir scratch;
  const auto dir = shared / "fixtures/hf/qwen3";
  const auto ref = test::HfReference::load(dir);
  const auto out = scratch / "logits.safetensors";
  auto r = aero(fmt::format("logits {} --ids {} --out {} --kv-type f32", dir.string(), ids_text(ref.input_ids), out.string()));
  ASSERT_EQ(r.status, 0) << r.err;
  auto file = format::ModelSource::open(out);
  const auto* t = file->find("logits");
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->shape, (std::vector<std::uint64_t>{ref.input_ids.size(), static_cast<std::uint64_t>(ref.vocab)}));
  const auto* got = reinterpret_cast<const float*>(t->data.data());
  float max_ref = 0, max_diff = 0;
  for (std::size_t i = 0; i < ref.logits.size(); ++i) {
    max_ref = std::max(max_ref, std::fabs(ref.logits[i]));
    max_diff = std::max(max_diff, std::fabs(got[i] - ref.logits[i]));
  }
  EXPECT_LE(max_diff, 1e-4f * max_ref);
}

TEST(RunCli, BadInputIsOneLineAndNonZero) {
  AERO_REQUIRE_SHARED(shared);
  const std::string m = (shared / "fixtures/hf/llama").string();
  const std::vector<std::string> cases = {"run " + m + " --ids 1,2,3,4,5 --ctx 4 --print-ids",  // prompt over the context
                                 "run " + m + " --ids 1,2 --temp -1 --print-ids", "run " + m + " --ids 1,2 --top-p 0 --print-ids",
                                 "run " + m + " --ids 1,x --print-ids", "run " + m + " --ids 1,999 --print-ids",
                                 "run " + m + " -p hello", std::string("run /nonexistent --ids 1 --print-ids"),
                                 "logits " + m + " --ids 1 --out /nonexistent-dir/x.safetensors"};
  for (const auto& args : cases) {
    auto r = aero(args);
    EXPECT_EQ(r.status, 1) << args;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << args << ": " << r.err;
    EXPECT_EQ(r.err.rfind("aero: error: ", 0), 0u) << r.err;
    EXPECT_TRUE(r.out.empty()) << args << ": " << r.out;
  }
}

// --ram and --plan: budgets too small for the model put its layers on disk, and the ids stay
// those of transformers; --plan prints the placement and exits 0; bad budgets are one line.
TEST(RunCli, RamBudgetAndPlan) {
  AERO_REQUIRE_SHARED(shared);
  const auto dir = shared / "fixtures/hf/llama";
  const auto ref = test::HfReference::load(dir);
  const auto generated = std::span(ref.greedy_ids).subspan(ref.prompt_ids.size());
  // The fixture's embedding, head and KV cache (512 positions, f16) take about 0.4 MiB, a layer
  // 180 KiB, activations 1 MiB for 256-token prompt chunks: 700 KiB fits one disk ring buffer
  // beside activations for 32-token chunks, 900 KiB two (16-token chunks); with 1 GiB all stays.
  const std::string flags = fmt::format("--ids {} --greedy -n {} --print-ids --ignore-eos -t 2 --device cpu",
                                        ids_text(ref.prompt_ids), generated.size());
  for (const char* ram : {"700KiB", "900KiB", "1GiB"}) {
    auto r = aero(fmt::format("run {} {} --ram {}", dir.string(), flags, ram));
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(r.out, ids_text(generated) + "\n") << ram;
    EXPECT_EQ(r.err.find("disk tier") != std::string::npos, std::string(ram) != "1GiB") << ram << ": " << r.err;
  }
  auto plan = aero(fmt::format("run {} --plan --ram 700KiB -t 2 --device cpu", dir.string()));
  ASSERT_EQ(plan.status, 0) << plan.err;
  EXPECT_NE(plan.out.find("layers 0-2: disk, computed on the CPU"), std::string::npos) << plan.out;
  // What bounds the pass depends on this machine's measured speeds (a busy CI machine's memory
  // probe once read slower than its disk); that the disk's share is predicted does not.
  EXPECT_NE(plan.out.find("predicted: "), std::string::npos) << plan.out;
  EXPECT_NE(plan.out.find("disk ring: 1 host buffer"), std::string::npos) << plan.out;
  EXPECT_NE(plan.out.find("prompts in chunks of 32 tokens"), std::string::npos) << plan.out;
  auto two = aero(fmt::format("run {} --plan --ram 900KiB -t 2 --device cpu", dir.string()));
  EXPECT_NE(two.out.find("disk ring: 2 host buffer"), std::string::npos) << two.out;
  auto fits = aero(fmt::format("bench {} --plan -t 2 --device cpu", dir.string()));
  ASSERT_EQ(fits.status, 0) << fits.err;
  EXPECT_NE(fits.out.find("layers 0-2: cpu (3 layers"), std::string::npos) << fits.out;
  for (const std::string bad : {"--ram 0", "--ram lots", "--ram -4G", "--ram 100KiB", "--gpu-mem 4XB"}) {
    auto r = aero(fmt::format("run {} --ids 1,2 --print-ids --device cpu {}", dir.string(), bad));
    EXPECT_EQ(r.status, 1) << bad;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << bad << ": " << r.err;
    EXPECT_EQ(r.err.rfind("aero: error: ", 0), 0u) << r.err;
    EXPECT_TRUE(r.out.empty()) << bad << ": " << r.out;
  }
  // --verify of a source without page digests (an HF folder): one line, nothing generated.
  auto unverifiable = aero(fmt::format("run {} --ids 1,2 --print-ids --device cpu --ram 700KiB --verify", dir.string()));
  EXPECT_EQ(unverifiable.status, 1);
  EXPECT_EQ(unverifiable.err, "aero: error: --verify: this hf model carries no page digests (.aero files written with "
                              "--integrity do)\n");
  EXPECT_TRUE(unverifiable.out.empty()) << unverifiable.out;
}

// Mixtures of experts of real layouts (GGUF's stacked experts, a float router): synthesized,
// described, run (the same ids on one thread and two), benchmarked with the routed bytes only.
TEST(RunCli, SynthesizedMixtureOfExperts) {
  test::ScratchDir scratch;
  for (const char* arch : {"qwen3moe", "mixtral"}) {
    const auto model = (scratch / (std::string(arch) + ".gguf")).string();
    ASSERT_EQ(aero(fmt::format("synth {} --arch {} --preset tiny --type Q8_0", model, arch)).status, 0) << arch;
    auto info = aero("info " + model);
    EXPECT_NE(info.out.find("experts:"), std::string::npos) << info.out;
    auto one = aero("run " + model + " --ids 1,2,3 -n 6 --greedy --print-ids --ignore-eos -t 1 --device cpu");
    auto two = aero("run " + model + " --ids 1,2,3 -n 6 --greedy --print-ids --ignore-eos -t 2 --device cpu");
    ASSERT_EQ(one.status, 0) << one.err;
    EXPECT_EQ(std::count(one.out.begin(), one.out.end(), ','), 5) << one.out;
    EXPECT_EQ(one.out, two.out) << arch;
    auto b = aero("bench " + model + " -p 8 -n 4 -r 1 -t 2 --no-probes --device cpu");
    EXPECT_EQ(b.status, 0) << b.err;
    EXPECT_NE(b.out.find("| tg4 |"), std::string::npos) << b.out;
  }
}

TEST(RunCli, SynthesizedModelRunsAndBenchmarks) {
  test::ScratchDir scratch;
  const auto model = (scratch / "tiny.gguf").string();
  ASSERT_EQ(aero("synth " + model + " --arch qwen3 --preset tiny --type Q8_0").status, 0);
  auto g = aero("run " + model + " --ids 1,2,3 -n 5 --seed 3 --print-ids --ignore-eos -t 2");
  ASSERT_EQ(g.status, 0) << g.err;
  EXPECT_EQ(std::count(g.out.begin(), g.out.end(), ','), 4) << g.out;
  EXPECT_EQ(aero("run " + model + " --ids 1,2,3 -n 5 --seed 3 --print-ids --ignore-eos -t 1").out, g.out);  // seeded
  auto b = aero("bench " + model + " -p 16 -n 4 -r 2 -t 2 --no-probes -b 3");
  ASSERT_EQ(b.status, 0) << b.err;
  EXPECT_NE(b.out.find("| pp16 |"), std::string::npos) << b.out;
  EXPECT_NE(b.out.find("| tg4 |"), std::string::npos) << b.out;
  EXPECT_NE(b.out.find("| tg4 b3 |"), std::string::npos) << b.out;  // batch mode
  EXPECT_NE(b.out.find("f32 peak: not measured"), std::string::npos) << b.out;
  EXPECT_NE(aero("synth " + (scratch / "x.gguf").string() + " --preset 70b").status, 0);
  // The CPU kernel overrides: a bad value is one line and a non-zero exit; a good one still runs.
  for (const std::string env : {"AERO_CPU_DISABLE=sse", "AERO_CPU_DISABLE=vbmi,,bf16", "AERO_GEMV_ROWS=diagonal",
                                "AERO_BATCH_INVARIANT=yes"}) {
    auto bad = run(env + " " + aero_binary(), "run " + model + " --ids 1,2,3 -n 2 --print-ids --device cpu");
    EXPECT_EQ(bad.status, 1) << env;
    EXPECT_EQ(std::count(bad.err.begin(), bad.err.end(), '\n'), 1) << env << ": " << bad.err;
    EXPECT_EQ(bad.err.rfind("aero: error: ", 0), 0u) << bad.err;
    EXPECT_TRUE(bad.out.empty()) << env << ": " << bad.out;
  }
  auto narrow = run(std::string("AERO_CPU_DISABLE=avx512,bf16 ") + aero_binary(),
                    "run " + model + " --ids 1,2,3 -n 5 --seed 3 --print-ids --ignore-eos -t 2 --device cpu");
  EXPECT_EQ(narrow.status, 0) << narrow.err;
  EXPECT_EQ(std::count(narrow.out.begin(), narrow.out.end(), ','), 4) << narrow.out;
}

TEST(RunCli, AeroRunTakesThePythonToolsFlags) {
  AERO_REQUIRE_SHARED(shared);
  const std::string m = (shared / "fixtures/hf/qwen2").string();
  auto info = run(aero_run_binary(), m + " --info --dtype bfloat16 --device cpu");
  EXPECT_EQ(info.status, 0) << info.err;
  EXPECT_NE(info.out.find("layers: 3"), std::string::npos) << info.out;
  if (!test::why_no_gpu().empty()) {  // (where there is a GPU, CudaCli runs it)
    auto cuda = run(aero_run_binary(), m + " --device cuda --prompt hi");
    EXPECT_EQ(cuda.status, 1);
    EXPECT_NE(cuda.err.find("CUDA"), std::string::npos) << cuda.err;
  }
  EXPECT_NE(run(aero_run_binary(), m + " --dtype float64 --info").status, 0);
}

// --device on every command that runs a model: a bad name, or a GPU this machine (or build)
// lacks, is one line and exit 1 before anything is read; with a GPU, the same commands run.
TEST(CudaCli, DeviceFlag) {
  test::ScratchDir scratch;
  const auto model = (scratch / "tiny.gguf").string();
  ASSERT_EQ(aero("synth " + model + " --arch llama --preset tiny --type F16").status, 0);
  const bool gpu = test::why_no_gpu().empty();
  std::vector<std::string> refused = {"run " + model + " --ids 1,2 --print-ids --device bogus",
                                      "run " + model + " --ids 1,2 --print-ids --device cuda:x",
                                      "run " + model + " --ids 1,2 --print-ids --device cuda:4096",
                                      "bench " + model + " -p 4 -n 2 -r 1 --device gpu"};
  if (!gpu)
    for (const char* args : {"run {} --ids 1,2 --print-ids --device cuda", "logits {} --ids 1,2 --out {}.logits --device cuda",
                             "bench {} -p 4 -n 2 -r 1 --no-probes --device cuda:0", "chat {} --device cuda"})
      refused.push_back(fmt::format(fmt::runtime(args), model, model));
  for (const auto& args : refused) {
    auto r = aero(args);
    EXPECT_EQ(r.status, 1) << args;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << args << ": " << r.err;
    EXPECT_EQ(r.err.rfind("aero: error: ", 0), 0u) << r.err;
    EXPECT_NE(r.err.find("device"), std::string::npos) << r.err;
    EXPECT_TRUE(r.out.empty()) << args << ": " << r.out;
  }
  auto bogus = run(aero_run_binary(), model + " --device bogus --info");
  EXPECT_EQ(bogus.status, 1);
  EXPECT_EQ(bogus.err.rfind("aero-run: error: unknown device", 0), 0u) << bogus.err;

  auto cpu = aero("run " + model + " --ids 1,2,3 -n 3 --greedy --print-ids --ignore-eos --device cpu -t 2");
  ASSERT_EQ(cpu.status, 0) << cpu.err;
  if (!gpu) return;
  // On a GPU: three ids (CudaForward compares them with transformers), and the speed line and
  // the benchmark name the GPU.
  auto cuda = aero("run " + model + " --ids 1,2,3 -n 3 --greedy --print-ids --ignore-eos --device cuda");
  ASSERT_EQ(cuda.status, 0) << cuda.err;
  EXPECT_EQ(std::count(cuda.out.begin(), cuda.out.end(), ','), 2) << cuda.out;
  EXPECT_NE(cuda.err.find("| cuda ("), std::string::npos) << cuda.err;
  auto bench = aero("bench " + model + " -p 16 -n 4 -r 1 --device cuda");
  ASSERT_EQ(bench.status, 0) << bench.err;
  EXPECT_NE(bench.out.find("backend: cuda ("), std::string::npos) << bench.out;
  auto aero_run = run(aero_run_binary(), model + " --device cuda --info");
  EXPECT_EQ(aero_run.status, 0) << aero_run.err;
}

TEST(CudaCli, InfoListsDevices) {
  auto r = aero("info --devices");
  ASSERT_EQ(r.status, 0) << r.err;
  if (test::why_no_gpu().empty()) EXPECT_EQ(r.out.rfind("cuda:0  ", 0), 0u) << r.out;
  else EXPECT_EQ(r.out, "no CUDA GPU: " + test::why_no_gpu() + "\n");
  auto json = aero("info --devices --json");
  ASSERT_EQ(json.status, 0) << json.err;
  EXPECT_NE(json.out.find("\"gpus\""), std::string::npos) << json.out;
  auto none = aero("info");
  EXPECT_EQ(none.status, 1);
  EXPECT_NE(none.err.find("--devices"), std::string::npos) << none.err;
}

}  // namespace
}  // namespace aero
