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
  EXPECT_GE(exact, 34);
  // Decoders still to come (their code books are large tables), named so this cannot pass silently.
  for (const auto& name : undecodable) EXPECT_EQ(name, "IQ3_S");
}

TEST(QuantDecode, RefusesPartialBlocksAndUnknownDecoders) {
  std::vector<std::uint8_t> blocks(18);
  std::vector<float> out(31);
  EXPECT_THROW(decode_to_f32(GgmlType::Q4_0, blocks, out), Error);
  std::vector<float> out32(32);
  EXPECT_THROW(decode_to_f32(GgmlType::IQ2_XXS, blocks, out32), Error);
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
