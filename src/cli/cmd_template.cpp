// aero template FILE --messages M.json: the prompt a chat template renders for a conversation.
#include <cstdio>

#include "aero/chat/template.h"
#include "aero/engine/chat.h"
#include "aero/error.h"
#include "aero/json.h"
#include "aero/mapped_file.h"
#include "aero/tokenizer/tokenizer.h"
#include "cli/commands.h"

namespace aero::cli {

void add_template_command(CLI::App& app) {
  struct Options {
    std::string file, messages;
    bool add_generation_prompt = false;
    std::vector<std::string> vars;
  };
  auto opt = std::make_shared<Options>();
  auto* cmd = app.add_subcommand("template", "Render a model's chat template for a conversation");
  cmd->add_option("file", opt->file, "model, vocab GGUF, tokenizer.json/folder, or a .jinja template")->required();
  cmd->add_option("--messages", opt->messages,
                  "JSON file: a list of {role, content}, or an object with \"messages\" and other variables")
      ->required();
  cmd->add_flag("--add-generation-prompt", opt->add_generation_prompt, "end with the assistant's turn opening");
  cmd->add_option("--var", opt->vars, "template variable NAME=JSON (e.g. enable_thinking=false); repeatable");
  cmd->callback([opt] {
    constexpr std::uint64_t kMax = 64ull << 20;
    Json input = parse_json(read_small_file(opt->messages, kMax), opt->messages);
    chat::ChatOptions options;
    options.add_generation_prompt = opt->add_generation_prompt;
    Json messages = input;
    if (input.is_object()) {
      if (!input.contains("messages")) fail("{}: has no \"messages\"", opt->messages);
      messages = input["messages"];
      for (const auto& [k, v] : input.items())
        if (k != "messages") options.extra[k] = v;
    }
    if (!messages.is_array()) fail("{}: messages must be a list of {{\"role\", \"content\"}} objects", opt->messages);
    for (const auto& var : opt->vars) {
      auto eq = var.find('=');
      if (eq == std::string::npos || eq == 0) fail("--var wants NAME=JSON, got '{}'", var);
      std::string value = var.substr(eq + 1);
      Json parsed = Json::parse(value, nullptr, false);
      options.extra[var.substr(0, eq)] = parsed.is_discarded() ? Json(value) : parsed;
    }
    std::string source;
    if (opt->file.ends_with(".jinja")) {
      source = read_small_file(opt->file, kMax);
      options.bos_token = options.extra.value("bos_token", "<s>");
      options.eos_token = options.extra.value("eos_token", "</s>");
      std::fputs(chat::apply_chat_template(chat::Template(source), messages, options).c_str(), stdout);
      return;
    }
    auto tok = tokenizer::Tokenizer::load(opt->file);
    if (tok.vocab().chat_template.empty()) fail("{}: has no chat template", opt->file);
    const auto& v = tok.vocab();
    if (v.bos >= 0) options.bos_token = v.tokens[v.bos];
    if (v.eos >= 0) options.eos_token = v.tokens[v.eos];
    std::fputs(chat::apply_chat_template(engine::model_chat_template(tok), messages, options).c_str(), stdout);
  });
}

}  // namespace aero::cli
