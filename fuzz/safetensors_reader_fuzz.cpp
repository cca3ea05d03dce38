#include "aero/error.h"
#include "aero/format/safetensors.h"
#include "memory_file.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string path = aero::fuzz::as_file(data, size, ".safetensors");
  try {
    auto st = aero::format::SafetensorsModel::open(path);
    std::uint64_t sum = 0;
    for (const auto& t : st.tensors()) {
      auto bytes = st.data(t);
      if (!bytes.empty()) sum += bytes.front() + bytes.back();
    }
    (void)sum;
  } catch (const aero::Error&) {
  }
  return 0;
}
