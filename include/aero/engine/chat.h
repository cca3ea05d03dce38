// Text in, text out: a conversation rendered with the model's chat template, tokenized, run
// through a Session (reusing the KV cache of the part already seen), answered token by token.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "aero/chat/template.h"
#include "aero/engine/generate.h"
#include "aero/tokenizer/tokenizer.h"

namespace aero::engine {

// Holds back generated text that could be the start of a stop string, so a stop string is
// never shown; says when one has appeared.
class StopStrings {
 public:
  explicit StopStrings(std::vector<std::string> stops) : stops_(std::move(stops)) {}
  std::string push(std::string_view text);  // the text that is now safe to show
  std::string finish();                     // what is held back, when generation ends otherwise
  bool stopped() const { return stopped_; }

 private:
  std::vector<std::string> stops_;
  std::string held_;
  bool stopped_ = false;
};

// The chat template a tokenizer's model ships with, or ChatML (what llama.cpp falls back to)
// when it has none; `fallback` says which.
chat::Template model_chat_template(const tokenizer::Tokenizer& tok, bool* fallback = nullptr);

// Prompt text -> ids the way llama.cpp prompts: BOS when the model asks for it and the text
// does not already begin with it; special tokens written in the text are parsed.
std::vector<std::int32_t> tokenize_prompt(const tokenizer::Tokenizer& tok, std::string_view text);

struct ChatSettings {
  std::string system;                 // system message (none when empty)
  std::int64_t max_tokens = -1;       // per answer; -1: until end of turn or a full context
  std::vector<std::string> stop;      // stop strings
  Json template_variables = Json::object();  // extra template variables (enable_thinking, ...)
};

class Chat {
 public:
  Chat(Session& session, Sampler& sampler, const tokenizer::Tokenizer& tok, ChatSettings settings);

  // Adds the user's message and streams the answer through `on_text` (return false to stop,
  // e.g. on Ctrl-C); the answer, complete or cut short, joins the history.
  GenerationStats respond(const std::string& user, const std::function<bool(std::string_view)>& on_text);
  // Forgets the conversation (the system message stays).
  void reset();
  const std::vector<chat::Message>& messages() const { return messages_; }
  bool uses_fallback_template() const { return fallback_; }

 private:
  Session& session_;
  Sampler& sampler_;
  const tokenizer::Tokenizer& tok_;
  ChatSettings settings_;
  chat::Template template_;
  bool fallback_ = false;
  std::vector<chat::Message> messages_;
  std::vector<std::int32_t> cached_;  // the tokens whose keys/values the session holds
};

}  // namespace aero::engine
