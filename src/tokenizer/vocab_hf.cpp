// Vocab from Hugging Face tokenizer.json (+ tokenizer_config.json), and back.
//  - Byte-level BPE (GPT-2, Llama 3, Qwen, SmolLM): the Split regexes of the pre-tokenizer
//    (and ByteLevel's own regex when use_regex), merges by rank.
//  - SentencePiece-converted BPE (Llama 2, Mistral, TinyLlama, Phi-3: Metaspace or
//    Prepend/Replace normalizers, byte_fallback): run as Spm, each token scored by the rank of
//    the first merge that makes it, so the best-ranked merge is the highest score.
#include <algorithm>
#include <map>

#include "aero/error.h"
#include "aero/tokenizer/vocab.h"
#include "vocab_rules.h"

namespace aero::tokenizer {

namespace {

// tokenizer.json holds objects of 100k+ keys: nlohmann's insertion-ordered json looks keys up
// linearly, so these documents use the std::map-backed one.
using Doc = nlohmann::json;

constexpr const char* kGpt2Regex =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)";

// A special token in tokenizer_config.json: "<s>" or {"content": "<s>", ...}.
std::string token_content(const Doc& j) {
  if (j.is_string()) return j.get<std::string>();
  if (j.is_object() && j.contains("content") && j["content"].is_string()) return j["content"].get<std::string>();
  return {};
}

// Walks a pre-tokenizer (or Sequence of them) collecting regex splits; says whether it is byte-level.
void collect_pre_tokenizer(const Doc& p, std::vector<std::string>& regexes, bool& byte_level, bool& metaspace) {
  if (!p.is_object()) return;
  const std::string type = p.value("type", "");
  if (type == "Sequence") {
    for (const auto& inner : p.value("pretokenizers", Doc::array())) collect_pre_tokenizer(inner, regexes, byte_level, metaspace);
  } else if (type == "Split") {
    const Doc& pattern = p.value("pattern", Doc::object());
    if (pattern.contains("Regex")) regexes.push_back(pattern["Regex"].get<std::string>());
    else if (pattern.contains("String")) fail("tokenizer.json: Split on a plain string is not supported");
    if (p.value("behavior", "Isolated") != "Isolated" || p.value("invert", false))
      fail("tokenizer.json: Split behaviour '{}' is not supported (Isolated is)", p.value("behavior", ""));
  } else if (type == "Digits") {
    regexes.push_back(p.value("individual_digits", false) ? "\\p{N}" : "\\p{N}+");
  } else if (type == "ByteLevel") {
    byte_level = true;
    if (p.value("use_regex", true)) regexes.push_back(kGpt2Regex);
    if (p.value("add_prefix_space", false)) fail("tokenizer.json: ByteLevel add_prefix_space is not supported");
  } else if (type == "Metaspace") {
    metaspace = p.value("prepend_scheme", "always") != "never" && p.value("add_prefix_space", true);
  } else {
    fail("tokenizer.json: pre-tokenizer '{}' is not supported", type);
  }
}

bool normalizer_prepends_space(const Doc& n) {
  if (!n.is_object()) return false;
  const std::string type = n.value("type", "");
  if (type == "Sequence") {
    for (const auto& inner : n.value("normalizers", Doc::array()))
      if (normalizer_prepends_space(inner)) return true;
    return false;
  }
  return type == "Prepend";
}

}  // namespace

