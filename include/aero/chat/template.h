// Chat templates: the Jinja template a model ships with (GGUF tokenizer.chat_template or
// tokenizer_config.json), rendered by aero's own interpreter the way transformers renders it
// (trim_blocks, lstrip_blocks, loop controls, tojson, raise_exception, strftime_now).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "aero/json.h"

namespace aero::chat {

namespace jinja {
struct Program;
}

struct Message {
  std::string role;
  std::string content;
};

class Template {
 public:
  // Parses; throws aero::Error naming the line of a syntax error.
  explicit Template(const std::string& source);
  ~Template();
  Template(Template&&) noexcept;
  Template& operator=(Template&&) noexcept;

  // `context`: a JSON object of the template's variables. raise_exception() in the template
  // and errors while rendering throw aero::Error.
  std::string render(const Json& context) const;

 private:
  std::unique_ptr<jinja::Program> program_;
};

struct ChatOptions {
  bool add_generation_prompt = true;
  std::string bos_token, eos_token;
  Json extra = Json::object();  // more variables: tools, date_string, enable_thinking, ...
};

// The context transformers' apply_chat_template builds: messages, add_generation_prompt,
// bos_token, eos_token, plus `extra`.
std::string apply_chat_template(const Template& tmpl, const Json& messages, const ChatOptions& options);
std::string apply_chat_template(const Template& tmpl, const std::vector<Message>& messages, const ChatOptions& options);

}  // namespace aero::chat
