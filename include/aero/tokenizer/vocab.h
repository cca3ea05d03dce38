// A tokenizer's vocabulary and rules, whatever file it came from: GGUF `tokenizer.*` keys or
// Hugging Face tokenizer.json (+ tokenizer_config.json). The Tokenizer runs on this alone.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "aero/format/gguf.h"
#include "aero/format/model_source.h"

namespace aero::tokenizer {

// GGUF's tokenizer.ggml.token_type values.
enum class TokenType : std::uint8_t {
  Undefined = 0, Normal = 1, Unknown = 2, Control = 3, UserDefined = 4, Unused = 5, Byte = 6,
};

enum class Algorithm {
  Spm,  // SentencePiece BPE: merge by token score, '▁' for spaces, <0xXX> byte fallback
  Bpe,  // merge ranks over byte-level (GPT-2) symbols after regex pre-tokenization
};

struct Vocab {
  Algorithm algorithm = Algorithm::Spm;
  std::vector<std::string> tokens;
  std::vector<float> scores;           // Spm: merge priority of each token
  std::vector<TokenType> types;
  std::vector<std::string> merges;     // Bpe: "left right", lowest rank first
  std::string pre;                     // Bpe: llama.cpp's pre-tokenizer name (tokenizer.ggml.pre)
  std::vector<std::string> pre_regexes;  // Bpe: splits applied in order (HF Sequence of Split)
  bool ignore_merges = false;          // a word that is a token as a whole is not merged (Llama 3)
  bool add_space_prefix = true;        // Spm: the text gets a leading '▁'
  bool add_bos = false;
  bool add_eos = false;
  std::int32_t bos = -1, eos = -1, unk = -1, pad = -1;
  std::vector<std::int32_t> end_of_generation;  // eos, eot, eom, <|im_end|>, ... (deduplicated)
  std::string chat_template;
};

// The regexes llama.cpp uses for a `tokenizer.ggml.pre` name; fails on names it doesn't know.
std::vector<std::string> pre_tokenizer_regexes(const std::string& name);
// The llama.cpp name for a list of regexes (for writing GGUF), or nullopt.
std::optional<std::string> pre_tokenizer_name(const std::vector<std::string>& regexes);

Vocab vocab_from_gguf(const format::GgufMetadata& metadata);
// From a model's metadata: GGUF keys win (as llama.cpp reads them), else tokenizer.json with
// tokenizer_config.json and chat_template.jinja; nullopt when it carries neither.
std::optional<Vocab> vocab_from_metadata(const format::ModelMetadata& metadata);
// tokenizer.json text, and tokenizer_config.json text (may be empty).
Vocab vocab_from_hf(const std::string& tokenizer_json, const std::string& tokenizer_config_json);
// tokenizer.json and tokenizer_config.json for a vocabulary (read back by vocab_from_hf and by
// HF tokenizers).
std::string vocab_to_hf(const Vocab& vocab);
Json vocab_to_hf_config(const Vocab& vocab);
// The GGUF tokenizer.* keys llama.cpp reads, for a vocabulary.
void put_gguf_tokenizer(const Vocab& vocab, format::GgufMetadata& metadata);

}  // namespace aero::tokenizer
