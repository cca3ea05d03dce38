// safetensors reading: the fixture, sharded folders, and refusal of malformed headers.
#include <algorithm>
#include <cstring>

#include "aero/error.h"
#include "aero/format/safetensors.h"
#include "aero/hash.h"
#include "test_support.h"

namespace aero::format {
namespace {

using test::ScratchDir;

std::vector<std::uint8_t> make_file(const std::string& header, std::size_t data_bytes) {
  std::vector<std::uint8_t> b(8 + header.size() + data_bytes, 0x42);
  const std::uint64_t n = header.size();
  std::memcpy(b.data(), &n, 8);
  std::copy(header.begin(), header.end(), b.begin() + 8);
  return b;
}

void expect_rejected(const std::vector<std::uint8_t>& bytes, const std::string& needle) {
  ScratchDir dir;
  test::write_bytes(dir / "x.safetensors", bytes);
  try {
    SafetensorsModel::open(dir / "x.safetensors");
    ADD_FAILURE() << "accepted; expected " << needle;
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

TEST(Safetensors, ReadsTheFixture) {
  AERO_REQUIRE_SHARED(shared);
  auto st = SafetensorsModel::open(shared / "fixtures/aero/small.safetensors");
  ASSERT_EQ(st.tensors().size(), 6u);
  const auto* t = st.find("model.layers.0.mlp.up_proj.weight");
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->aero_dtype, DType::BF16);
  EXPECT_EQ(t->shape, (std::vector<std::uint64_t>{40, 24}));
  EXPECT_EQ(to_hex(blake3(st.data(*t))), "9cfd0ba8641da3583a5930cf9835e42c0d90b12446dcc7e58c3ff78c17ae8bbc");
  EXPECT_EQ(st.metadata()["format"], "pt");
}

TEST(Safetensors, ReadsAShardedFolder) {
  ScratchDir dir;
  test::write_bytes(dir / "a.safetensors", make_file(R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", 8));
  test::write_bytes(dir / "b.safetensors", make_file(R"({"y":{"dtype":"I8","shape":[3],"data_offsets":[0,3]}})", 3));
  std::string index = R"({"metadata":{},"weight_map":{"x":"a.safetensors","y":"b.safetensors"}})";
  test::write_bytes(dir / "model.safetensors.index.json", std::vector<std::uint8_t>(index.begin(), index.end()));
  auto st = SafetensorsModel::open(dir.path());
  ASSERT_EQ(st.tensors().size(), 2u);
  EXPECT_EQ(st.data(*st.find("y")).size(), 3u);
}

TEST(Safetensors, RefusesMalformedFiles) {
  expect_rejected({1, 2, 3}, "truncated");
  std::vector<std::uint8_t> huge(8);
  std::uint64_t n = 1ull << 40;
  std::memcpy(huge.data(), &n, 8);
  expect_rejected(huge, "exceeds");
  expect_rejected(make_file(R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", 4), "outside");
  expect_rejected(make_file(R"({"x":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", 8), "need 12");
  expect_rejected(make_file(R"({"x":{"dtype":"Q9","shape":[2],"data_offsets":[0,8]}})", 8), "unsupported dtype");
  expect_rejected(make_file(R"({"x":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},)"
                            R"("y":{"dtype":"U8","shape":[4],"data_offsets":[2,6]}})", 8),
                  "overlap");
  expect_rejected(make_file(R"({"x":{"dtype":"U8","shape":[-4],"data_offsets":[0,4]}})", 8), "non-negative");
  expect_rejected(make_file(R"({"x":)", 8), "malformed JSON");
  expect_rejected(make_file(R"({"x":{"dtype":"U8","shape":[4294967296,4294967296,16],"data_offsets":[0,4]}})", 8),
                  "overflows");
}

}  // namespace
}  // namespace aero::format
