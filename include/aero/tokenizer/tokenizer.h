// Text <-> token ids, as the model was trained: SentencePiece-style and byte-level BPE.
// Special and user-defined tokens are matched before splitting and never split.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "aero/format/model_source.h"
#include "aero/tokenizer/vocab.h"

namespace aero::tokenizer {

class Tokenizer {
 public:
  explicit Tokenizer(Vocab vocab);
  ~Tokenizer();
  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;

  // From a model's metadata (GGUF keys first, else tokenizer.json).
  static Tokenizer from_metadata(const format::ModelMetadata& metadata);
  // PATH: any model file, a vocab-only GGUF, a tokenizer.json, or a folder holding one.
  static Tokenizer load(const std::filesystem::path& path);

  // add_special: BOS/EOS as the model asks; parse_special: control tokens written in the text
  // (e.g. "<|im_start|>") become their ids. User-defined tokens are always matched.
  std::vector<std::int32_t> encode(std::string_view text, bool add_special, bool parse_special) const;
  // The bytes a token stands for; control tokens are empty unless `special`.
  std::string piece(std::int32_t id, bool special = false) const;
  // Concatenated pieces; drops the leading space SentencePiece's prefix added to a text start.
  std::string decode(std::span<const std::int32_t> ids, bool special = false) const;

  const Vocab& vocab() const;
  std::int32_t size() const;
  bool is_end_of_generation(std::int32_t id) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Turns tokens into text as they are generated, holding back an incomplete UTF-8 sequence
// until the token that ends it arrives.
class StreamDecoder {
 public:
  explicit StreamDecoder(const Tokenizer& tokenizer, bool special = false) : tokenizer_(tokenizer), special_(special) {}
  std::string push(std::int32_t id);  // the text now complete
  std::string finish();               // whatever is held back, as is

 private:
  const Tokenizer& tokenizer_;
  bool special_;
  std::string pending_;
};

// Length of the longest prefix of `s` made of whole UTF-8 sequences, counting a byte that can
// never start or continue a valid sequence as whole (it is passed on as is).
std::size_t complete_utf8_prefix(std::string_view s);

}  // namespace aero::tokenizer
