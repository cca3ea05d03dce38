// The `qwen35` pre-tokenizer (Qwen3.5's GGUF vocabularies) against llama.cpp: its ids for the
// Qwen2 vocabulary with tokenizer.ggml.pre set to "qwen35", from llama-tokenize (llama.cpp's
// unicode_regex_split_custom_qwen35) on llama.cpp's test texts and on texts with combining marks,
// which are where Qwen3.5's split differs from Qwen2's.
#include "aero/format/gguf.h"
#include "aero/tokenizer/tokenizer.h"
#include "tokenizer/vocab_fixtures.h"

namespace aero::tokenizer {
namespace {

Tokenizer qwen2_vocab_with_pre(const std::filesystem::path& shared, const std::string& pre) {
  auto gguf = format::GgufFile::open(shared / "fixtures/tokenizer/ggml-vocab-qwen2.gguf");
  format::GgufMetadata metadata = gguf.metadata();
  metadata.set({"tokenizer.ggml.pre", format::GgufType::String, format::GgufType::U8, pre});
  return Tokenizer(vocab_from_gguf(metadata));
}

// llama-tokenize -m <qwen2 vocab, pre qwen35> -f TEXT --no-escape --no-parse-special --no-bos --ids
const test::VocabCase kMarkCases[] = {
    {"e\xcc\x81tude", {68, 53839, 83, 793}},  // e + combining acute
    {"nai\xcc\x88ve cafe\xcc\x81 re\xcc\x81sume\xcc\x81", {77, 2143, 136, 230, 586, 40930, 53839, 312, 53839, 31323, 53839}},
    {"\xe0\xa4\xa8\xe0\xa4\xae\xe0\xa4\xb8\xe0\xa5\x8d\xe0\xa4\xa4\xe0\xa5\x87 \xe0\xa4\xa6\xe0\xa5\x81\xe0\xa4\xa8\xe0\xa4"
     "\xbf\xe0\xa4\xaf\xe0\xa4\xbe, \xe0\xa4\xb9\xe0\xa4\xbf\xe0\xa4\xa8\xe0\xa5\x8d\xe0\xa4\xa6\xe0\xa5\x80",  // Hindi
     {60096, 87244, 78368, 30484, 97, 34370, 14925, 99, 72653, 60096, 42311, 107, 23868, 11, 84310, 42311, 101, 30484, 99,
      43647}},
    {"\xe0\xb8\xaa\xe0\xb8\xa7\xe0\xb8\xb1\xe0\xb8\xaa\xe0\xb8\x94\xe0\xb8\xb5\xe0\xb8\x84\xe0\xb8\xa3\xe0\xb8\xb1\xe0\xb8"
     "\x9a \xe0\xb8\xa0\xe0\xb8\xb2\xe0\xb8\xa9\xe0\xb8\xb2\xe0\xb9\x84\xe0\xb8\x97\xe0\xb8\xa2",  // Thai
     {35648, 124294, 35648, 124311, 125459, 220, 127382, 125451}},
    {"\xd9\x85\xd9\x8e\xd8\xb1\xd9\x92\xd8\xad\xd9\x8e\xd8\xa8\xd9\x8b\xd8\xa7 \xd8\xa8\xd9\x90\xd8\xa7\xd9\x84\xd8\xb9\xd9"
     "\x8e\xd8\xa7\xd9\x84\xd9\x8e\xd9\x85",  // Arabic with harakat
     {130531, 11071, 59397, 132078, 21360, 127837, 27846, 52704, 31382, 131319, 31382, 27910, 10176}},
    {"\xd7\xa9\xd6\xb8\xd7\x81\xd7\x9c\xd7\x95\xd6\xb9\xd7\x9d \xd7\xa2\xd7\x95\xd6\xb9\xd7\x9c\xd6\xb8\xd7\x9d",  // Hebrew points
     {58411, 146, 116, 147, 223, 124314, 146, 117, 123802, 123855, 134071, 49291, 146, 116, 123802}},
    {"Z\xcc\xb4\xcc\xa1" "a\xcc\xb8l\xcc\xb7g\xcc\xb6o\xcc\xb5 text",  // stacked marks
     {57, 136, 112, 136, 94, 64, 136, 116, 75, 136, 115, 70, 136, 114, 78, 136, 113, 1467}},
    {" \xcc\x81x !\xcc\x81? 3\xcc\x81 \xe2\x83\x9d\xcc\x81",  // marks after a space, punctuation, a digit
     {220, 53839, 87, 753, 53839, 30, 220, 18, 53839, 2858, 29389, 53839}},
    {"Tie\xcc\x82\xcc\x81ng Vie\xcc\xa3\xcc\x82t", {51, 645, 136, 224, 53839, 968, 59302, 136, 96, 136, 224, 83}},
    {"\xcc\x81\xcc\x82\xcc\x83", {53839, 136, 224, 136, 225}},  // marks alone
    {"\xe0\xb2\x95\xe0\xb2\xa8\xe0\xb3\x8d\xe0\xb2\xa8\xe0\xb2\xa1 \xe0\xae\xa4\xe0\xae\xae\xe0\xae\xbf\xe0\xae\xb4\xe0\xaf"
     "\x8d \xe0\xb0\xa4\xe0\xb1\x86\xe0\xb0\xb2\xe0\xb1\x81\xe0\xb0\x97\xe0\xb1\x81",  // Kannada, Tamil, Telugu
     {147268, 146664, 55890, 235, 146664, 147633, 70597, 97, 146150, 99012, 112, 46354, 93255, 97, 52798, 228, 147635,
      52798, 223, 147812, 52798, 223}},
    {"a\n\xcc\x81" "b\t\xcc\x88" "c", {64, 198, 53839, 65, 197, 136, 230, 66}},  // marks after a newline, a tab
};

TEST(Qwen35PreTokenizer, EncodesTextsWithCombiningMarksLikeLlamaCpp) {
  AERO_REQUIRE_SHARED(shared);
  const Tokenizer qwen35 = qwen2_vocab_with_pre(shared, "qwen35");
  const Tokenizer qwen2 = qwen2_vocab_with_pre(shared, "qwen2");
  int differs_from_qwen2 = 0;
  for (const auto& c : kMarkCases) {
    EXPECT_EQ(qwen35.encode(c.text, false, false), c.ids) << "text '" << c.text << "'";
    EXPECT_EQ(qwen35.decode(c.ids), c.text);
    if (qwen2.encode(c.text, false, false) != c.ids) ++differs_from_qwen2;
  }
  // The cases tell the two splits apart (llama.cpp's qwen2 split gives other ids on four).
  EXPECT_GE(differs_from_qwen2, 3);
}

// On llama.cpp's test texts llama-tokenize gives the qwen35 vocabulary the qwen2 ids.
TEST(Qwen35PreTokenizer, EncodesLlamaCppTestTextsLikeLlamaCpp) {
  AERO_REQUIRE_SHARED(shared);
  const Tokenizer qwen35 = qwen2_vocab_with_pre(shared, "qwen35");
  EXPECT_EQ(qwen35.vocab().pre, "qwen35");
  const auto cases = test::read_vocab_cases(shared / "fixtures/tokenizer/ggml-vocab-qwen2.gguf");
  ASSERT_EQ(cases.size(), 46u);
  for (const auto& c : cases) EXPECT_EQ(qwen35.encode(c.text, false, false), c.ids) << "text '" << c.text << "'";
}

TEST(Qwen35PreTokenizer, RoundTripsThroughGgufAndTokenizerJson) {
  AERO_REQUIRE_SHARED(shared);
  const Vocab vocab = qwen2_vocab_with_pre(shared, "qwen35").vocab();
  format::GgufMetadata gguf;
  put_gguf_tokenizer(vocab, gguf);
  EXPECT_EQ(gguf.get_string("tokenizer.ggml.pre"), "qwen35");
  const Vocab from_json = vocab_from_hf(vocab_to_hf(vocab), vocab_to_hf_config(vocab).dump());
  EXPECT_EQ(from_json.pre_regexes, vocab.pre_regexes);
  EXPECT_EQ(from_json.pre, "qwen35");
}

}  // namespace
}  // namespace aero::tokenizer
