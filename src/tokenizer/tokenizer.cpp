// Encoding follows the tokenizers the models were trained with (HF tokenizers, SentencePiece):
// special tokens are cut out first, then each text fragment is either
//  - Spm: spaces escaped to '▁' (plus a leading '▁'), split into characters, the adjacent pair
//    whose concatenation is the best-scoring token merged until none is; characters with no
//    token fall back to <0xXX> byte tokens;
//  - Bpe: split by the pre-tokenizer regexes, each piece's bytes mapped to GPT-2's alphabet and
//    merged by rank, lowest first (leftmost on ties).
#include "aero/tokenizer/tokenizer.h"

#include <algorithm>
#include <queue>
#include <unordered_map>

#include "aero/error.h"
#include "byte_level.h"
#include "regex_split.h"

namespace aero::tokenizer {

namespace {

constexpr std::string_view kSpmSpace = "\xE2\x96\x81";  // U+2581 '▁'

struct Fragment {
  std::int32_t token = -1;  // >= 0: a special token; else text
  std::string_view text;
};

std::size_t utf8_length_of_lead(unsigned char b) {
  if (b < 0x80) return 1;
  if ((b & 0xE0) == 0xC0) return 2;
  if ((b & 0xF0) == 0xE0) return 3;
  if ((b & 0xF8) == 0xF0) return 4;
  return 1;
}

// Decodes one code point (lenient: a malformed sequence yields its first byte as the value).
std::uint32_t next_code_point(std::string_view s, std::size_t& i) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  std::size_t n = utf8_length_of_lead(b0);
  if (n == 1 || i + n > s.size()) {
    ++i;
    return b0;
  }
  std::uint32_t cp = b0 & (0x7F >> n);
  for (std::size_t k = 1; k < n; ++k) cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3F);
  i += n;
  return cp;
}

}  // namespace

struct Tokenizer::Impl {
  Vocab vocab;
  std::unordered_map<std::string_view, std::int32_t> ids;  // views into vocab.tokens
  std::vector<std::int32_t> specials;                      // longest first
  std::array<std::int32_t, 256> byte_tokens{};             // a token per byte, -1 where none
  std::unordered_map<std::uint64_t, std::pair<std::int32_t, std::int32_t>> merges;  // pair -> (rank, result)
  std::unique_ptr<RegexSplitter> splitter;
  std::vector<std::string> pieces;          // decoded bytes per token (control tokens: their text)

  std::int32_t find(std::string_view text) const {
    auto it = ids.find(text);
    return it == ids.end() ? -1 : it->second;
  }

  void partition(std::string_view text, bool parse_special, std::vector<Fragment>& out) const;
  void encode_spm(std::string_view text, bool prefix_space, std::vector<std::int32_t>& out) const;
  void merge_spm(std::string_view text, std::vector<std::int32_t>& out) const;
  bool spm_words_independent = false;  // no token has '▁' after another character
  void encode_bpe(std::string_view text, std::vector<std::int32_t>& out) const;
  void merge_bpe(std::vector<std::int32_t>& symbols) const;
  std::string decoded_piece(std::int32_t id) const;
};

