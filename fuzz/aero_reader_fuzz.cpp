// Any bytes as a .aero file: open (header, TOC, metadata, tensor index), touch every tensor,
// and validate fully. Errors are expected; crashes, leaks, hangs and UB are the findings.
#include "aero/error.h"
#include "aero/format/aero_model.h"
#include "aero/format/aero_validate.h"
#include "memory_file.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string path = aero::fuzz::as_file(data, size, ".aero");
  try {
    auto model = aero::format::AeroModel::open(path);
    std::uint64_t sum = 0;
    for (const auto& t : model.tensors()) {
      auto bytes = model.tensor_data(t);
      if (!bytes.empty()) sum += bytes.front() + bytes.back();
    }
    for (const auto* f : model.files())
      for (const auto& c : f->chunks())
        if (c.fourcc != "WTSH") (void)f->payload(c);
    (void)sum;
  } catch (const aero::Error&) {
  }
  (void)aero::format::validate(path, aero::format::ValidationLevel::Full, 1);
  return 0;
}
