// Block decoding against llama.cpp's own quantizer output: the BLAKE3 of our f32 decode of
// every tensor in quant-blocks.gguf must equal the hash of what the reference dequantizer
// (gguf-py) produced from the same blocks.
#include <cmath>
#include <cstring>
#include <fstream>

#include "aero/error.h"
#include "aero/format/gguf.h"
#include "aero/hash.h"
#include "aero/quant/types.h"
#include "quant/half.h"
#include "test_support.h"

namespace aero::quant {
namespace {

TEST(QuantDecode, EveryFixtureTensorDecodesBitExact) {
  AERO_REQUIRE_SHARED(shared);
  auto gguf = format::GgufFile::open(shared / "fixtures/quant/quant-blocks.gguf");
  std::ifstream in(shared / "fixtures/quant/MANIFEST.json");
  Json manifest = Json::parse(in);
  int exact = 0;
  std::vector<std::string> undecodable;
  for (const auto& e : manifest["tensors"]) {
    const std::string name = e["name"];
    SCOPED_TRACE(name);
    const auto* t = gguf.find(name);
    ASSERT_NE(t, nullptr);
    auto traits = type_traits(static_cast<std::uint32_t>(t->type));
    ASSERT_TRUE(traits);
    if (!traits->decode) {
      undecodable.push_back(std::string(traits->name));
      continue;
    }
    std::vector<float> out(t->ne[0] * t->ne[1]);
    decode_to_f32(t->type, gguf.data(*t), out);
    EXPECT_EQ(to_hex(blake3({reinterpret_cast<const std::uint8_t*>(out.data()), out.size() * 4})),
              e["dequant_blake3"].get<std::string>());
    for (int i = 0; i < 8; ++i) EXPECT_EQ(out[i], e["dequant_first8"][i].get<float>()) << "element " << i;
    ++exact;
  }
  EXPECT_EQ(exact, static_cast<int>(manifest["tensors"].size()));
  EXPECT_TRUE(undecodable.empty()) << undecodable.front();
}

// Blocks of pseudo-random bytes (splitmix64 seeded by the type id) with a normal f16 scale in
// [2^-8, 2^-7): every grid index, sign and sub-scale pattern is hit somewhere.
std::vector<std::uint8_t> random_blocks(GgmlType type, std::size_t block_bytes, int count) {
  std::uint64_t state = 0x9E3779B97F4A7C15ull * (static_cast<std::uint64_t>(type) + 1);
  std::vector<std::uint8_t> out;
  for (int i = 0; i < count; ++i) {
    std::vector<std::uint8_t> b;
    while (b.size() < block_bytes) {
      state += 0x9E3779B97F4A7C15ull;
      std::uint64_t z = state;
      z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
      z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
      z ^= z >> 31;
      for (int k = 0; k < 8; ++k) b.push_back(static_cast<std::uint8_t>(z >> 8 * k));
    }
    b.resize(block_bytes);
    const unsigned d = 0x1c00u | ((b[1] << 8 | b[0]) & 0x3ffu);
    if (type == GgmlType::IQ1_M) {  // d lives in the top nibbles of the four scale words
      for (int k = 0; k < 4; ++k) b[49 + 2 * k] = static_cast<std::uint8_t>((b[49 + 2 * k] & 0x0f) | ((d >> 4 * k) & 0xf) << 4);
    } else {
      b[0] = static_cast<std::uint8_t>(d);
      b[1] = static_cast<std::uint8_t>(d >> 8);
    }
    out.insert(out.end(), b.begin(), b.end());
  }
  return out;
}

// The code-book formats have no llama.cpp blocks in the fixtures (llama-quantize needs an
// importance matrix for most of them), so their reference is gguf-py's dequantizer run on the
// blocks above: BLAKE3 and first values of its f32 output, recorded from gguf-py (llama.cpp
// de3ff81), not from this decoder.
TEST(QuantDecode, CodeBookFormatsMatchTheReferenceDequantizer) {
  struct Case {
    GgmlType type;
    const char* blake3;
    float first[4];
  };
  const Case cases[] = {
      {GgmlType::IQ2_XXS, "b9e3a0cce5d3964f04965583bcecdde77cbadfb49c704be4b9bc5b238e1ef822",
       {-0.06612396240234375f, -0.06612396240234375f, -0.20663738250732422f, -0.35541629791259766f}},
      {GgmlType::IQ2_XS, "c9420917df1230f7b3dd1572be71d2036193379842f4221e78fc537810d906e6",
       {-0.27155494689941406f, 0.0505218505859375f, 0.0505218505859375f, 0.0505218505859375f}},
      {GgmlType::IQ2_S, "61fce8d83bd29e24fa95e9b39071038b5a2f60532fd2f2d8ff0ad96a08900b45",
       {-0.0498809814453125f, 0.0498809814453125f, 0.15587806701660156f, 0.0498809814453125f}},
      {GgmlType::IQ3_XXS, "116b629cb8c31a9c387bee271c7d0a41b33728db0093eb6fa8b97407a86c1785",
       {-0.1052398681640625f, 1.1576385498046875f, 0.1052398681640625f, 0.3157196044921875f}},
      {GgmlType::IQ3_S, "b208e3a5254e9d40242772b9bbbc4d19afcb1f6b1d61e2e9ee963043b6ef6333",
       {0.10860443115234375f, 0.19548797607421875f, -0.10860443115234375f, 0.28237152099609375f}},
      {GgmlType::IQ1_S, "27c3301fdd38956b3a89e81ea3f13a57ae309d852f41a6bb062209db2fd7e91e",
       {-0.012524127960205078f, -0.012524127960205078f, -0.1127171516418457f, -0.012524127960205078f}},
      {GgmlType::IQ1_M, "758fbe8be2ac20b4ee56d10921fc7ae0c4dc99d035f43bf5e9800a5c70f9760d",
       {0.04082536697387695f, -0.0317530632019043f, 0.04082536697387695f, -0.0317530632019043f}},
  };
  for (const auto& c : cases) {
    auto traits = type_traits(static_cast<std::uint32_t>(c.type));
    ASSERT_TRUE(traits);
    SCOPED_TRACE(traits->name);
    auto blocks = random_blocks(c.type, traits->block_bytes, 4);
    std::vector<float> out(4 * 256);
    decode_to_f32(c.type, blocks, out);
    for (int i = 0; i < 4; ++i) EXPECT_EQ(out[i], c.first[i]) << "element " << i;
    EXPECT_EQ(to_hex(blake3({reinterpret_cast<const std::uint8_t*>(out.data()), out.size() * 4})), c.blake3);
  }
}

TEST(QuantDecode, RefusesPartialBlocksAndUnknownDecoders) {
  std::vector<std::uint8_t> blocks(18);
  std::vector<float> out(31);
  EXPECT_THROW(decode_to_f32(GgmlType::Q4_0, blocks, out), Error);
  std::vector<float> out32(32);
  EXPECT_THROW(decode_to_f32(GgmlType::I8, blocks, out32), Error);
  EXPECT_NO_THROW(decode_to_f32(GgmlType::Q4_0, blocks, out32));
}

TEST(Half, ConversionsAreExactAndRoundToNearestEven) {
  // Every half value survives half -> float -> half.
  for (std::uint32_t h = 0; h < 0x10000; ++h) {
    const float f = fp16_to_fp32(static_cast<std::uint16_t>(h));
    if (std::isnan(f)) continue;
    ASSERT_EQ(fp32_to_fp16(f), h) << h;
  }
  EXPECT_EQ(fp16_to_fp32(0x3c00), 1.0f);
  EXPECT_EQ(fp16_to_fp32(0x0001), std::ldexp(1.0f, -24));  // smallest subnormal
  EXPECT_EQ(fp32_to_fp16(65520.0f), 0x7c00);                // rounds up to infinity
  EXPECT_EQ(fp32_to_fp16(1.0f + std::ldexp(1.0f, -11)), 0x3c00);  // tie to even (down)
  EXPECT_EQ(fp32_to_fp16(1.0f + 3 * std::ldexp(1.0f, -11)), 0x3c02);  // tie to even (up)
  EXPECT_EQ(fp32_to_fp16(std::ldexp(1.0f, -25)), 0x0000);  // tie between 0 and the smallest subnormal
  EXPECT_EQ(fp32_to_fp16(std::ldexp(1.5f, -25)), 0x0001);
  EXPECT_EQ(bf16_to_fp32(0x3f80), 1.0f);
}

}  // namespace
}  // namespace aero::quant

