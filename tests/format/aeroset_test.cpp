// AEROSET: writing a set and reading it back, and refusing a set that lies about its parts.
#include "aero/error.h"
#include "aero/format/aero_model.h"
#include "aero/format/aero_validate.h"
#include "aero/format/aero_writer.h"
#include "aero/hash.h"
#include "test_support.h"

namespace aero::format {
namespace {

using test::ScratchDir;

std::vector<std::vector<std::uint8_t>> g_data;

std::vector<TensorWrite> tensors(int n) {
  g_data.clear();
  g_data.reserve(n);
  std::vector<TensorWrite> out;
  for (int i = 0; i < n; ++i) {
    g_data.push_back(test::random_bytes(300 + 17 * i, i));
    auto* d = &g_data.back();
    out.push_back({"t" + std::to_string(i), DType::U8, -1, std::nullopt, {d->size()}, d->size(),
                   [d](ByteSink& s) { s.write(*d); }});
  }
  return out;
}

TEST(AeroSet, WrittenSetReadsBackAndValidates) {
  ScratchDir dir;
  auto ts = tensors(7);
  WriteOptions options;
  options.max_shard_bytes = 700;
  options.tensor_hash = true;
  write_aeroset(dir / "set", {"m", "qwen2"}, ts, options, 2);
  auto model = AeroModel::open(dir / "set");
  ASSERT_TRUE(model.is_set());
  const std::size_t shards = plan_shards(ts, 700, options.tensor_alignment).shards.size();
  ASSERT_GE(shards, 3u);
  EXPECT_EQ(model.files().size(), 1 + (shards + 1) / 2);  // index + parts of 2 shards
  ASSERT_EQ(model.tensors().size(), 7u);
  for (int i = 0; i < 7; ++i) {
    auto bytes = model.tensor_data(model.tensors()[i]);
    EXPECT_TRUE(std::equal(bytes.begin(), bytes.end(), g_data[i].begin(), g_data[i].end()));
  }
  EXPECT_EQ(model.index().architecture(), "qwen2");
  auto report = validate(dir / "set", ValidationLevel::Full, 2);
  EXPECT_TRUE(report.ok()) << (report.errors.empty() ? "" : report.errors[0]);
  // The part checksums in the manifest are the SHA-256 of the files.
  for (const auto& f : model.set_files()) EXPECT_EQ(f.sha256, sha256_file_hex(f.path));
}

TEST(AeroSet, TamperedPartFailsItsChecksum) {
  ScratchDir dir;
  auto ts = tensors(4);
  WriteOptions options;
  options.max_shard_bytes = 400;
  write_aeroset(dir / "set", {"m", "llama"}, ts, options, 1);
  auto part = dir / "set/part-001.aero";
  auto b = test::read_bytes(part);
  b[b.size() - 3] ^= 1;
  test::write_bytes(part, b);
  auto report = validate(dir / "set", ValidationLevel::Full, 2);
  EXPECT_FALSE(report.ok());
  bool saw_sha = false;
  for (const auto& e : report.errors) saw_sha |= e.find("SHA-256") != std::string::npos;
  EXPECT_TRUE(saw_sha);
}

TEST(AeroSet, RefusesPartsOutsideItsFolderAndWrongSizes) {
  ScratchDir dir;
  auto ts = tensors(2);
  write_aeroset(dir / "set", {"m", "llama"}, ts, {}, 1);
  auto manifest_path = dir / "set/model.aeroset.json";
  auto original = test::read_bytes(manifest_path);
  std::string text(original.begin(), original.end());

  auto with = [&](const std::string& from, const std::string& to) {
    std::string t = text;
    t.replace(t.find(from), from.size(), to);
    test::write_bytes(manifest_path, std::vector<std::uint8_t>(t.begin(), t.end()));
  };
  with("\"part-000.aero\"", "\"../part-000.aero\"");
  EXPECT_THROW(AeroModel::open(dir / "set"), Error);
  with("\"part-000.aero\"", "\"/etc/passwd\"");
  EXPECT_THROW(AeroModel::open(dir / "set"), Error);
  with("\"AEROSET\"", "\"OTHER\"");
  EXPECT_THROW(AeroModel::open(dir / "set"), Error);
  Json j = Json::parse(text);
  j["parts"][0]["size_bytes"] = 1;
  std::string bad = j.dump();
  test::write_bytes(manifest_path, std::vector<std::uint8_t>(bad.begin(), bad.end()));
  EXPECT_THROW(AeroModel::open(dir / "set"), Error);
}

}  // namespace
}  // namespace aero::format