Tokenizer::Tokenizer(Vocab vocab) : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  m.vocab = std::move(vocab);
  const auto& v = m.vocab;
  const std::size_t n = v.tokens.size();
  if (n == 0) fail("the tokenizer has no tokens");
  if (v.types.size() != n) fail("the tokenizer has {} token types for {} tokens", v.types.size(), n);
  if (v.algorithm == Algorithm::Spm && v.scores.size() != n)
    fail("the tokenizer has {} scores for {} tokens", v.scores.size(), n);
  m.ids.reserve(n);
  for (std::size_t i = 0; i < n; ++i) m.ids.emplace(v.tokens[i], static_cast<std::int32_t>(i));  // first id wins

  for (std::size_t i = 0; i < n; ++i) {
    auto t = v.types[i];
    if ((t == TokenType::Control || t == TokenType::UserDefined || t == TokenType::Unknown) && !v.tokens[i].empty())
      m.specials.push_back(static_cast<std::int32_t>(i));
  }
  std::stable_sort(m.specials.begin(), m.specials.end(),
                   [&](std::int32_t a, std::int32_t b) { return v.tokens[a].size() > v.tokens[b].size(); });

  m.byte_tokens.fill(-1);
  if (v.algorithm == Algorithm::Spm) {
    m.spm_words_independent = std::none_of(v.tokens.begin(), v.tokens.end(), [](const std::string& t) {
      for (std::size_t at = t.find(kSpmSpace, 1); at != std::string::npos; at = t.find(kSpmSpace, at + 1))
        if (at < kSpmSpace.size() || t.compare(at - kSpmSpace.size(), kSpmSpace.size(), kSpmSpace) != 0) return true;
      return false;
    });
    for (int b = 0; b < 256; ++b) {
      std::int32_t id = m.find(fmt::format("<0x{:02X}>", b));
      if (id < 0 && b < 0x80) id = m.find(std::string(1, static_cast<char>(b)));
      m.byte_tokens[b] = id;
    }
  } else {
    for (int b = 0; b < 256; ++b) {
      std::string s;
      append_utf8(s, byte_to_code_point()[b]);
      m.byte_tokens[b] = m.find(s);
    }
    m.merges.reserve(v.merges.size());
    std::string joined;
    for (std::size_t rank = 0; rank < v.merges.size(); ++rank) {
      const std::string& line = v.merges[rank];
      std::size_t space = line.find(' ', 1);
      if (space == std::string::npos) fail("BPE merge {} ('{}') has no space", rank, line);
      std::string_view left(line.data(), space), right(line.data() + space + 1, line.size() - space - 1);
      joined.assign(left).append(right);
      std::int32_t l = m.find(left), r = m.find(right), result = m.find(joined);
      if (l < 0 || r < 0 || result < 0) continue;  // merges into or from nothing in the vocabulary
      std::uint64_t key = (static_cast<std::uint64_t>(l) << 32) | static_cast<std::uint32_t>(r);
      m.merges.emplace(key, std::make_pair(static_cast<std::int32_t>(rank), result));  // lowest rank wins
    }
    m.splitter = std::make_unique<RegexSplitter>(v.pre_regexes);
  }
  m.pieces.reserve(n);
  for (std::size_t i = 0; i < n; ++i) m.pieces.push_back(m.decoded_piece(static_cast<std::int32_t>(i)));
}

Tokenizer::~Tokenizer() = default;
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;

const Vocab& Tokenizer::vocab() const { return impl_->vocab; }
std::int32_t Tokenizer::size() const { return static_cast<std::int32_t>(impl_->vocab.tokens.size()); }

bool Tokenizer::is_end_of_generation(std::int32_t id) const {
  const auto& eog = impl_->vocab.end_of_generation;
  return std::find(eog.begin(), eog.end(), id) != eog.end();
}

std::string Tokenizer::Impl::decoded_piece(std::int32_t id) const {
  const std::string& text = vocab.tokens[id];
  switch (vocab.types[id]) {
    case TokenType::Byte: {
      unsigned value = 0;
      if (text.size() == 6 && text.starts_with("<0x") && text.back() == '>' &&
          std::sscanf(text.c_str() + 3, "%2x", &value) == 1)
        return std::string(1, static_cast<char>(value));
      return text;
    }
    case TokenType::Normal:
    case TokenType::Undefined:
      break;
    default:  // control, user-defined, unknown, unused: their text as written
      return text;
  }
  std::string out;
  out.reserve(text.size());
  if (vocab.algorithm == Algorithm::Spm) {
    for (std::size_t i = 0; i < text.size();) {
      if (text.compare(i, kSpmSpace.size(), kSpmSpace) == 0) {
        out += ' ';
        i += kSpmSpace.size();
      } else {
        out += text[i++];
      }
    }
  } else {
    for (std::size_t i = 0; i < text.size();) {
      std::size_t start = i;
      int byte = code_point_to_byte(next_code_point(text, i));
      if (byte >= 0) out += static_cast<char>(byte);
      else out.append(text, start, i - start);  // outside the byte alphabet: kept as written
    }
  }
  return out;
}

std::string Tokenizer::piece(std::int32_t id, bool special) const {
  if (id < 0 || id >= size()) fail("token id {} is outside the vocabulary (0..{})", id, size() - 1);
  auto t = impl_->vocab.types[id];
  if (!special && (t == TokenType::Control || t == TokenType::Unused)) return {};
  return impl_->pieces[id];
}

std::string Tokenizer::decode(std::span<const std::int32_t> ids, bool special) const {
  std::string out;
  for (std::size_t i = 0; i < ids.size(); ++i) {
    std::string p = piece(ids[i], special);
    // The space SentencePiece put before the text's first word is not part of the text.
    if (i == 0 && impl_->vocab.algorithm == Algorithm::Spm && impl_->vocab.add_space_prefix && !p.empty() &&
        p[0] == ' ')
      p.erase(0, 1);
    out += p;
  }
  return out;
}

