// llama.cpp's names for pre-tokenizers (GGUF tokenizer.ggml.pre) and the regexes they stand for.
// The regexes are the ones in each model's tokenizer.json; PCRE2 runs them as written.
#include <utility>

#include "aero/error.h"
#include "aero/tokenizer/vocab.h"

namespace aero::tokenizer {
namespace {

const char* const kGpt2 =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)";
const char* const kLlama3 =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const char* const kQwen2 =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
// Qwen3.5: as Qwen2, but letter runs take Unicode combining marks along ([\p{L}\p{M}]+) and
// punctuation runs leave them out.
const char* const kQwen35 =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?[\\p{L}\\p{M}]+|\\p{N}| ?[^\\s\\p{L}\\p{M}\\p{N}]+[\\r\\n]*|"
    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const char* const kTekken =
    "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+|"
    "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*|\\p{N}|"
    " ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

struct Known {
  const char* name;
  std::vector<std::string> regexes;
};

const std::vector<Known>& known() {
  static const std::vector<Known> table = {
      {"gpt-2", {kGpt2}},
      {"llama-bpe", {kLlama3}},
      {"qwen2", {kQwen2}},
      {"qwen35", {kQwen35}},
      {"smollm", {"\\p{N}", kGpt2}},
      {"tekken", {kTekken}},
  };
  return table;
}

// Other names llama.cpp gives the same splits.
const std::vector<std::pair<const char*, const char*>>& aliases() {
  static const std::vector<std::pair<const char*, const char*>> table = {
      {"default", "gpt-2"},  {"mpt", "gpt-2"},         {"olmo", "gpt-2"},       {"jais", "gpt-2"},
      {"llama3", "llama-bpe"}, {"llama-v3", "llama-bpe"}, {"dbrx", "llama-bpe"}, {"smaug-bpe", "llama-bpe"},
      {"falcon3", "llama-bpe"}, {"pixtral", "llama-bpe"}, {"stablelm2", "qwen2"}, {"deepseek-r1-qwen", "qwen2"},
      {"hunyuan", "qwen2"},  {"starcoder", "smollm"},  {"refact", "smollm"},    {"command-r", "smollm"},
      {"codeshell", "smollm"}, {"exaone", "smollm"},   {"minerva-7b", "smollm"},
  };
  return table;
}

}  // namespace

std::vector<std::string> pre_tokenizer_regexes(const std::string& name) {
  std::string canonical = name;
  for (const auto& [alias, target] : aliases())
    if (name == alias) canonical = target;
  for (const auto& k : known())
    if (canonical == k.name) return k.regexes;
  fail("unknown pre-tokenizer '{}' (tokenizer.ggml.pre); aero knows gpt-2, llama-bpe, qwen2, qwen35, smollm, tekken "
       "and their aliases",
       name);
}

std::optional<std::string> pre_tokenizer_name(const std::vector<std::string>& regexes) {
  for (const auto& k : known())
    if (k.regexes == regexes) return std::string(k.name);
  return std::nullopt;
}

}  // namespace aero::tokenizer
