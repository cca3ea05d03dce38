// Any bytes as a GGUF model, through everything `aero run` does before and during the first
// token: hyper-parameters, the weight-role checks, a session and one forward pass. Also any
// bytes as a config.json through the HF hyper-parameter parser (first byte picks which).
#include "aero/engine/session.h"
#include "aero/error.h"
#include "aero/model/spec.h"
#include "memory_file.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  try {
    if (data[0] == '{') {
      (void)aero::model::spec_from_hf_config(
          aero::parse_json({reinterpret_cast<const char*>(data), size}, "config.json"));
      return 0;
    }
    const std::string path = aero::fuzz::as_file(data, size, ".gguf");
    auto model = aero::engine::Model::open(path);
    auto cpu = aero::backend::make_cpu_backend(1);
    aero::engine::Session session(*model, *cpu, {.context = 4});
    const std::int32_t token = 0;
    (void)session.eval(std::span(&token, 1));
  } catch (const aero::Error&) {
  }
  return 0;
}
