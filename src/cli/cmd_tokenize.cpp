// aero tokenize FILE TEXT: the ids (and pieces) a model's tokenizer gives a text.
#include <cstdio>

#include "aero/engine/chat.h"
#include "aero/error.h"
#include "aero/mapped_file.h"
#include "aero/tokenizer/tokenizer.h"
#include "cli/commands.h"

namespace aero::cli {

namespace {
// A piece as a quoted, escaped literal, so that spaces, newlines and bytes are visible.
std::string quoted(const std::string& s) {
  std::string out = "'";
  for (unsigned char c : s) {
    if (c == '\n') out += "\\n";
    else if (c == '\t') out += "\\t";
    else if (c == '\r') out += "\\r";
    else if (c == '\'' || c == '\\') out += '\\', out += static_cast<char>(c);
    else if (c < 0x20 || c == 0x7F) out += fmt::format("\\x{:02x}", c);
    else out += static_cast<char>(c);
  }
  return out + "'";
}
}  // namespace

void add_tokenize_command(CLI::App& app) {
  struct Options {
    std::string file, text, text_file;
    bool ids_only = false, no_bos = false, no_parse_special = false;
  };
  auto opt = std::make_shared<Options>();
  auto* cmd = app.add_subcommand("tokenize", "Show the token ids and pieces of a text");
  cmd->add_option("file", opt->file, "model, vocab-only GGUF, tokenizer.json or a folder with one")->required();
  auto* text = cmd->add_option("text", opt->text, "the text");
  auto* from = cmd->add_option("-f,--file", opt->text_file, "read the text from this file instead");
  text->excludes(from);
  cmd->add_flag("--ids-only", opt->ids_only, "print only the ids, as [1, 2, 3]");
  cmd->add_flag("--no-bos", opt->no_bos, "do not add BOS/EOS even where the model asks for them");
  cmd->add_flag("--no-parse-special", opt->no_parse_special, "treat special-token text (e.g. <|im_start|>) as plain text");
  cmd->callback([opt] {
    if (opt->text.empty() && !opt->text_file.empty()) opt->text = read_small_file(opt->text_file, 1ull << 31);
    auto tok = tokenizer::Tokenizer::load(opt->file);
    auto ids = tok.encode(opt->text, !opt->no_bos, !opt->no_parse_special);
    if (opt->ids_only) {
      std::string line = "[";
      for (std::size_t i = 0; i < ids.size(); ++i) line += (i ? ", " : "") + std::to_string(ids[i]);
      std::printf("%s]\n", line.c_str());
      return;
    }
    for (auto id : ids) std::printf("%6d -> %s\n", id, quoted(tok.piece(id, true)).c_str());
  });
}

}  // namespace aero::cli
