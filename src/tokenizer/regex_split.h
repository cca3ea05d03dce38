// Pre-tokenization: splits text with a sequence of regexes (PCRE2, Unicode properties), each
// regex cutting every piece so far into its matches and the gaps between them (HF's Split
// with behavior "Isolated"). Lookarounds see only the piece being split, as in HF.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace aero::tokenizer {

class RegexSplitter {
 public:
  explicit RegexSplitter(const std::vector<std::string>& regexes);
  ~RegexSplitter();
  RegexSplitter(RegexSplitter&&) noexcept;
  RegexSplitter& operator=(RegexSplitter&&) noexcept;

  // Appends the pieces of `text` to `out` (views into `text`). Bytes that are not valid UTF-8
  // become pieces of their own, so no input is lost.
  void split(std::string_view text, std::vector<std::string_view>& out) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace aero::tokenizer
