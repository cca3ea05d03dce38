// Conversion between every format: reference-converter agreement, bit-exact round trips,
// self-contained output, and nothing left behind on failure.
#include <sys/resource.h>

#include <csignal>
#include <cstring>

#include "aero/convert/convert.h"
#include "aero/convert/synth.h"
#include "aero/error.h"
#include "aero/format/aero_model.h"
#include "aero/format/aero_validate.h"
#include "aero/format/gguf.h"
#include "aero/format/model_source.h"
#include "aero/format/safetensors.h"
#include "aero/quant/types.h"
#include "test_support.h"

namespace aero::convert {
namespace {

using format::ModelSource;
using test::ScratchDir;

std::filesystem::path fixture(const std::filesystem::path& shared, const std::string& rel) {
  return shared / "fixtures" / rel;
}

void expect_same_tensors(const ModelSource& a, const ModelSource& b) {
  ASSERT_EQ(a.tensors().size(), b.tensors().size());
  for (const auto& t : a.tensors()) {
    const auto* u = b.find(t.name);
    ASSERT_NE(u, nullptr) << t.name;
    EXPECT_EQ(t.dtype, u->dtype) << t.name;
    EXPECT_EQ(t.ggml_type, u->ggml_type) << t.name;
    EXPECT_EQ(t.shape, u->shape) << t.name;
    EXPECT_TRUE(std::equal(t.data.begin(), t.data.end(), u->data.begin(), u->data.end())) << t.name;
  }
}

TEST(Convert, GgufToAeroMatchesTheReferenceConversion) {
  AERO_REQUIRE_SHARED(shared);
  ScratchDir dir;
  convert(fixture(shared, "aero/quants.gguf"), dir / "q.aero", OutputKind::Aero, {});
  auto mine = format::AeroModel::open(dir / "q.aero");
  auto ref = format::AeroModel::open(fixture(shared, "aero/quants.aero"));
  ASSERT_EQ(mine.tensors().size(), ref.tensors().size());
  for (const auto& t : ref.tensors()) {
    const auto* m = mine.find_tensor(t.name);
    ASSERT_NE(m, nullptr) << t.name;
    EXPECT_EQ(m->dtype, t.dtype);
    EXPECT_EQ(m->ggml_type, t.ggml_type);
    EXPECT_EQ(m->quant_id, t.quant_id) << t.name;
    EXPECT_EQ(m->stored_shape, t.stored_shape);  // GGUF order, as the reference stores it
    auto a = mine.tensor_data(*m), b = ref.tensor_data(t);
    // The reference's data_len includes GGUF alignment padding; the tensor bytes agree.
    ASSERT_LE(a.size(), b.size());
    EXPECT_TRUE(std::equal(a.begin(), a.end(), b.begin())) << t.name;
  }
  EXPECT_EQ(mine.index().meta()["quant_descriptors"].size(), ref.index().meta()["quant_descriptors"].size());
  EXPECT_EQ(mine.index().meta()["source_format"], "gguf");
}

TEST(Convert, GgufAeroGgufIsBitExact) {
  AERO_REQUIRE_SHARED(shared);
  for (const char* rel : {"quant/quant-blocks.gguf", "aero/quants.gguf", "tokenizer/ggml-vocab-llama-spm.gguf"}) {
    SCOPED_TRACE(rel);
    ScratchDir dir;
    ConvertOptions options;
    options.write.integrity = true;
    convert(fixture(shared, rel), dir / "m.aero", OutputKind::Aero, options);
    EXPECT_TRUE(format::validate(dir / "m.aero", format::ValidationLevel::Full, 2).ok());
    convert(dir / "m.aero", dir / "back.gguf", OutputKind::Gguf, {});
    EXPECT_EQ(test::read_bytes(dir / "back.gguf"), test::read_bytes(fixture(shared, rel)));
    // Through an AEROSET too.
    options.write.max_shard_bytes = 1 << 20;
    convert(fixture(shared, rel), dir / "set", OutputKind::AeroSet, options);
    convert(dir / "set", dir / "back2.gguf", OutputKind::Gguf, {});
    EXPECT_EQ(test::read_bytes(dir / "back2.gguf"), test::read_bytes(fixture(shared, rel)));
  }
}

TEST(Convert, HfFoldersBecomeSelfContainedAeroFiles) {
  AERO_REQUIRE_SHARED(shared);
  for (const char* arch : {"llama", "llama-mha", "qwen2", "qwen3"}) {
    SCOPED_TRACE(arch);
    ScratchDir dir;
    auto folder = fixture(shared, std::string("hf/") + arch);
    convert(folder, dir / "m.aero", OutputKind::Aero, {});
    auto src = ModelSource::open(folder);
    auto out = ModelSource::open(dir / "m.aero");
    expect_same_tensors(*src, *out);
    auto config = test::read_bytes(folder / "config.json");
    EXPECT_EQ(out->metadata().hf_files.at("config.json"), std::string(config.begin(), config.end()));
    EXPECT_TRUE(out->metadata().hf_files.count("generation_config.json"));
    EXPECT_EQ(out->metadata().architecture, src->metadata().architecture);
    EXPECT_FALSE(out->metadata().architecture.empty());
    EXPECT_TRUE(format::validate(dir / "m.aero", format::ValidationLevel::Full, 1).ok());
    // And back out to safetensors, tensor for tensor.
    convert(dir / "m.aero", dir / "m.safetensors", OutputKind::Safetensors, {});
    expect_same_tensors(*src, *ModelSource::open(dir / "m.safetensors"));
  }
}

TEST(Convert, ReferenceFilesBorrowMetadataFromASidecar) {
  AERO_REQUIRE_SHARED(shared);
  ScratchDir dir;
  // The reference converter dropped every key but name and architecture: GGUF output needs more.
  EXPECT_THROW(convert(fixture(shared, "aero/quants.aero"), dir / "x.gguf", OutputKind::Gguf, {}), Error);
  EXPECT_FALSE(std::filesystem::exists(dir / "x.gguf"));
  ConvertOptions options;
  options.config = fixture(shared, "aero/quants.gguf");
  convert(fixture(shared, "aero/quants.aero"), dir / "x.gguf", OutputKind::Gguf, options);
  auto original = format::GgufFile::open(fixture(shared, "aero/quants.gguf"));
  auto back = format::GgufFile::open(dir / "x.gguf");
  EXPECT_EQ(back.metadata().to_json(), original.metadata().to_json());
  expect_same_tensors(*ModelSource::open(dir / "x.gguf"), *ModelSource::open(fixture(shared, "aero/quants.gguf")));
  // .aero with a sidecar becomes self-contained.
  convert(fixture(shared, "aero/quants.aero"), dir / "y.aero", OutputKind::Aero, options);
  EXPECT_TRUE(ModelSource::open(dir / "y.aero")->metadata().gguf.has_value());
}

TEST(Convert, QuantizedTensorsHaveNoSafetensorsType) {
  AERO_REQUIRE_SHARED(shared);
  ScratchDir dir;
  EXPECT_THROW(convert(fixture(shared, "aero/quants.gguf"), dir / "q.safetensors", OutputKind::Safetensors, {}), Error);
  EXPECT_TRUE(std::filesystem::is_empty(dir.path()));
}

TEST(Convert, DiskFullLeavesNothing) {
  AERO_REQUIRE_SHARED(shared);
  ScratchDir dir;
  std::signal(SIGXFSZ, SIG_IGN);
  struct rlimit old {};
  getrlimit(RLIMIT_FSIZE, &old);
  struct rlimit small = old;
  small.rlim_cur = 100'000;  // the fixture needs 3.2 MB
  setrlimit(RLIMIT_FSIZE, &small);
  bool threw = false;
  try {
    convert(fixture(shared, "quant/quant-blocks.gguf"), dir / "m.aero", OutputKind::Aero, {});
  } catch (const Error& e) {
    threw = std::string(e.what()).find("cannot write") != std::string::npos;
  }
  try {
    convert(fixture(shared, "quant/quant-blocks.gguf"), dir / "m.gguf", OutputKind::Gguf, {});
  } catch (const Error&) {
  }
  setrlimit(RLIMIT_FSIZE, &old);
  EXPECT_TRUE(threw);
  EXPECT_TRUE(std::filesystem::is_empty(dir.path()));
}

// Every weight matrix becomes the reference quantizer's blocks of its f32 rows; vectors
// (norms) stay as they were.
TEST(Quantize, WeightMatricesBecomeReferenceBlocks) {
  AERO_REQUIRE_SHARED(shared);
  for (auto type : {quant::GgmlType::Q8_0, quant::GgmlType::Q4_0}) {
    ScratchDir dir;
    auto folder = fixture(shared, "hf/qwen3");
    quantize(folder, dir / "q.aero", OutputKind::Aero, type, {});
    auto src = ModelSource::open(folder);
    auto out = ModelSource::open(dir / "q.aero");
    ASSERT_EQ(out->tensors().size(), src->tensors().size());
    int packed = 0;
    for (const auto& t : src->tensors()) {
      const auto* q = out->find(t.name);
      ASSERT_NE(q, nullptr);
      EXPECT_EQ(q->shape, t.shape);
      // Rows that are not whole 32-element blocks (qwen3's 176-wide down_proj) stay as they are.
      if (t.shape.size() >= 2 && t.shape.back() % 32 == 0) {
        ASSERT_EQ(q->dtype, format::DType::Packed) << t.name;
        EXPECT_EQ(q->ggml_type, static_cast<int>(type));
        std::vector<float> f32(t.data.size() / 4);
        std::memcpy(f32.data(), t.data.data(), t.data.size());
        std::vector<std::uint8_t> expected(q->data.size());
        quant::encode_from_f32(type, f32, expected);
        EXPECT_TRUE(std::equal(expected.begin(), expected.end(), q->data.begin(), q->data.end())) << t.name;
        ++packed;
      } else {
        EXPECT_TRUE(std::equal(t.data.begin(), t.data.end(), q->data.begin(), q->data.end())) << t.name;
      }
    }
    EXPECT_GT(packed, 10);
    EXPECT_EQ(out->metadata().hf_files.count("config.json"), 1u);
    EXPECT_TRUE(format::validate(dir / "q.aero", format::ValidationLevel::Full, 1).ok());
  }
}

TEST(Quantize, GgufSourceToGgufAndUnsupportedTypes) {
  AERO_REQUIRE_SHARED(shared);
  ScratchDir dir;
  quantize(fixture(shared, "aero/quants.gguf"), dir / "q.gguf", OutputKind::Gguf, quant::GgmlType::Q8_0, {});
  auto g = format::GgufFile::open(dir / "q.gguf");
  EXPECT_EQ(g.find("t.f32")->type, quant::GgmlType::Q8_0);
  EXPECT_EQ(g.find("t.f16")->type, quant::GgmlType::Q8_0);
  EXPECT_EQ(g.find("t.q4_1")->type, quant::GgmlType::Q4_1);  // already quantized: copied
  EXPECT_THROW(quantize(fixture(shared, "aero/quants.gguf"), dir / "k.gguf", OutputKind::Gguf, quant::GgmlType::IQ2_XXS, {}),
               Error);
  EXPECT_FALSE(std::filesystem::exists(dir / "k.gguf"));
}

TEST(Convert, OutputKindFromNameOrFlag) {
  EXPECT_EQ(output_kind("m.aero", ""), OutputKind::Aero);
  EXPECT_EQ(output_kind("m.gguf", ""), OutputKind::Gguf);
  EXPECT_EQ(output_kind("m.safetensors", ""), OutputKind::Safetensors);
  EXPECT_EQ(output_kind("outdir", ""), OutputKind::AeroSet);
  EXPECT_EQ(output_kind("x.bin", "gguf"), OutputKind::Gguf);
  EXPECT_THROW(output_kind("x.bin", ""), Error);
  EXPECT_THROW(output_kind("x.bin", "onnx"), Error);
}

}  // namespace
}  // namespace aero::convert

