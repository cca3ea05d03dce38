#define PCRE2_CODE_UNIT_WIDTH 8
#include "regex_split.h"

#include <pcre2.h>

#include "aero/error.h"

namespace aero::tokenizer {

namespace {

struct CodeDeleter {
  void operator()(pcre2_code* code) const { pcre2_code_free(code); }
};
struct MatchDataDeleter {
  void operator()(pcre2_match_data* data) const { pcre2_match_data_free(data); }
};
using Code = std::unique_ptr<pcre2_code, CodeDeleter>;
using MatchData = std::unique_ptr<pcre2_match_data, MatchDataDeleter>;

// Length of the valid UTF-8 sequence starting at s[0], or 0 when s[0] starts none.
std::size_t utf8_sequence_length(std::string_view s) {
  const auto b0 = static_cast<unsigned char>(s[0]);
  std::size_t n;
  std::uint32_t min;
  if (b0 < 0x80) return 1;
  if ((b0 & 0xE0) == 0xC0) n = 2, min = 0x80;
  else if ((b0 & 0xF0) == 0xE0) n = 3, min = 0x800;
  else if ((b0 & 0xF8) == 0xF0) n = 4, min = 0x10000;
  else return 0;
  if (s.size() < n) return 0;
  std::uint32_t cp = b0 & (0x7F >> n);
  for (std::size_t i = 1; i < n; ++i) {
    const auto b = static_cast<unsigned char>(s[i]);
    if ((b & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (b & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return n;
}

}  // namespace

struct RegexSplitter::Impl {
  std::vector<Code> codes;

  void split_one(const pcre2_code* code, pcre2_match_data* md, std::string_view text,
                 std::vector<std::string_view>& out) const {
    const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
    std::size_t start = 0, gap = 0;
    while (start < text.size()) {
      int rc = pcre2_match(code, subject, text.size(), start, PCRE2_NO_UTF_CHECK, md, nullptr);
      if (rc == PCRE2_ERROR_NOMATCH) break;
      if (rc < 0) fail("tokenizer regex failed (PCRE2 error {})", rc);
      const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
      std::size_t b = ov[0], e = ov[1];
      if (e == b) {  // an empty match cuts nothing; step over one character
        start = b + utf8_sequence_length(text.substr(b));
        continue;
      }
      if (b > gap) out.push_back(text.substr(gap, b - gap));
      out.push_back(text.substr(b, e - b));
      gap = start = e;
    }
    if (gap < text.size()) out.push_back(text.substr(gap));
  }
};

RegexSplitter::RegexSplitter(const std::vector<std::string>& regexes) : impl_(std::make_unique<Impl>()) {
  for (const auto& r : regexes) {
    int error = 0;
    PCRE2_SIZE offset = 0;
    Code code(pcre2_compile(reinterpret_cast<PCRE2_SPTR>(r.data()), r.size(), PCRE2_UTF | PCRE2_UCP, &error,
                            &offset, nullptr));
    if (!code) {
      PCRE2_UCHAR message[256];
      pcre2_get_error_message(error, message, sizeof message);
      fail("tokenizer regex '{}' does not compile at offset {}: {}", r, offset, reinterpret_cast<char*>(message));
    }
    pcre2_jit_compile(code.get(), PCRE2_JIT_COMPLETE);  // falls back to the interpreter if JIT is unavailable
    impl_->codes.push_back(std::move(code));
  }
}

RegexSplitter::~RegexSplitter() = default;
RegexSplitter::RegexSplitter(RegexSplitter&&) noexcept = default;
RegexSplitter& RegexSplitter::operator=(RegexSplitter&&) noexcept = default;

void RegexSplitter::split(std::string_view text, std::vector<std::string_view>& out) const {
  // Valid UTF-8 runs go to the regexes; each invalid byte stands alone.
  std::vector<std::string_view> pieces;
  std::size_t run = 0, i = 0;
  while (i < text.size()) {
    std::size_t n = utf8_sequence_length(text.substr(i));
    if (n) {
      i += n;
      continue;
    }
    if (i > run) pieces.push_back(text.substr(run, i - run));
    pieces.push_back(text.substr(i, 1));
    run = ++i;
  }
  if (run < text.size()) pieces.push_back(text.substr(run));
  auto valid = [](std::string_view p) { return p.size() != 1 || static_cast<unsigned char>(p[0]) < 0x80; };

  std::vector<std::string_view> next;
  for (const auto& code : impl_->codes) {
    // Match data per call, so one splitter serves any number of threads.
    MatchData md(pcre2_match_data_create_from_pattern(code.get(), nullptr));
    if (!md) fail("out of memory in the tokenizer");
    next.clear();
    for (auto p : pieces) {
      if (valid(p)) impl_->split_one(code.get(), md.get(), p, next);
      else next.push_back(p);
    }
    pieces.swap(next);
  }
  out.insert(out.end(), pieces.begin(), pieces.end());
}

}  // namespace aero::tokenizer