void Tokenizer::Impl::partition(std::string_view text, bool parse_special, std::vector<Fragment>& out) const {
  out.clear();
  if (text.empty()) return;  // SentencePiece encodes "" as nothing, not as its prefix space
  out.push_back({-1, text});
  std::vector<Fragment> next;
  for (std::int32_t id : specials) {
    auto type = vocab.types[id];
    if (!parse_special && type != TokenType::UserDefined) continue;
    const std::string& needle = vocab.tokens[id];
    next.clear();
    bool found = false;
    for (const auto& f : out) {
      if (f.token >= 0) {
        next.push_back(f);
        continue;
      }
      std::size_t from = 0;
      for (std::size_t at; (at = f.text.find(needle, from)) != std::string_view::npos; from = at + needle.size()) {
        if (at > from) next.push_back({-1, f.text.substr(from, at - from)});
        next.push_back({id, {}});
        found = true;
      }
      if (from < f.text.size()) next.push_back({-1, f.text.substr(from)});
    }
    if (found) out.swap(next);
  }
}

std::vector<std::int32_t> Tokenizer::encode(std::string_view text, bool add_special, bool parse_special) const {
  const Impl& m = *impl_;
  std::vector<std::int32_t> out;
  if (add_special && m.vocab.add_bos) out.push_back(m.vocab.bos);
  std::vector<Fragment> fragments;
  m.partition(text, parse_special, fragments);
  bool after_special = true;  // SentencePiece prefixes a space at the start and after specials
  for (const auto& f : fragments) {
    if (f.token >= 0) {
      out.push_back(f.token);
      after_special = true;
      continue;
    }
    if (m.vocab.algorithm == Algorithm::Spm) m.encode_spm(f.text, m.vocab.add_space_prefix && after_special, out);
    else m.encode_bpe(f.text, out);
    after_special = false;
  }
  if (add_special && m.vocab.add_eos) out.push_back(m.vocab.eos);
  return out;
}

// ---- SentencePiece-style BPE -----------------------------------------------------------

void Tokenizer::Impl::encode_spm(std::string_view raw, bool prefix_space, std::vector<std::int32_t>& out) const {
  std::string text;
  text.reserve(raw.size() + 16);
  if (prefix_space) text += kSpmSpace;
  for (char c : raw) {
    if (c == ' ') text += kSpmSpace;
    else text += c;
  }
  if (text.empty()) return;
  if (!spm_words_independent) return merge_spm(text, out);
  // No token reaches across the start of a word ('▁' after another character), so merging
  // each word alone gives the same tokens as merging the whole text, in far less time.
  std::string_view all(text);
  std::size_t start = 0;
  for (std::size_t i = kSpmSpace.size(); i + kSpmSpace.size() <= all.size(); ++i) {
    if (all.compare(i, kSpmSpace.size(), kSpmSpace) != 0 || all.compare(i - kSpmSpace.size(), kSpmSpace.size(), kSpmSpace) == 0)
      continue;
    merge_spm(all.substr(start, i - start), out);
    start = i;
  }
  merge_spm(all.substr(start), out);
}

void Tokenizer::Impl::merge_spm(std::string_view text, std::vector<std::int32_t>& out) const {
  if (text.empty()) return;
  struct Symbol {
    std::size_t offset, length;
    int prev, next;
  };
  std::vector<Symbol> symbols;
  for (std::size_t i = 0; i < text.size();) {
    // A character, or a lone byte where the UTF-8 is broken (so it cannot swallow the '▁'
    // an escaped space became, and decoding gives the input back).
    std::size_t n = std::min(utf8_length_of_lead(static_cast<unsigned char>(text[i])), text.size() - i);
    for (std::size_t k = 1; k < n; ++k)
      if ((static_cast<unsigned char>(text[i + k]) & 0xC0) != 0x80) n = 1;
    int index = static_cast<int>(symbols.size());
    symbols.push_back({i, n, index - 1, index + 1});
    i += n;
  }
  symbols.back().next = -1;

  struct Bigram {
    float score;
    int left, right;
    std::size_t length;
    bool operator<(const Bigram& o) const {  // priority_queue: best score on top, then leftmost
      return score < o.score || (score == o.score && left > o.left);
    }
  };
  std::priority_queue<Bigram> queue;
  auto try_add = [&](int left, int right) {
    if (left < 0 || right < 0) return;
    std::size_t length = symbols[left].length + symbols[right].length;
    std::int32_t id = find(text.substr(symbols[left].offset, length));
    if (id < 0) return;
    queue.push({vocab.scores[id], left, right, length});
  };
  for (int i = 1; i < static_cast<int>(symbols.size()); ++i) try_add(i - 1, i);

  while (!queue.empty()) {
    Bigram b = queue.top();
    queue.pop();
    Symbol& left = symbols[b.left];
    Symbol& right = symbols[b.right];
    // Stale when either side has been merged since the pair was queued.
    if (left.length == 0 || right.length == 0 || left.length + right.length != b.length) continue;
    left.length += right.length;
    right.length = 0;
    left.next = right.next;
    if (right.next >= 0) symbols[right.next].prev = b.left;
    try_add(left.prev, b.left);
    try_add(b.left, left.next);
  }

  for (int i = 0; i != -1; i = symbols[i].next) {
    std::string_view s = text.substr(symbols[i].offset, symbols[i].length);
    std::int32_t id = find(s);
    if (id >= 0) {
      out.push_back(id);
      continue;
    }
    for (unsigned char c : s) {  // byte fallback
      std::int32_t b = byte_tokens[c];
      if (b < 0) b = vocab.unk;
      if (b >= 0) out.push_back(b);
    }
  }
}

