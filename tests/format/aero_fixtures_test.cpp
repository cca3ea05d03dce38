// Every file the reference writer produced reads with exactly the tensors and chunks that
// its MANIFEST.json lists, and validates as the reference validator says (with its
// MJSN defect accepted as a warning).
#include <fstream>

#include "aero/format/aero_model.h"
#include "aero/format/aero_validate.h"
#include "aero/hash.h"
#include "test_support.h"

namespace aero::format {
namespace {

Json load_manifest(const std::filesystem::path& shared) {
  std::ifstream in(shared / "fixtures/aero/MANIFEST.json");
  return Json::parse(in);
}

void expect_tensors_match(const AeroModel& model, const Json& expected) {
  ASSERT_EQ(model.tensors().size(), expected.size());
  for (const auto& e : expected) {
    SCOPED_TRACE(e["name"].get<std::string>());
    const Tensor* t = model.find_tensor(e["name"].get<std::string>());
    ASSERT_NE(t, nullptr);
    EXPECT_EQ(static_cast<int>(t->dtype), e["dtype"].get<int>());
    EXPECT_EQ(t->stored_shape, e["shape"].get<std::vector<std::uint64_t>>());
    EXPECT_EQ(t->shard_id, e["shard_id"].get<std::uint32_t>());
    EXPECT_EQ(t->data_off, e["data_off"].get<std::uint64_t>());
    EXPECT_EQ(t->data_len, e["data_len"].get<std::uint64_t>());
    EXPECT_EQ(to_hex(blake3(model.tensor_data(*t))), e["blake3"].get<std::string>());
    if (e.contains("quant_params")) EXPECT_EQ(t->ggml_type, e["quant_params"]["ggml_type"].get<int>());
  }
}

void expect_chunks_match(const AeroFile& file, const Json& expected) {
  ASSERT_EQ(file.chunks().size(), expected.size());
  for (std::size_t i = 0; i < expected.size(); ++i) {
    const Chunk& c = file.chunks()[i];
    const Json& e = expected[i];
    SCOPED_TRACE(c.name);
    EXPECT_EQ(c.fourcc, e["fourcc"].get<std::string>());
    EXPECT_EQ(c.name, e["name"].get<std::string>());
    EXPECT_EQ(c.flags, e["flags"].get<std::uint32_t>());
    EXPECT_EQ(c.offset, e["offset"].get<std::uint64_t>());
    EXPECT_EQ(c.length, e["length"].get<std::uint64_t>());
    EXPECT_EQ(c.ulen, e["ulen"].get<std::uint64_t>());
    EXPECT_EQ(to_hex(c.blake3), e["blake3"].get<std::string>());
  }
}

TEST(AeroFixtures, SingleFilesMatchTheirManifest) {
  AERO_REQUIRE_SHARED(shared);
  Json manifest = load_manifest(shared);
  int checked = 0;
  for (const auto& [name, fixture] : manifest["fixtures"].items()) {
    if (!fixture.contains("chunks")) continue;
    SCOPED_TRACE(name);
    auto path = shared / "fixtures/aero" / name;
    auto model = AeroModel::open(path);
    EXPECT_EQ(std::filesystem::file_size(path), fixture["size"].get<std::uint64_t>());
    expect_tensors_match(model, fixture["tensors"]);
    expect_chunks_match(model.index(), fixture["chunks"]);
    ++checked;
  }
  EXPECT_GE(checked, 4);
}

TEST(AeroFixtures, ValidatorAcceptsReferenceFilesAndWarnsOfTheZeroHash) {
  AERO_REQUIRE_SHARED(shared);
  Json manifest = load_manifest(shared);
  for (const auto& [name, fixture] : manifest["fixtures"].items()) {
    if (!fixture.contains("chunks")) continue;
    SCOPED_TRACE(name);
    auto report = validate(shared / "fixtures/aero" / name, ValidationLevel::Full, 2);
    EXPECT_TRUE(report.ok()) << (report.errors.empty() ? "" : report.errors.front());
    // Where the reference validator reports its own MJSN defect, we warn instead.
    EXPECT_EQ(report.warnings.size(), fixture["reference_validate_all"].size());
  }
}

TEST(AeroFixtures, GgufSourcedShapesAreExposedRowMajor) {
  AERO_REQUIRE_SHARED(shared);
  auto model = AeroModel::open(shared / "fixtures/aero/quants.aero");
  EXPECT_EQ(model.index().shape_order(), ShapeOrder::Gguf);
  const Tensor* t = model.find_tensor("t.f32");
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->stored_shape, (std::vector<std::uint64_t>{64, 4}));
  EXPECT_EQ(t->shape, (std::vector<std::uint64_t>{4, 64}));
  EXPECT_EQ(model.find_tensor("t.q4_0")->ggml_type, 2);
}

TEST(AeroFixtures, IntegrityFileChecksControlPlaneAndPages) {
  AERO_REQUIRE_SHARED(shared);
  auto path = shared / "fixtures/aero/small-integrity.aero";
  EXPECT_TRUE(validate(path, ValidationLevel::Control, 1).ok());
  auto report = validate(path, ValidationLevel::Full, 2);
  EXPECT_TRUE(report.ok());
  // Shards are hashed twice in one pass (chunk and pages) and nothing is skipped.
  EXPECT_EQ(report.bytes_hashed, 2u * (3552 + 1152 + 2016 + 64));
}

TEST(AeroFixtures, ReferenceSetReadsThroughItsIndexWithGlobalShardIds) {
  AERO_REQUIRE_SHARED(shared);
  Json manifest = load_manifest(shared);
  auto model = AeroModel::open(shared / "fixtures/aero/small-set/model.aeroset.json");
  EXPECT_TRUE(model.is_set());
  EXPECT_EQ(model.files().size(), 3u);
  EXPECT_EQ(model.index().model_name(), "small");
  EXPECT_EQ(model.index().architecture(), "llama");
  // Same tensors as the single-file write of the same model.
  expect_tensors_match(model, manifest["fixtures"]["small-integrity.aero"]["tensors"]);
  EXPECT_TRUE(validate(shared / "fixtures/aero/small-set", ValidationLevel::Full, 2).ok());
}

}  // namespace
}  // namespace aero::format
