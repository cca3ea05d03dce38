// GGUF: the llama.cpp-written fixture reads as its manifest says; malformed files are refused.
#include <cstring>
#include <fstream>

#include "aero/error.h"
#include "aero/format/gguf.h"
#include "test_support.h"

namespace aero::format {
namespace {

using test::ScratchDir;

TEST(Gguf, ReadsLlamaCppQuantizerOutput) {
  AERO_REQUIRE_SHARED(shared);
  auto f = GgufFile::open(shared / "fixtures/quant/quant-blocks.gguf");
  std::ifstream in(shared / "fixtures/quant/MANIFEST.json");
  Json manifest = Json::parse(in);
  int checked = 0;
  for (const auto& e : manifest["tensors"]) {
    const GgufTensor* t = f.find(e["name"].get<std::string>());
    ASSERT_NE(t, nullptr) << e["name"];
    EXPECT_EQ(static_cast<int>(t->type), e["ggml_type"].get<int>());
    EXPECT_EQ(t->ne, e["shape_ne"].get<std::vector<std::uint64_t>>());
    EXPECT_EQ(t->size, e["nbytes"].get<std::uint64_t>());
    EXPECT_EQ(f.data(*t).size(), t->size);
    ++checked;
  }
  EXPECT_GE(checked, 36);
  EXPECT_EQ(f.version(), 3u);
}

// A little GGUF builder for malformed inputs.
struct Builder {
  std::string b;
  template <class T>
  Builder& num(T v) {
    b.append(reinterpret_cast<const char*>(&v), sizeof v);
    return *this;
  }
  Builder& str(const std::string& s) {
    num<std::uint64_t>(s.size());
    b += s;
    return *this;
  }
  Builder& header(std::uint64_t tensors, std::uint64_t kvs, std::uint32_t version = 3) {
    b = "GGUF";
    return num<std::uint32_t>(version).num<std::uint64_t>(tensors).num<std::uint64_t>(kvs);
  }
  Builder& tensor(const std::string& name, std::uint64_t ne0, std::uint32_t type, std::uint64_t offset,
                  std::uint32_t dims = 1) {
    str(name).num<std::uint32_t>(dims);
    for (std::uint32_t d = 0; d < dims; ++d) num<std::uint64_t>(d == 0 ? ne0 : 1);
    return num<std::uint32_t>(type).num<std::uint64_t>(offset);
  }
  Builder& data(std::size_t n) {
    b.resize((b.size() + 31) / 32 * 32, '\0');
    b.append(n, '\x11');
    return *this;
  }
};

void expect_rejected(const std::string& bytes, const std::string& needle) {
  ScratchDir dir;
  test::write_bytes(dir / "x.gguf", std::vector<std::uint8_t>(bytes.begin(), bytes.end()));
  try {
    GgufFile::open(dir / "x.gguf");
    ADD_FAILURE() << "accepted; expected " << needle;
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

TEST(Gguf, AWellFormedMinimalFileReads) {
  Builder g;
  g.header(1, 2).str("general.architecture").num<std::uint32_t>(8).str("llama");
  g.str("tokenizer.ggml.scores").num<std::uint32_t>(9).num<std::uint32_t>(6).num<std::uint64_t>(2).num(1.5f).num(-2.0f);
  g.tensor("w", 32, 8, 0).data(34);
  ScratchDir dir;
  test::write_bytes(dir / "x.gguf", std::vector<std::uint8_t>(g.b.begin(), g.b.end()));
  auto f = GgufFile::open(dir / "x.gguf");
  EXPECT_EQ(f.metadata().get_string("general.architecture"), "llama");
  const GgufKv* scores = f.metadata().find("tokenizer.ggml.scores");
  ASSERT_NE(scores, nullptr);
  EXPECT_EQ(scores->element_type, GgufType::F32);
  EXPECT_EQ(scores->value[1].get<double>(), -2.0);
  EXPECT_EQ(f.tensors()[0].size, 34u);
}

TEST(Gguf, RefusesMalformedFiles) {
  expect_rejected("GGU", "truncated");
  expect_rejected("GGML" + std::string(20, '\0'), "bad magic");
  expect_rejected(Builder().header(0, 0, 1).b, "unsupported GGUF version 1");
  expect_rejected(Builder().header(1ull << 40, 0).b, "exceed the cap");
  expect_rejected(Builder().header(0, 1).num<std::uint64_t>(1ull << 40).b, "implausible");
  expect_rejected(Builder().header(0, 1).str("k").num<std::uint32_t>(8).num<std::uint64_t>(100).b, "truncated");
  expect_rejected(Builder().header(0, 1).str("k").num<std::uint32_t>(99).b, "unknown metadata value type 99");
  expect_rejected(Builder().header(0, 1).str("k").num<std::uint32_t>(9).num<std::uint32_t>(4).num<std::uint64_t>(1ull << 40).b,
                  "larger than the file");
  expect_rejected(Builder().header(0, 1).str("k").num<std::uint32_t>(9).num<std::uint32_t>(9).num<std::uint64_t>(1).b,
                  "nested arrays");
  expect_rejected(Builder().header(0, 2).str("k").num<std::uint32_t>(4).num<std::uint32_t>(1).str("k").num<std::uint32_t>(4).num<std::uint32_t>(1).b,
                  "appears twice");
  expect_rejected(Builder().header(1, 0).tensor("w", 32, 77, 0).data(34).b, "unknown tensor type 77");
  expect_rejected(Builder().header(1, 0).tensor("w", 32, 8, 0, 5).data(34).b, "dimensions");
  expect_rejected(Builder().header(1, 0).tensor("w", 33, 8, 0).data(40).b, "whole Q8_0 blocks");
  expect_rejected(Builder().header(1, 0).tensor("w", 32, 8, 16).data(64).b, "not a multiple of the alignment");
  expect_rejected(Builder().header(1, 0).tensor("w", 32, 8, 0).data(10).b, "runs past the end");
  expect_rejected(Builder().header(2, 0).tensor("w", 32, 8, 0).tensor("w", 32, 8, 64).data(200).b, "appears twice");
  expect_rejected(Builder().header(2, 0).tensor("a", 64, 0, 0).tensor("b", 32, 0, 128).data(512).b, "overlap");
  expect_rejected(Builder().header(0, 1).str("general.alignment").num<std::uint32_t>(4).num<std::uint32_t>(3).b,
                  "power of two");
}

TEST(Gguf, WriterRefusesTensorsThatDoNotFitTheirType) {
  ScratchDir dir;
  GgufMetadata m;
  std::vector<GgufTensorWrite> t{{"w", quant::GgmlType::Q8_0, {33}, 34, [](auto) {}}};
  EXPECT_THROW(write_gguf(dir / "x.gguf", m, t), Error);
  EXPECT_TRUE(std::filesystem::is_empty(dir.path()));
}

TEST(Gguf, MetadataSurvivesItsJsonForm) {
  AERO_REQUIRE_SHARED(shared);
  auto f = GgufFile::open(shared / "fixtures/tokenizer/ggml-vocab-qwen2.gguf");
  std::string packed = to_msgpack(f.metadata().to_json());
  auto back = GgufMetadata::from_json(
      parse_msgpack({reinterpret_cast<const std::uint8_t*>(packed.data()), packed.size()}, "t"), "t");
  ASSERT_EQ(back.entries.size(), f.metadata().entries.size());
  for (std::size_t i = 0; i < back.entries.size(); ++i) {
    EXPECT_EQ(back.entries[i].key, f.metadata().entries[i].key);
    EXPECT_EQ(back.entries[i].type, f.metadata().entries[i].type);
    EXPECT_EQ(back.entries[i].element_type, f.metadata().entries[i].element_type);
    EXPECT_EQ(back.entries[i].value, f.metadata().entries[i].value) << back.entries[i].key;
  }
}

}  // namespace
}  // namespace aero::format