// ---- byte-level BPE --------------------------------------------------------------------

void Tokenizer::Impl::merge_bpe(std::vector<std::int32_t>& symbols) const {
  const int n = static_cast<int>(symbols.size());
  if (n < 2) return;
  std::vector<int> prev(n), next(n);
  for (int i = 0; i < n; ++i) prev[i] = i - 1, next[i] = i + 1 < n ? i + 1 : -1;

  struct Pair {
    std::int32_t rank, left, right, left_id, right_id, result;
    bool operator<(const Pair& o) const {  // priority_queue: lowest rank on top, then leftmost
      return rank > o.rank || (rank == o.rank && left > o.left);
    }
  };
  std::priority_queue<Pair> queue;
  auto try_add = [&](int left, int right) {
    if (left < 0 || right < 0) return;
    std::uint64_t key = (static_cast<std::uint64_t>(symbols[left]) << 32) | static_cast<std::uint32_t>(symbols[right]);
    auto it = merges.find(key);
    if (it == merges.end()) return;
    queue.push({it->second.first, left, right, symbols[left], symbols[right], it->second.second});
  };
  for (int i = 1; i < n; ++i) try_add(i - 1, i);
  while (!queue.empty()) {
    Pair p = queue.top();
    queue.pop();
    // Stale when either side changed or the two are no longer neighbours.
    if (symbols[p.left] != p.left_id || symbols[p.right] != p.right_id || next[p.left] != p.right) continue;
    symbols[p.left] = p.result;
    symbols[p.right] = -1;
    next[p.left] = next[p.right];
    if (next[p.right] >= 0) prev[next[p.right]] = p.left;
    try_add(prev[p.left], p.left);
    try_add(p.left, next[p.left]);
  }
  std::erase(symbols, -1);
}

void Tokenizer::Impl::encode_bpe(std::string_view text, std::vector<std::int32_t>& out) const {
  std::vector<std::string_view> words;
  splitter->split(text, words);
  std::vector<std::int32_t> symbols;
  std::string mapped;
  for (auto word : words) {
    if (vocab.ignore_merges) {
      mapped.clear();
      for (unsigned char c : word) append_utf8(mapped, byte_to_code_point()[c]);
      if (std::int32_t id = find(mapped); id >= 0) {
        out.push_back(id);
        continue;
      }
    }
    symbols.clear();
    bool complete = true;
    for (unsigned char c : word) {
      symbols.push_back(byte_tokens[c]);
      complete = complete && byte_tokens[c] >= 0;
    }
    if (!complete) {  // a vocabulary without all 256 bytes: the missing ones become <unk> or vanish
      for (auto& s : symbols)
        if (s < 0) s = vocab.unk;
      std::erase(symbols, -1);
    }
    merge_bpe(symbols);
    out.insert(out.end(), symbols.begin(), symbols.end());
  }
}

// ---- streaming ------------------------------------------------------------------------------

std::size_t complete_utf8_prefix(std::string_view s) {
  // Only a trailing, so far valid, incomplete sequence is held back.
  std::size_t start = s.size();
  for (std::size_t back = 1; back <= 3 && back <= s.size(); ++back) {
    auto b = static_cast<unsigned char>(s[s.size() - back]);
    if ((b & 0xC0) != 0x80) {
      start = s.size() - back;
      break;
    }
  }
  if (start == s.size()) return s.size();
  std::size_t need = utf8_length_of_lead(static_cast<unsigned char>(s[start]));
  return s.size() - start < need && need > 1 ? start : s.size();
}

std::string StreamDecoder::push(std::int32_t id) {
  pending_ += tokenizer_.piece(id, special_);
  std::size_t n = complete_utf8_prefix(pending_);
  std::string ready = pending_.substr(0, n);
  pending_.erase(0, n);
  return ready;
}

std::string StreamDecoder::finish() { return std::exchange(pending_, {}); }

}  // namespace aero::tokenizer
