// Tokenizers: any text encodes without failing and decodes back to itself (SentencePiece with
// byte fallback and byte-level BPE are lossless, but for SentencePiece's own space mark), with and without special-token parsing;
// inputs starting with '{' go to the tokenizer.json reader instead.
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string_view>
#include <vector>

#include "aero/error.h"
#include "aero/tokenizer/tokenizer.h"

namespace {

std::vector<std::unique_ptr<aero::tokenizer::Tokenizer>>& tokenizers() {
  static std::vector<std::unique_ptr<aero::tokenizer::Tokenizer>> all = [] {
    std::vector<std::unique_ptr<aero::tokenizer::Tokenizer>> t;
    const char* env = std::getenv("AERO_SHARED");
    std::filesystem::path shared = env ? env : AERO_SHARED_DIR;
    for (const char* name : {"llama-spm", "qwen2", "llama-bpe"}) {
      auto p = shared / "fixtures/tokenizer" / (std::string("ggml-vocab-") + name + ".gguf");
      if (std::filesystem::exists(p)) t.push_back(std::make_unique<aero::tokenizer::Tokenizer>(aero::tokenizer::Tokenizer::load(p)));
    }
    return t;
  }();
  return all;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  if (!text.empty() && text[0] == '{') {
    try {
      aero::tokenizer::Tokenizer tok(aero::tokenizer::vocab_from_hf(std::string(text), ""));
      auto ids = tok.encode("Hello world <s> 123", true, true);
      (void)tok.decode(ids, true);
    } catch (const aero::Error&) {
    }
    return 0;
  }
  for (const auto& tok : tokenizers()) {
    auto ids = tok->encode(text, false, false);
    // Lossless on any bytes, except that SentencePiece reads a '▁' (U+2581) in the text as the
    // space it stands for, as SentencePiece itself does.
    std::string expected(text);
    if (tok->vocab().algorithm == aero::tokenizer::Algorithm::Spm)
      for (std::size_t at; (at = expected.find("\xE2\x96\x81")) != std::string::npos;) expected.replace(at, 3, " ");
    if (tok->decode(ids) != expected) abort();
    auto special = tok->encode(text, true, true);
    aero::tokenizer::StreamDecoder stream(*tok, true);
    std::string streamed;
    for (auto id : special) streamed += stream.push(id);
    streamed += stream.finish();
    if (streamed != tok->decode(special, true) && tok->vocab().algorithm == aero::tokenizer::Algorithm::Bpe) abort();
  }
  return 0;
}