namespace aero::convert {
namespace {

// Q4_K_M as llama-quantize mixes it: Q6_K for the output head and for attn_v/ffn_down where
// use_more_bits(layer) holds (4 layers: n/8 = 0, 7n/8 = 3, so layers 2 (every third) and 3);
// rows that are not whole 256-blocks take the fallback (Q4_K -> Q5_0, Q6_K -> Q8_0).
TEST(Quantize, KMixFollowsLlamaCppsRecipe) {
  test::ScratchDir dir;
  SynthOptions o;
  o.arch = "llama";
  o.preset = "tiny";  // 4 layers, hidden 256, ffn 704
  o.type = quant::GgmlType::F16;
  synthesize(dir / "f16.gguf", o);
  quantize(dir / "f16.gguf", dir / "q.gguf", OutputKind::Gguf, quant_recipe("q4_k_m"), {});
  auto g = format::GgufFile::open(dir / "q.gguf");
  auto type = [&](const std::string& name) { return g.find(name)->type; };
  EXPECT_EQ(g.metadata().get_int("general.file_type"), 15);  // LLAMA_FTYPE_MOSTLY_Q4_K_M
  using T = quant::GgmlType;
  EXPECT_EQ(type("output.weight"), T::Q6_K);
  EXPECT_EQ(type("token_embd.weight"), T::Q4_K);
  EXPECT_EQ(type("output_norm.weight"), T::F32);
  for (int layer = 0; layer < 4; ++layer) {
    const std::string b = "blk." + std::to_string(layer) + ".";
    const bool more = layer >= 2;
    EXPECT_EQ(type(b + "attn_q.weight"), T::Q4_K) << layer;
    EXPECT_EQ(type(b + "attn_v.weight"), more ? T::Q6_K : T::Q4_K) << layer;
    EXPECT_EQ(type(b + "ffn_up.weight"), T::Q4_K) << layer;
    EXPECT_EQ(type(b + "ffn_down.weight"), more ? T::Q8_0 : T::Q5_0) << layer;  // 704 columns
  }
  EXPECT_THROW(quant_recipe("Q3_K_M"), Error);
  EXPECT_EQ(quant_recipe("Q6_K").base, T::Q6_K);
}

}  // namespace
}  // namespace aero::convert
