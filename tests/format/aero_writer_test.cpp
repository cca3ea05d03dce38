// The writer: layout rules, hashes recomputed here by code that shares nothing with the
// library's integrity module, byte-exact rewrites, atomic failure.
#include <cstring>
#include <deque>

#include "aero/convert/convert.h"
#include "aero/error.h"
#include "aero/format/aero_model.h"
#include "aero/format/aero_validate.h"
#include "aero/format/aero_writer.h"
#include "aero/format/safetensors.h"
#include "aero/hash.h"
#include "test_support.h"

namespace aero::format {
namespace {

using test::ScratchDir;

template <class T>
T field(const std::vector<std::uint8_t>& b, std::size_t at) {
  T v;
  std::memcpy(&v, b.data() + at, sizeof v);
  return v;
}

// Random tensors of awkward sizes, owned by the test.
struct Corpus {
  std::deque<std::vector<std::uint8_t>> data;  // stable addresses: producers point into it
  std::vector<TensorWrite> tensors;

  void add(const std::string& name, DType dtype, std::vector<std::uint64_t> shape, std::uint32_t seed) {
    std::uint64_t n = dtype_size(dtype);
    for (auto d : shape) n *= d;
    data.push_back(test::random_bytes(n, seed));
    TensorWrite t{name, dtype, -1, std::nullopt, shape, n, {}};
    const auto* bytes = &data.back();
    t.write_data = [bytes](ByteSink& sink) {
      // In uneven pieces, as a streaming producer would.
      std::size_t at = 0, step = 7;
      while (at < bytes->size()) {
        std::size_t n = std::min(step, bytes->size() - at);
        sink.write({bytes->data() + at, n});
        at += n;
        step = step * 3 + 1;
      }
    };
    tensors.push_back(std::move(t));
  }
};

Corpus make_corpus() {
  Corpus c;
  c.add("model.embed_tokens.weight", DType::F32, {37, 24}, 1);
  c.add("model.layers.0.attn.q.weight", DType::F16, {24, 24}, 2);
  c.add("model.layers.0.mlp.up.weight", DType::BF16, {40, 24}, 3);
  c.add("model.norm.weight", DType::F32, {24}, 4);
  c.add("odd", DType::U8, {13}, 5);
  c.add("ids", DType::I64, {3, 5}, 6);
  return c;
}

ModelDescription description() {
  ModelDescription d;
  d.name = "tiny";
  d.architecture = "llama";
  d.meta["source_format"] = "safetensors";
  return d;
}

TEST(AeroWriter, TensorsReadBackExactlyWithAlignedOffsets) {
  ScratchDir dir;
  Corpus corpus = make_corpus();
  WriteOptions options;
  options.max_shard_bytes = 4096;
  write_aero(dir / "m.aero", description(), corpus.tensors, options);
  auto model = AeroModel::open(dir / "m.aero");
  ASSERT_EQ(model.tensors().size(), corpus.tensors.size());
  for (std::size_t i = 0; i < corpus.tensors.size(); ++i) {
    const Tensor& t = model.tensors()[i];
    EXPECT_EQ(t.name, corpus.tensors[i].name);
    EXPECT_EQ(t.shape, corpus.tensors[i].shape);
    auto bytes = model.tensor_data(t);
    EXPECT_TRUE(std::equal(bytes.begin(), bytes.end(), corpus.data[i].begin(), corpus.data[i].end()));
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(bytes.data()) % 64, 0u) << t.name;
    auto loc = model.shard(t.shard_id);
    EXPECT_LE(loc.chunk->length, options.max_shard_bytes);
  }
  EXPECT_EQ(model.index().model_name(), "tiny");
  EXPECT_EQ(model.index().meta()["source_format"], "safetensors");
  EXPECT_TRUE(validate(dir / "m.aero", ValidationLevel::Full, 2).ok());
}

TEST(AeroWriter, ShardsFollowTheReferencePlanning) {
  // A new shard starts only when the next tensor would pass the cap; an oversized tensor
  // gets a shard of its own.
  Corpus c;
  c.add("a", DType::U8, {100}, 1);
  c.add("b", DType::U8, {100}, 2);
  c.add("big", DType::U8, {1000}, 3);
  c.add("d", DType::U8, {10}, 4);
  auto plan = plan_shards(c.tensors, 300, 64);
  ASSERT_EQ(plan.shards.size(), 3u);
  EXPECT_EQ(plan.shards[0], (std::vector<std::size_t>{0, 1}));
  EXPECT_EQ(plan.tensors[1].data_off, 128u);
  EXPECT_EQ(plan.shards[1], (std::vector<std::size_t>{2}));
  EXPECT_EQ(plan.shards[2], (std::vector<std::size_t>{3}));
}

TEST(AeroWriter, RewriteIsByteExact) {
  ScratchDir dir;
  Corpus corpus = make_corpus();
  WriteOptions options;
  options.max_shard_bytes = 3000;
  options.integrity = true;
  options.page_size = 1000;
  options.tensor_hash = true;
  write_aero(dir / "a.aero", description(), corpus.tensors, options);
  {
    auto a = AeroModel::open(dir / "a.aero");
    write_aero(dir / "b.aero", describe(a), tensors_of(a), options);
  }
  EXPECT_EQ(test::read_bytes(dir / "a.aero"), test::read_bytes(dir / "b.aero"));
  // The UUID follows the content: different weights, different UUID.
  corpus.data[0][0] ^= 1;
  write_aero(dir / "c.aero", description(), corpus.tensors, options);
  EXPECT_NE(AeroModel::open(dir / "c.aero").index().header().uuid, AeroModel::open(dir / "a.aero").index().header().uuid);
}

// Recomputes IHSH and PHSH from the raw bytes, reading the header and TOC by hand.
TEST(AeroWriter, IntegrityChunksAgreeWithAnIndependentComputation) {
  ScratchDir dir;
  Corpus corpus = make_corpus();
  WriteOptions options;
  options.max_shard_bytes = 4000;
  options.integrity = true;
  options.page_size = 1024;
  write_aero(dir / "m.aero", description(), corpus.tensors, options);
  const auto b = test::read_bytes(dir / "m.aero");

  ASSERT_EQ(std::memcmp(b.data(), "AERO", 4), 0);
  const auto toc = field<std::uint64_t>(b, 12);
  const auto st_off = field<std::uint64_t>(b, 28);
  const auto st_len = field<std::uint64_t>(b, 36);
  const auto n = field<std::uint32_t>(b, toc);
  const std::uint64_t payload_start = (st_off + st_len + 15) / 16 * 16;
  struct Entry {
    std::string fourcc, name;
    std::uint64_t offset, length;
    Digest hash;
  };
  std::vector<Entry> entries;
  for (std::uint32_t i = 0; i < n; ++i) {
    std::size_t e = toc + 16 + 80 * i;
    Entry x;
    x.fourcc.assign(reinterpret_cast<const char*>(&b[e]), 4);
    x.offset = field<std::uint64_t>(b, e + 8);
    x.length = field<std::uint64_t>(b, e + 16);
    x.name.assign(reinterpret_cast<const char*>(&b[st_off + field<std::uint32_t>(b, e + 32)]), field<std::uint32_t>(b, e + 36));
    std::memcpy(x.hash.data(), &b[e + 48], 32);
    entries.push_back(x);
  }
  ASSERT_EQ(entries[0].fourcc, "IHSH");

  // IHSH: BLAKE3 of [0, payload_start) with all TOC hash fields zeroed.
  std::vector<std::uint8_t> control(b.begin(), b.begin() + static_cast<std::ptrdiff_t>(payload_start));
  for (std::uint32_t i = 0; i < n; ++i) std::memset(&control[toc + 16 + 80 * i + 48], 0, 32);
  Blake3 h;
  h.update(control);
  Digest expected = h.finish();
  std::vector<std::uint8_t> ihsh(b.begin() + static_cast<std::ptrdiff_t>(entries[0].offset),
                                 b.begin() + static_cast<std::ptrdiff_t>(entries[0].offset + entries[0].length));
  auto ihsh_json = nlohmann::json::from_msgpack(ihsh, /*strict=*/false);
  EXPECT_EQ(ihsh_json["algo"], "blake3-256");
  EXPECT_EQ(ihsh_json["covered_ranges"], nlohmann::json::parse("[[0," + std::to_string(payload_start) + "]]"));
  auto digest = ihsh_json["digest"].get_binary();
  EXPECT_TRUE(std::equal(digest.begin(), digest.end(), expected.begin(), expected.end()));

  // PHSH: each page of each shard hashed on its own; every chunk hash over its payload.
  int shards = 0;
  for (const auto& e : entries) {
    if (e.fourcc != "WTSH") continue;
    ++shards;
    const Entry* p = nullptr;
    for (const auto& q : entries)
      if (q.name == e.name + ".phsh") p = &q;
    ASSERT_NE(p, nullptr) << e.name;
    std::vector<std::uint8_t> payload(b.begin() + static_cast<std::ptrdiff_t>(p->offset),
                                      b.begin() + static_cast<std::ptrdiff_t>(p->offset + p->length));
    auto phsh = nlohmann::json::from_msgpack(payload);
    EXPECT_EQ(phsh["shard_name"], e.name);
    EXPECT_EQ(phsh["page_size"], 1024);
    std::size_t pages = (e.length + 1023) / 1024;
    ASSERT_EQ(phsh["digests"].size(), pages);
    for (std::size_t i = 0; i < pages; ++i) {
      std::size_t len = std::min<std::uint64_t>(1024, e.length - i * 1024);
      Digest page = blake3({b.data() + e.offset + i * 1024, len});
      auto got = phsh["digests"][i].get_binary();
      EXPECT_TRUE(std::equal(got.begin(), got.end(), page.begin(), page.end())) << e.name << " page " << i;
    }
    EXPECT_EQ(blake3({b.data() + e.offset, e.length}), e.hash);
  }
  EXPECT_GE(shards, 2);
}

TEST(AeroWriter, TensorHashesAreTheBlake3OfEachTensor) {
  ScratchDir dir;
  Corpus corpus = make_corpus();
  WriteOptions options;
  options.tensor_hash = true;
  write_aero(dir / "m.aero", description(), corpus.tensors, options);
  auto model = AeroModel::open(dir / "m.aero");
  for (std::size_t i = 0; i < corpus.tensors.size(); ++i)
    EXPECT_EQ(model.tensors()[i].hash_b3, to_hex(blake3(corpus.data[i])));
  EXPECT_TRUE(validate(dir / "m.aero", ValidationLevel::Full, 1).ok());
}

TEST(AeroWriter, FailureLeavesNothingBehind) {
  ScratchDir dir;
  Corpus corpus = make_corpus();
  corpus.tensors[3].write_data = [](ByteSink& sink) {
    std::uint8_t x[4] = {};
    sink.write(x);
    throw Error("source vanished");
  };
  EXPECT_THROW(write_aero(dir / "m.aero", description(), corpus.tensors), Error);
  EXPECT_TRUE(std::filesystem::is_empty(dir.path()));

  Corpus short_corpus = make_corpus();
  short_corpus.tensors[0].write_data = [](ByteSink& sink) {
    std::uint8_t x[4] = {};
    sink.write(x);
  };
  EXPECT_THROW(write_aero(dir / "m.aero", description(), short_corpus.tensors), Error);
  EXPECT_TRUE(std::filesystem::is_empty(dir.path()));
}

TEST(AeroWriter, RejectsDuplicateNames) {
  ScratchDir dir;
  Corpus corpus = make_corpus();
  corpus.tensors[1].name = corpus.tensors[0].name;
  EXPECT_THROW(write_aero(dir / "m.aero", description(), corpus.tensors), Error);
}

TEST(AeroWriter, ExtraChunksAreOptionalAndSurviveRewrites) {
  ScratchDir dir;
  Corpus corpus = make_corpus();
  ModelDescription d = description();
  d.extra_chunks.push_back({"AKVS", "aero.metadata", "model_metadata", std::string(5000, 'x'), true});
  write_aero(dir / "m.aero", d, corpus.tensors);
  auto model = AeroModel::open(dir / "m.aero");
  const Chunk* c = model.index().find_chunk("AKVS", "aero.metadata");
  ASSERT_NE(c, nullptr);
  EXPECT_TRUE(c->flags & chunk_flag::kOptional);
  auto payload = model.index().payload(*c);
  EXPECT_EQ(std::string(payload.begin(), payload.end()), std::string(5000, 'x'));
  EXPECT_TRUE(validate(dir / "m.aero", ValidationLevel::Full, 1).ok());
  write_aero(dir / "n.aero", describe(model), tensors_of(model));
  EXPECT_EQ(test::read_bytes(dir / "m.aero"), test::read_bytes(dir / "n.aero"));
}

TEST(AeroWriter, SafetensorsConversionMatchesTheReferenceConversion) {
  AERO_REQUIRE_SHARED(shared);
  ScratchDir dir;
  convert::convert(shared / "fixtures/aero/small.safetensors", dir / "mine.aero", convert::OutputKind::Aero, {});
  auto mine = AeroModel::open(dir / "mine.aero");
  auto reference = AeroModel::open(shared / "fixtures/aero/small-st.aero");
  ASSERT_EQ(mine.tensors().size(), reference.tensors().size());
  for (std::size_t i = 0; i < mine.tensors().size(); ++i) {
    const Tensor& a = mine.tensors()[i];
    const Tensor& r = reference.tensors()[i];
    EXPECT_EQ(a.name, r.name);
    EXPECT_EQ(a.dtype, r.dtype);
    EXPECT_EQ(a.stored_shape, r.stored_shape);
    auto x = mine.tensor_data(a), y = reference.tensor_data(r);
    EXPECT_TRUE(std::equal(x.begin(), x.end(), y.begin(), y.end())) << a.name;
  }
  EXPECT_EQ(mine.index().meta()["source_format"], reference.index().meta()["source_format"]);
  // Our own first chunk carries its real hash.
  EXPECT_TRUE(validate(dir / "mine.aero", ValidationLevel::Full, 1).warnings.empty());
}

}  // namespace
}  // namespace aero::format
