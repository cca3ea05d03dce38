// The Jinja interpreter: any template text either renders or fails with aero::Error (never
// crashes, hangs or grows without bound), for a conversation with every message shape.
#include <string>

#include "aero/chat/template.h"
#include "aero/error.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const aero::Json messages = aero::Json::parse(R"([
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Hi <b> \"q\" é"},
    {"role": "assistant", "content": "<think>x</think>Hello", "tool_calls": [{"function": {"name": "f", "arguments": {"a": 1}}}]},
    {"role": "tool", "content": "42"}])");
  try {
    aero::chat::Template tmpl(std::string(reinterpret_cast<const char*>(data), size));
    aero::chat::ChatOptions options;
    options.bos_token = "<s>";
    options.eos_token = "</s>";
    options.extra["tools"] = aero::Json::parse(R"([{"type": "function", "function": {"name": "f", "parameters": {}}}])");
    (void)aero::chat::apply_chat_template(tmpl, messages, options);
  } catch (const aero::Error&) {
  }
  return 0;
}
