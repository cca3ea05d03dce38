// Layers streamed to the GPU (from pinned RAM, and from the disk tier) give the logits of the
// all-resident GPU run bit for bit: the same kernels read the same bytes, from a ring slot
// instead of their own allocation. Each fixture as its HF folder (f32) and as a Q4_0 GGUF.
// Skipped, saying why, without a CUDA GPU.
#include <gtest/gtest.h>

#include "aero/convert/convert.h"
#include "backend/cuda_test_support.h"
#include "engine/hf_reference.h"
#include "engine/streaming_test_support.h"
#include "test_support.h"

namespace aero::test {
namespace {

TEST(CudaStreaming, StreamedLayersGiveTheResidentLogitsBitForBit) {
  AERO_REQUIRE_GPU();
  AERO_REQUIRE_SHARED(shared);
  ScratchDir scratch;
  auto gpu = backend::make_backend("cuda", 2);
  const std::vector<std::pair<const char*, std::vector<residency::Placement>>> plans = {
      {"all streamed", {kStreamed}}, {"every kind", {kStreamed, kFromDisk, kResident}}};
  for (const char* fixture : {"llama", "qwen3", "gemma2"}) {
    const auto dir = shared / "fixtures/hf" / fixture;
    const auto ref = HfReference::load(dir);
    const auto q4 = scratch / (std::string(fixture) + "-q4_0.gguf");
    convert::quantize(dir, q4, convert::OutputKind::Gguf, quant::GgmlType::Q4_0, {});
    for (const auto& path : {dir, q4}) {
      auto resident = engine::Model::open(path);
      const auto expected = logits_of_greedy_run(*resident, *gpu, ref, backend::KvType::F16);
      for (const auto& [name, kinds] : plans)
        for (int slots : {1, 2, 3}) {
          auto model = engine::Model::open(path, {}, {.planner = placing(kinds, slots), .disk = {}});
          const auto got = logits_of_greedy_run(*model, *gpu, ref, backend::KvType::F16);
          ASSERT_EQ(got.size(), expected.size());
          for (std::size_t i = 0; i < got.size(); ++i)
            EXPECT_EQ(got[i], expected[i]) << path << ", " << name << ", " << slots << " slots, pass " << i;
        }
    }
  }
}

// The split with wide passes: the prompt's pass computes the CPU layers on the GPU (streamed,
// their KV rows moved to the CPU's cache after), the generation's passes on the CPU. Both lanes'
// kernels differ, so against transformers: every prompt position's logits, and the greedy
// continuation.
TEST(CudaStreaming, SplitWithWidePromptsMatchesTransformers) {
  AERO_REQUIRE_GPU();
  AERO_REQUIRE_SHARED(shared);
  auto gpu = backend::make_backend("cuda", 2);
  for (const char* fixture : {"llama", "qwen3"}) {
    const auto dir = shared / "fixtures/hf" / fixture;
    const auto ref = HfReference::load(dir);
    auto model = engine::Model::open(dir, {}, {.planner = placing({kOnCpu, kStreamed, kResident}, 2, kResident, 2), .disk = {}});
    engine::Session prompt(*model, *gpu, {.kv_type = backend::KvType::F32});
    EXPECT_LE(relative_error(prompt.eval(ref.input_ids, true), ref.logits), 1e-3f) << fixture;
    engine::Session generation(*model, *gpu, {.kv_type = backend::KvType::F32});
    EXPECT_EQ(greedy_ids(generation, ref.prompt_ids, ref.greedy_ids.size()), ref.greedy_ids) << fixture;
  }
}

}  // namespace
}  // namespace aero::test
