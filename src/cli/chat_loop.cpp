#include "cli/chat_loop.h"

#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <string>

#include <editline/readline.h>
#include <unistd.h>

#include "aero/error.h"
#include "cli/text_model.h"

namespace aero::cli {

namespace {

std::atomic<bool> g_interrupted{false};

extern "C" void on_sigint(int) { g_interrupted.store(true); }

// SIGINT sets a flag while an answer streams; at the prompt it ends the session as usual.
struct SigintDuringAnswers {
  struct sigaction previous {};
  SigintDuringAnswers() {
    struct sigaction sa {};
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &previous);
  }
  ~SigintDuringAnswers() { sigaction(SIGINT, &previous, nullptr); }
};

bool read_line(std::string& line, bool interactive) {
  if (interactive) {
    char* raw = readline("> ");
    if (!raw) return false;
    line = raw;
    std::free(raw);
    if (!line.empty()) add_history(line.c_str());
    return true;
  }
  // Piped input: plain lines, no prompt echo games.
  std::fputs("> ", stdout);
  std::fflush(stdout);
  line.clear();
  int c;
  while ((c = std::fgetc(stdin)) != EOF && c != '\n') line += static_cast<char>(c);
  return c != EOF || !line.empty();
}

}  // namespace

void run_chat_loop(engine::Chat& chat) {
  const bool interactive = isatty(STDIN_FILENO) != 0;
  if (chat.uses_fallback_template())
    std::fprintf(stderr, "note: the model has no chat template; using ChatML\n");
  std::fprintf(stderr, "chat: /reset forgets the conversation, /exit (or Ctrl-D) leaves; Ctrl-C stops an answer\n");
  std::string line;
  while (read_line(line, interactive)) {
    if (line == "/exit" || line == "/quit") break;
    if (line == "/reset") {
      chat.reset();
      std::fprintf(stderr, "(conversation reset)\n");
      continue;
    }
    if (line.empty()) continue;
    g_interrupted.store(false);
    try {
      SigintDuringAnswers guard;
      chat.respond(line, [](std::string_view text) { return show_text(text) && !g_interrupted.load(); });
    } catch (const Error& e) {
      std::fprintf(stderr, "\nerror: %s\n", e.what());
    }
    if (g_interrupted.exchange(false)) std::fputs(" [stopped]", stdout);
    std::fputs("\n", stdout);
    std::fflush(stdout);
  }
}

}  // namespace aero::cli