Vocab vocab_from_hf(const std::string& tokenizer_json, const std::string& tokenizer_config_json) {
  auto parse = [](const std::string& text, const char* what) {
    Doc d = Doc::parse(text, nullptr, false);
    if (d.is_discarded()) fail("{}: not valid JSON", what);
    return d;
  };
  const Doc j = parse(tokenizer_json, "tokenizer.json");
  const Doc config = tokenizer_config_json.empty() ? Doc::object() : parse(tokenizer_config_json, "tokenizer_config.json");
  if (!j.is_object() || !j.contains("model") || !j["model"].is_object()) fail("tokenizer.json: has no \"model\"");
  const Doc& model = j["model"];
  if (model.value("type", "BPE") != "BPE")
    fail("tokenizer.json: model type '{}' is not supported (BPE is)", model.value("type", ""));
  if (!model.contains("vocab") || !model["vocab"].is_object()) fail("tokenizer.json: model has no vocab");

  Vocab v;
  // Ids: the model's vocab plus added tokens; gaps become unused placeholders.
  std::int64_t size = 0;
  for (const auto& [token, id] : model["vocab"].items()) {
    if (!id.is_number_integer() || id.get<std::int64_t>() < 0 || id.get<std::int64_t>() > (1 << 24))
      fail("tokenizer.json: token '{}' has a bad id", token);
    size = std::max(size, id.get<std::int64_t>() + 1);
  }
  const Doc added = j.value("added_tokens", Doc::array());
  for (const auto& a : added)
    if (a.contains("id") && a["id"].is_number_integer() && a["id"].get<std::int64_t>() >= 0 && a["id"].get<std::int64_t>() <= (1 << 24))
      size = std::max(size, a["id"].get<std::int64_t>() + 1);
  if (size == 0) fail("tokenizer.json: the vocabulary is empty");
  v.tokens.assign(static_cast<std::size_t>(size), {});
  v.types.assign(static_cast<std::size_t>(size), TokenType::Unused);
  for (const auto& [token, id] : model["vocab"].items()) {
    v.tokens[id.get<std::size_t>()] = token;
    v.types[id.get<std::size_t>()] = TokenType::Normal;
  }
  for (const auto& a : added) {
    if (!a.contains("id") || !a["id"].is_number_integer() || a["id"].get<std::int64_t>() < 0 || !a.contains("content") ||
        !a["content"].is_string())
      fail("tokenizer.json: an added token lacks id or content");
    auto id = a["id"].get<std::size_t>();
    v.tokens[id] = a["content"].get<std::string>();
    v.types[id] = a.value("special", false) ? TokenType::Control : TokenType::UserDefined;
  }
  for (std::size_t i = 0; i < v.tokens.size(); ++i)
    if (v.types[i] == TokenType::Unused) v.tokens[i] = "[PAD" + std::to_string(i) + "]";

  std::vector<std::string> merges;
  for (const auto& m : model.value("merges", Doc::array())) {
    if (m.is_string()) merges.push_back(m.get<std::string>());
    else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string())
      merges.push_back(m[0].get<std::string>() + " " + m[1].get<std::string>());
    else fail("tokenizer.json: a merge is neither \"a b\" nor [a, b]");
  }

  std::vector<std::string> regexes;
  bool byte_level = false, metaspace = false;
  collect_pre_tokenizer(j.value("pre_tokenizer", Doc()), regexes, byte_level, metaspace);
  if (const Doc& d = j.value("decoder", Doc()); d.is_object() && d.value("type", "") == "ByteLevel") byte_level = true;

  if (byte_level) {
    v.algorithm = Algorithm::Bpe;
    v.merges = std::move(merges);
    v.pre_regexes = std::move(regexes);
    v.pre = pre_tokenizer_name(v.pre_regexes).value_or("");
    v.ignore_merges = model.value("ignore_merges", false);
    v.add_space_prefix = false;
  } else {
    // SentencePiece-style: '▁' for spaces, <0xXX> byte fallback, scores from merge ranks.
    v.algorithm = Algorithm::Spm;
    v.add_space_prefix = metaspace || normalizer_prepends_space(j.value("normalizer", Doc()));
    std::map<std::string, std::size_t, std::less<>> first_rank;
    for (std::size_t r = 0; r < merges.size(); ++r) {
      std::size_t space = merges[r].find(' ', 1);
      if (space == std::string::npos) continue;
      first_rank.emplace(merges[r].substr(0, space) + merges[r].substr(space + 1), r);
    }
    v.scores.assign(v.tokens.size(), 0.0f);
    for (std::size_t i = 0; i < v.tokens.size(); ++i) {
      auto it = first_rank.find(v.tokens[i]);
      // Tokens no merge makes are never formed by one: lowest score.
      v.scores[i] = it == first_rank.end() ? -1e30f : -static_cast<float>(it->second) - 1.0f;
      const auto& t = v.tokens[i];
      if (v.types[i] == TokenType::Normal && t.size() == 6 && t.starts_with("<0x") && t.back() == '>') v.types[i] = TokenType::Byte;
    }
  }

  auto id_of = [&](const std::string& text) -> std::int32_t {
    if (text.empty()) return -1;
    for (std::size_t i = 0; i < v.tokens.size(); ++i)
      if (v.tokens[i] == text) return static_cast<std::int32_t>(i);
    return -1;
  };
  if (auto unk = model.value("unk_token", Doc()); unk.is_string()) {
    v.unk = id_of(unk.get<std::string>());
    if (v.unk >= 0) v.types[v.unk] = TokenType::Unknown;
  }
  v.bos = id_of(token_content(config.value("bos_token", Doc())));
  v.eos = id_of(token_content(config.value("eos_token", Doc())));
  v.pad = id_of(token_content(config.value("pad_token", Doc())));
  // BOS/EOS: tokenizer_config.json says; else the post-processor's template shows it.
  bool post_bos = false;
  if (const Doc& pp = j.value("post_processor", Doc()); pp.is_object()) {
    const Doc* single = nullptr;
    if (pp.value("type", "") == "TemplateProcessing") single = &pp["single"];
    else if (pp.value("type", "") == "Sequence")
      for (const auto& p : pp.value("processors", Doc::array()))
        if (p.value("type", "") == "TemplateProcessing") single = &p["single"];
    if (single && single->is_array() && !single->empty() && (*single)[0].contains("SpecialToken")) {
      post_bos = true;
      if (v.bos < 0) v.bos = id_of((*single)[0]["SpecialToken"].value("id", ""));
    }
  }
  v.add_bos = config.contains("add_bos_token") && config["add_bos_token"].is_boolean() ? config["add_bos_token"].get<bool>() : post_bos;
  v.add_eos = config.value("add_eos_token", false);
  if (v.add_bos && v.bos < 0) v.add_bos = false;
  if (v.add_eos && v.eos < 0) v.add_eos = false;
  collect_end_of_generation(v);

  if (const Doc& t = config.value("chat_template", Doc()); t.is_string()) {
    v.chat_template = t.get<std::string>();
  } else if (t.is_array()) {  // named templates: the default one
    for (const auto& named : t)
      if (named.value("name", "") == "default") v.chat_template = named.value("template", "");
  }
  return v;
}

