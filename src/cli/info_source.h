// `aero info` for the containers that are not AERO (GGUF, safetensors, Hugging Face folders):
// what the model is, as aero reads it — tensors by type, hyper-parameters, tokenizer.
#pragma once

#include <string>

namespace aero::cli {

void print_source_info(const std::string& path, bool tensors, bool json);

}  // namespace aero::cli
