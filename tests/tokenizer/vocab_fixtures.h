// llama.cpp's tokenizer test vectors (../shared/fixtures/tokenizer): texts separated by
// "__ggml_vocab_test__" lines, and per text a line of expected ids (HF tokenizers' output,
// encoded without special tokens).
#pragma once

#include <sstream>
#include <string>
#include <vector>

#include "test_support.h"

namespace aero::test {

struct VocabCase {
  std::string text;
  std::vector<std::int32_t> ids;
};

inline std::string read_text(const std::filesystem::path& p) {
  auto bytes = read_bytes(p);
  return {bytes.begin(), bytes.end()};
}

inline std::vector<VocabCase> read_vocab_cases(const std::filesystem::path& gguf) {
  const std::string inp = read_text(gguf.string() + ".inp");
  const std::string out = read_text(gguf.string() + ".out");
  const std::string sep = "\n__ggml_vocab_test__\n";
  std::vector<VocabCase> cases;
  for (std::size_t from = 0, at; (at = inp.find(sep, from)) != std::string::npos; from = at + sep.size())
    cases.push_back({inp.substr(from, at - from), {}});
  std::istringstream lines(out);
  std::string line;
  for (auto& c : cases) {
    if (!std::getline(lines, line)) break;
    std::istringstream ids(line);
    for (std::int32_t id; ids >> id;) c.ids.push_back(id);
  }
  return cases;
}

inline const char* const kVocabNames[] = {"llama-spm", "llama-bpe", "qwen2", "gpt-2", "phi-3"};

}  // namespace aero::test