std::string vocab_to_hf(const Vocab& v) {
  Doc vocab = Doc::object();
  Doc added = Doc::array();
  for (std::size_t i = 0; i < v.tokens.size(); ++i) {
    const auto type = v.types[i];
    if (type == TokenType::Control || type == TokenType::UserDefined || type == TokenType::Unknown)
      added.push_back(Doc{{"id", i}, {"content", v.tokens[i]}, {"single_word", false}, {"lstrip", false}, {"rstrip", false},
                           {"normalized", false}, {"special", type != TokenType::UserDefined}});
    if (!vocab.contains(v.tokens[i])) vocab[v.tokens[i]] = i;
  }
  Doc model = {{"type", "BPE"}, {"dropout", nullptr}, {"unk_token", v.unk >= 0 ? Doc(v.tokens[v.unk]) : Doc()},
                {"continuing_subword_prefix", nullptr}, {"end_of_word_suffix", nullptr}, {"fuse_unk", v.algorithm == Algorithm::Spm},
                {"byte_fallback", v.algorithm == Algorithm::Spm}, {"ignore_merges", v.ignore_merges}, {"vocab", vocab}};
  Doc j = {{"version", "1.0"}, {"truncation", nullptr}, {"padding", nullptr}, {"added_tokens", added}};
  if (v.algorithm == Algorithm::Bpe) {
    Doc splits = Doc::array();
    for (const auto& r : v.pre_regexes)
      splits.push_back(Doc{{"type", "Split"}, {"pattern", {{"Regex", r}}}, {"behavior", "Isolated"}, {"invert", false}});
    splits.push_back(Doc{{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", false}});
    j["normalizer"] = nullptr;
    j["pre_tokenizer"] = Doc{{"type", "Sequence"}, {"pretokenizers", splits}};
    j["decoder"] = Doc{{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", true}, {"use_regex", true}};
    model["merges"] = v.merges;
  } else {
    // Merges as transformers derives them from a SentencePiece model: every split of a token
    // into two tokens, best-scoring result first.
    std::map<std::string_view, std::size_t> ids;
    for (std::size_t i = 0; i < v.tokens.size(); ++i)
      if (v.types[i] == TokenType::Normal) ids.emplace(v.tokens[i], i);
    struct Merge {
      float score;
      std::size_t left, right;
    };
    std::vector<Merge> merges;
    for (const auto& [token, id] : ids)
      for (std::size_t cut = 1; cut < token.size(); ++cut) {
        auto l = ids.find(token.substr(0, cut)), r = ids.find(token.substr(cut));
        if (l != ids.end() && r != ids.end()) merges.push_back({v.scores[id], l->second, r->second});
      }
    std::stable_sort(merges.begin(), merges.end(), [](const Merge& a, const Merge& b) {
      return a.score != b.score ? a.score > b.score : a.left != b.left ? a.left < b.left : a.right < b.right;
    });
    Doc list = Doc::array();
    for (const auto& m : merges) list.push_back(v.tokens[m.left] + " " + v.tokens[m.right]);
    model["merges"] = list;
    Doc normalizers = Doc::array();
    if (v.add_space_prefix) normalizers.push_back(Doc{{"type", "Prepend"}, {"prepend", "\u2581"}});
    normalizers.push_back(Doc{{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", "\u2581"}});
    j["normalizer"] = Doc{{"type", "Sequence"}, {"normalizers", normalizers}};
    j["pre_tokenizer"] = nullptr;
    j["decoder"] = Doc{{"type", "Sequence"}, {"decoders", Doc::array()}};
  }
  j["post_processor"] = nullptr;
  j["model"] = model;
  return j.dump();
}

Json vocab_to_hf_config(const Vocab& v) {
  Json c = {{"add_bos_token", v.add_bos}, {"add_eos_token", v.add_eos}};
  if (v.bos >= 0) c["bos_token"] = v.tokens[v.bos];
  if (v.eos >= 0) c["eos_token"] = v.tokens[v.eos];
  if (v.unk >= 0) c["unk_token"] = v.tokens[v.unk];
  if (v.pad >= 0) c["pad_token"] = v.tokens[v.pad];
  if (!v.chat_template.empty()) c["chat_template"] = v.chat_template;
  return c;
}

}  // namespace aero::tokenizer
