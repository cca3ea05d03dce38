// The MessagePack and JSON decoders every metadata chunk passes through.
#include <string_view>

#include "aero/error.h"
#include "aero/json.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    auto j = aero::parse_msgpack({data, size}, "fuzz", size > 0 && data[0] & 1);
    (void)aero::to_msgpack(j);
    (void)aero::to_pretty_json(j);
  } catch (const aero::Error&) {
  }
  try {
    auto j = aero::parse_json({reinterpret_cast<const char*>(data), size}, "fuzz");
    (void)aero::to_sorted_compact_json(j);
  } catch (const aero::Error&) {
  }
  return 0;
}
