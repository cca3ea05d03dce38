// tokenizer.json: each reference vocabulary written as HF tokenizers lays it out (byte-level
// BPE with Split regexes; SentencePiece as byte-fallback BPE with merges derived from the
// scores, as transformers converts it) and read back must still give the reference ids.
#include <fstream>

#include "aero/convert/convert.h"
#include "aero/error.h"
#include "aero/format/gguf.h"
#include "aero/tokenizer/tokenizer.h"
#include "tokenizer/vocab_fixtures.h"

namespace aero::tokenizer {
namespace {

class HfJsonTest : public ::testing::TestWithParam<const char*> {};

TEST_P(HfJsonTest, ReadBackTokenizerEncodesLikeTheReference) {
  AERO_REQUIRE_SHARED(shared);
  const auto path = shared / "fixtures/tokenizer" / (std::string("ggml-vocab-") + GetParam() + ".gguf");
  const Vocab original = vocab_from_gguf(format::GgufFile::open(path).metadata());
  const std::string json = vocab_to_hf(original);
  const std::string config = vocab_to_hf_config(original).dump();
  const Vocab back = vocab_from_hf(json, config);
  EXPECT_EQ(back.algorithm, original.algorithm);
  EXPECT_EQ(back.tokens.size(), original.tokens.size());
  EXPECT_EQ(back.bos, original.bos);
  EXPECT_EQ(back.eos, original.eos);
  EXPECT_EQ(back.add_bos, original.add_bos);
  if (back.algorithm == Algorithm::Bpe) EXPECT_EQ(back.pre, GetParam() == std::string("gpt-2") ? "gpt-2" : original.pre);
  Tokenizer tok(back);
  for (const auto& c : test::read_vocab_cases(path))
    EXPECT_EQ(tok.encode(c.text, false, false), c.ids) << GetParam() << ": '" << c.text << "'";
}

INSTANTIATE_TEST_SUITE_P(Vocabs, HfJsonTest, ::testing::ValuesIn(test::kVocabNames), [](const auto& info) {
  std::string n = info.param;
  std::replace(n.begin(), n.end(), '-', '_');
  return n;
});

TEST(HfJson, BadTokenizerJsonIsAClearError) {
  for (const char* bad : {"", "[]", "{}", R"({"model": {"type": "Unigram", "vocab": []}})",
                          R"({"model": {"type": "BPE", "vocab": {"a": -1}}})",
                          R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": [1]}})",
                          R"({"model": {"type": "BPE", "vocab": {"a": 0}}, "pre_tokenizer": {"type": "Whitespace"}})"}) {
    EXPECT_THROW(vocab_from_hf(bad, ""), Error) << bad;
  }
}

}  // namespace
}  // namespace aero::tokenizer

namespace aero::tokenizer {
namespace {

// HF folder -> GGUF carries the tokenizer as llama.cpp's tokenizer.* keys (issue: model files).
TEST(HfJson, HfFolderToGgufWritesTheTokenizerKeys) {
  AERO_REQUIRE_SHARED(shared);
  test::ScratchDir dir;
  const auto hf = dir / "hf";
  std::filesystem::create_directories(hf);
  for (const char* f : {"config.json", "model.safetensors"})
    std::filesystem::copy_file(shared / "fixtures/hf/qwen2" / f, hf / f);
  const auto vocab_path = shared / "fixtures/tokenizer/ggml-vocab-qwen2.gguf";
  const Vocab original = vocab_from_gguf(format::GgufFile::open(vocab_path).metadata());
  std::ofstream(hf / "tokenizer.json") << vocab_to_hf(original);
  std::ofstream(hf / "tokenizer_config.json") << vocab_to_hf_config(original).dump();

  convert::convert(hf, dir / "out.gguf", convert::OutputKind::Gguf, {});
  const auto gguf = format::GgufFile::open(dir / "out.gguf");
  EXPECT_EQ(gguf.metadata().get_string("tokenizer.ggml.model"), "gpt2");
  EXPECT_EQ(gguf.metadata().get_string("tokenizer.ggml.pre"), "qwen2");
  EXPECT_EQ(gguf.metadata().get_string("tokenizer.chat_template"), original.chat_template);
  Tokenizer tok(vocab_from_gguf(gguf.metadata()));
  for (const auto& c : test::read_vocab_cases(vocab_path)) EXPECT_EQ(tok.encode(c.text, false, false), c.ids) << c.text;

  // A converted .aero is self-contained: its tokenizer and template travel inside it.
  convert::convert(hf, dir / "out.aero", convert::OutputKind::Aero, {});
  Tokenizer inside = Tokenizer::load(dir / "out.aero");
  EXPECT_EQ(inside.vocab().chat_template, original.chat_template);
  for (const auto& c : test::read_vocab_cases(vocab_path)) EXPECT_EQ(inside.encode(c.text, false, false), c.ids) << c.text;
}

}  // namespace
}  // namespace aero::tokenizer

namespace aero::tokenizer {
namespace {

// A hand-made SentencePiece-style tokenizer.json; ids worked out by hand from the merges.
TEST(HfJson, MetaspaceTokenizerFollowsItsMergesAndPrependScheme) {
  auto json = [](const char* scheme) {
    return std::string(R"({"added_tokens": [{"id": 0, "content": "<unk>", "special": true},
                                             {"id": 1, "content": "<s>", "special": true}],
      "pre_tokenizer": {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": ")") + scheme + R"("},
      "post_processor": {"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "<s>"}}, {"Sequence": {"id": "A"}}]},
      "model": {"type": "BPE", "unk_token": "<unk>", "byte_fallback": false,
        "vocab": {"<unk>": 0, "<s>": 1, "\u2581": 2, "a": 3, "b": 4, "\u2581a": 5, "ab": 6, "\u2581ab": 7},
        "merges": ["\u2581 a", "a b", "\u2581a b"]}})";
  };
  Tokenizer first(vocab_from_hf(json("first"), ""));
  EXPECT_TRUE(first.vocab().add_bos);  // from the post-processor
  EXPECT_EQ(first.encode("ab ab", true, false), (std::vector<std::int32_t>{1, 7, 7}));
  EXPECT_EQ(first.encode("ab", false, false), (std::vector<std::int32_t>{7}));
  EXPECT_EQ(first.decode(first.encode("ab ab", false, false)), "ab ab");
  Tokenizer never(vocab_from_hf(json("never"), ""));
  EXPECT_EQ(never.encode("ab", false, false), (std::vector<std::int32_t>{6}));
  EXPECT_EQ(never.encode("ab ba", false, false), (std::vector<std::int32_t>{6, 2, 4, 3}));
}

}  // namespace
}  // namespace aero::tokenizer