namespace aero::quant {
namespace {

// llama-quantize (no importance matrix) made the fixture's blocks from the f32 tensors stored
// beside them: quantizing the same f32 must give the same bytes.
TEST(QuantEncode, FormatsAreByteIdenticalWithLlamaCpp) {
  AERO_REQUIRE_SHARED(shared);
  auto gguf = format::GgufFile::open(shared / "fixtures/quant/quant-blocks.gguf");
  int checked = 0;
  for (const char* type : {"q4_0", "q4_1", "q5_0", "q5_1", "q8_0", "q2_k", "q3_k", "q4_k", "q5_k", "q6_k", "iq4_nl", "iq4_xs"}) {
    for (const char* name : {"blk.0.attn_q.weight", "blk.0.ffn_down.weight"}) {
      SCOPED_TRACE(std::string(type) + "/" + name);
      const auto* source = gguf.find(std::string("f32/") + name);
      const auto* blocks = gguf.find(std::string(type) + "/" + name);
      ASSERT_TRUE(source && blocks);
      auto src = gguf.data(*source);
      std::vector<float> x(src.size() / 4);
      std::memcpy(x.data(), src.data(), src.size());
      std::vector<std::uint8_t> out(blocks->size);
      encode_from_f32(blocks->type, x, out);
      auto expected = gguf.data(*blocks);
      ASSERT_EQ(out.size(), expected.size());
      std::size_t first_diff = 0;
      while (first_diff < out.size() && out[first_diff] == expected[first_diff]) ++first_diff;
      EXPECT_EQ(first_diff, out.size()) << "first differing byte";
      ++checked;
    }
  }
  EXPECT_EQ(checked, 24);
}

TEST(QuantEncode, EncodeThenDecodeStaysWithinHalfAStep) {
  std::vector<float> x(256);
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = std::sin(static_cast<float>(i) * 0.37f) * 3.0f;
  for (GgmlType type : {GgmlType::Q4_0, GgmlType::Q4_1, GgmlType::Q5_0, GgmlType::Q5_1, GgmlType::Q8_0, GgmlType::Q4_K,
                        GgmlType::Q5_K, GgmlType::Q6_K}) {
    auto traits = *type_traits(static_cast<std::uint32_t>(type));
    std::vector<std::uint8_t> blocks(*row_bytes(traits, x.size()));
    std::vector<float> back(x.size());
    encode_from_f32(type, x, blocks);
    decode_to_f32(type, blocks, back);
    const float levels = type == GgmlType::Q8_0 ? 127.0f
                         : type == GgmlType::Q6_K ? 31.0f
                         : (type == GgmlType::Q5_0 || type == GgmlType::Q5_1 || type == GgmlType::Q5_K) ? 15.0f
                                                                                                        : 7.0f;
    for (std::size_t i = 0; i < x.size(); ++i) EXPECT_LE(std::fabs(back[i] - x[i]), 3.0f / levels) << traits.name << " " << i;
  }
}

}  // namespace
}  // namespace aero::quant
