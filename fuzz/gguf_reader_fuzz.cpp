// Any bytes as a .gguf file, through the GGUF reader and the model-source view above it.
#include "aero/error.h"
#include "aero/format/gguf.h"
#include "aero/format/model_source.h"
#include "memory_file.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string path = aero::fuzz::as_file(data, size, ".gguf");
  try {
    auto source = aero::format::ModelSource::open(path);
    std::uint64_t sum = 0;
    for (const auto& t : source->tensors())
      if (!t.data.empty()) sum += t.data.front() + t.data.back();
    (void)aero::to_msgpack(source->metadata().gguf->to_json());
    (void)sum;
  } catch (const aero::Error&) {
  }
  return 0;
}
