// What the text front ends (run, chat, aero-run) share: a model with its tokenizer and a
// session on a backend.
#pragma once

#include <cstdio>
#include <memory>
#include <string>
#include <string_view>

#include "aero/backend/backend.h"
#include "aero/error.h"
#include "aero/engine/session.h"
#include "aero/tokenizer/tokenizer.h"

namespace aero::cli {

// Streams generated text: written and flushed at once, so it appears as it is made.
inline bool show_text(std::string_view text) {
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::fflush(stdout);
  return true;
}

struct TextModel {
  std::unique_ptr<engine::Model> model;
  std::unique_ptr<tokenizer::Tokenizer> tokenizer;
  std::unique_ptr<backend::Backend> backend;
  std::unique_ptr<engine::Session> session;

  // `backend` runs the session (made first, so that a device that cannot be used fails
  // before the model is read); `tokenizer_path` (optional) overrides the tokenizer the model
  // carries; without `with_tokenizer` none is loaded (token ids in and out); `model_options`
  // place the layers (cli/placement.h).
  static TextModel open(std::unique_ptr<backend::Backend> backend, const std::string& model_path,
                        const std::string& metadata_from, const std::string& tokenizer_path,
                        engine::SessionOptions session_options, bool with_tokenizer = true,
                        const engine::ModelOptions& model_options = {}) {
    TextModel t;
    t.backend = std::move(backend);
    t.model = engine::Model::open(model_path, metadata_from, model_options);
    // The context the model's store asks for (Ollama's num_ctx) when --ctx left it to the model.
    const Json& defaults = t.model->source().metadata().sampling_defaults;
    if (auto it = defaults.find("num_ctx"); session_options.context == 0 && it != defaults.end()) {
      if (!it->is_number_integer() || it->get<std::int64_t>() <= 0)
        fail("{}: parameter 'num_ctx' is not a positive integer", t.model->source().metadata().name);
      session_options.context = it->get<std::int64_t>();
    }
    if (with_tokenizer)
      t.tokenizer = std::make_unique<tokenizer::Tokenizer>(
          tokenizer_path.empty() ? tokenizer::Tokenizer::from_metadata(t.model->source().metadata())
                                 : tokenizer::Tokenizer::load(tokenizer_path));
    if (t.tokenizer && t.tokenizer->size() > t.model->spec().vocab)
      fail("the tokenizer has {} tokens but the model only {} embeddings", t.tokenizer->size(), t.model->spec().vocab);
    t.session = std::make_unique<engine::Session>(*t.model, *t.backend, session_options);
    return t;
  }
};

}  // namespace aero::cli
