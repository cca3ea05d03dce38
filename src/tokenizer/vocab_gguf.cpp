// Vocab from GGUF tokenizer.* keys (as llama.cpp reads them), and back.
#include <algorithm>

#include "aero/error.h"
#include "aero/tokenizer/vocab.h"
#include "vocab_rules.h"

namespace aero::tokenizer {

using format::GgufKv;
using format::GgufMetadata;
using format::GgufType;

namespace {

const Json* array_of(const GgufMetadata& m, const char* key, std::size_t expected_size) {
  const GgufKv* kv = m.find(key);
  if (!kv) return nullptr;
  if (kv->type != GgufType::Array || !kv->value.is_array()) fail("{} is not an array", key);
  if (expected_size && kv->value.size() != expected_size)
    fail("{} has {} entries for {} tokens", key, kv->value.size(), expected_size);
  return &kv->value;
}

std::int32_t token_id(const GgufMetadata& m, const char* key, std::size_t n_tokens) {
  auto v = m.get_int(key);
  if (!v) return -1;
  // llama.cpp treats an id outside the vocabulary as absent (some files store -1 or junk).
  return *v >= 0 && static_cast<std::size_t>(*v) < n_tokens ? static_cast<std::int32_t>(*v) : -1;
}

void add_unique(std::vector<std::int32_t>& ids, std::int32_t id) {
  if (id >= 0 && std::find(ids.begin(), ids.end(), id) == ids.end()) ids.push_back(id);
}

}  // namespace

Vocab vocab_from_gguf(const GgufMetadata& m) {
  Vocab v;
  const std::string model = m.get_string("tokenizer.ggml.model").value_or("");
  if (model == "llama") v.algorithm = Algorithm::Spm;
  else if (model == "gpt2") v.algorithm = Algorithm::Bpe;
  else if (model.empty()) fail("the model has no tokenizer (no tokenizer.ggml.model key)");
  else fail("tokenizer model '{}' is not supported (aero has llama/SentencePiece and gpt2/byte-level BPE)", model);

  const Json* tokens = array_of(m, "tokenizer.ggml.tokens", 0);
  if (!tokens || tokens->empty()) fail("the model has no tokenizer.ggml.tokens");
  const std::size_t n = tokens->size();
  v.tokens.reserve(n);
  for (const auto& t : *tokens) {
    if (!t.is_string()) fail("tokenizer.ggml.tokens holds a non-string");
    v.tokens.push_back(t.get<std::string>());
  }
  v.scores.assign(n, 0.0f);
  if (const Json* scores = array_of(m, "tokenizer.ggml.scores", n))
    for (std::size_t i = 0; i < n; ++i) {
      if (!(*scores)[i].is_number()) fail("tokenizer.ggml.scores holds a non-number");
      v.scores[i] = (*scores)[i].get<float>();
    }
  v.types.assign(n, TokenType::Normal);
  if (const Json* types = array_of(m, "tokenizer.ggml.token_type", n))
    for (std::size_t i = 0; i < n; ++i) {
      if (!(*types)[i].is_number_integer()) fail("tokenizer.ggml.token_type holds a non-integer");
      auto t = (*types)[i].get<std::int64_t>();
      v.types[i] = t >= 0 && t <= 6 ? static_cast<TokenType>(t) : TokenType::Normal;
    }

  if (v.algorithm == Algorithm::Bpe) {
    const Json* merges = array_of(m, "tokenizer.ggml.merges", 0);
    if (!merges) fail("a gpt2 tokenizer needs tokenizer.ggml.merges");
    v.merges.reserve(merges->size());
    for (const auto& s : *merges) {
      if (!s.is_string()) fail("tokenizer.ggml.merges holds a non-string");
      v.merges.push_back(s.get<std::string>());
    }
    v.pre = m.get_string("tokenizer.ggml.pre").value_or("default");
    v.pre_regexes = pre_tokenizer_regexes(v.pre);
    const bool llama3_like = v.pre_regexes == pre_tokenizer_regexes("llama-bpe") ||
                             v.pre_regexes == pre_tokenizer_regexes("tekken");
    v.ignore_merges = llama3_like;
    v.add_bos = llama3_like;
    v.add_space_prefix = false;
  } else {
    v.add_bos = true;
    v.add_space_prefix = true;
  }

  v.bos = token_id(m, "tokenizer.ggml.bos_token_id", n);
  v.eos = token_id(m, "tokenizer.ggml.eos_token_id", n);
  v.unk = token_id(m, "tokenizer.ggml.unknown_token_id", n);
  v.pad = token_id(m, "tokenizer.ggml.padding_token_id", n);
  if (auto b = m.find("tokenizer.ggml.add_bos_token"); b && b->value.is_boolean()) v.add_bos = b->value.get<bool>();
  if (auto b = m.find("tokenizer.ggml.add_eos_token"); b && b->value.is_boolean()) v.add_eos = b->value.get<bool>();
  if (auto b = m.find("tokenizer.ggml.add_space_prefix"); b && b->value.is_boolean())
    v.add_space_prefix = b->value.get<bool>();
  if (v.add_bos && v.bos < 0) v.add_bos = false;
  if (v.add_eos && v.eos < 0) v.add_eos = false;
  if (v.algorithm == Algorithm::Spm && v.unk < 0) {
    auto it = std::find(v.tokens.begin(), v.tokens.end(), "<unk>");
    if (it != v.tokens.end()) v.unk = static_cast<std::int32_t>(it - v.tokens.begin());
  }

  collect_end_of_generation(v, {token_id(m, "tokenizer.ggml.eot_token_id", n), token_id(m, "tokenizer.ggml.eom_token_id", n)});
  v.chat_template = m.get_string("tokenizer.chat_template").value_or("");
  return v;
}

void collect_end_of_generation(Vocab& v, std::initializer_list<std::int32_t> extra) {
  v.end_of_generation.clear();
  add_unique(v.end_of_generation, v.eos);
  for (auto id : extra) add_unique(v.end_of_generation, id);
  for (std::size_t i = 0; i < v.tokens.size(); ++i) {
    const auto& t = v.tokens[i];
    if (v.types[i] == TokenType::Control &&
        (t == "<|eot_id|>" || t == "<|im_end|>" || t == "<|end|>" || t == "<end_of_turn>" || t == "<|endoftext|>" ||
         t == "<|eom_id|>" || t == "<|end_of_text|>"))
      add_unique(v.end_of_generation, static_cast<std::int32_t>(i));
  }
}

void put_gguf_tokenizer(const Vocab& v, GgufMetadata& m) {
  auto put = [&](const char* key, GgufType type, Json value, GgufType element = GgufType::U8) {
    m.set(GgufKv{key, type, element, std::move(value)});
  };
  const bool spm = v.algorithm == Algorithm::Spm;
  put("tokenizer.ggml.model", GgufType::String, spm ? "llama" : "gpt2");
  if (!spm) put("tokenizer.ggml.pre", GgufType::String, v.pre.empty() ? "default" : v.pre);
  put("tokenizer.ggml.tokens", GgufType::Array, Json(v.tokens), GgufType::String);
  if (spm) put("tokenizer.ggml.scores", GgufType::Array, Json(v.scores), GgufType::F32);
  Json types = Json::array();
  for (auto t : v.types) types.push_back(static_cast<int>(t));
  put("tokenizer.ggml.token_type", GgufType::Array, std::move(types), GgufType::I32);
  if (!spm) put("tokenizer.ggml.merges", GgufType::Array, Json(v.merges), GgufType::String);
  auto put_id = [&](const char* key, std::int32_t id) {
    if (id >= 0) put(key, GgufType::U32, id);
  };
  put_id("tokenizer.ggml.bos_token_id", v.bos);
  put_id("tokenizer.ggml.eos_token_id", v.eos);
  put_id("tokenizer.ggml.unknown_token_id", v.unk);
  put_id("tokenizer.ggml.padding_token_id", v.pad);
  put("tokenizer.ggml.add_bos_token", GgufType::Bool, v.add_bos);
  put("tokenizer.ggml.add_eos_token", GgufType::Bool, v.add_eos);
  if (spm) put("tokenizer.ggml.add_space_prefix", GgufType::Bool, v.add_space_prefix);
  if (!v.chat_template.empty()) put("tokenizer.chat_template", GgufType::String, v.chat_template);
}

}  // namespace aero::tokenizer
