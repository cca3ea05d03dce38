// The Hugging Face reference of a fixture model: input ids, logits computed in float64 by
// transformers, a prompt and its greedy continuation (../shared/fixtures/hf/<arch>/).
#pragma once

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "aero/engine/session.h"
#include "aero/format/model_source.h"

namespace aero::test {

struct HfReference {
  std::vector<std::int32_t> input_ids, prompt_ids, greedy_ids;
  std::vector<float> logits;  // input_ids.size() × vocab
  std::int64_t vocab = 0;

  static HfReference load(const std::filesystem::path& model_dir) {
    auto src = format::ModelSource::open(model_dir / "reference.safetensors");
    HfReference r;
    auto ints = [&](const char* name) {
      const auto* t = src->find(name);
      std::vector<std::int32_t> v(t->data.size() / 4);
      std::memcpy(v.data(), t->data.data(), t->data.size());
      return v;
    };
    r.input_ids = ints("input_ids");
    r.prompt_ids = ints("prompt_ids");
    r.greedy_ids = ints("greedy_ids");
    const auto* l = src->find("logits");
    r.vocab = static_cast<std::int64_t>(l->shape[1]);
    r.logits.resize(l->data.size() / 4);
    std::memcpy(r.logits.data(), l->data.data(), l->data.size());
    return r;
  }
};

// Greedy decoding on `session` from `prompt` until `length` ids: the fixtures' greedy_ids are
// transformers' answer to the same.
inline std::vector<std::int32_t> greedy_ids(engine::Session& session, const std::vector<std::int32_t>& prompt,
                                            std::size_t length) {
  std::vector<std::int32_t> ids = prompt;
  auto logits = session.eval(ids);
  while (ids.size() < length) {
    ids.push_back(static_cast<std::int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin()));
    logits = session.eval(std::span(ids).last(1));
  }
  return ids;
}

// The fixture models, one folder each.
inline std::vector<std::string> hf_fixture_models() {
  return {"llama", "llama-mha", "qwen2", "qwen3", "phi3", "gemma2", "gemma3", "mixtral", "qwen3moe"};
}

}  // namespace aero::test
