// The interactive chat of `aero chat` and `aero-run --interactive`: line editing and history
// (libedit), streamed answers, /reset and /exit, Ctrl-C stops the answer, not the session.
#pragma once

#include "aero/engine/chat.h"

namespace aero::cli {

// Returns when the user types /exit or ends input (Ctrl-D, or Ctrl-C at the prompt).
void run_chat_loop(engine::Chat& chat);

}  // namespace aero::cli
