// The MessagePack and JSON decoders every metadata chunk passes through, and the small text
// parsers of residency budgets (--ram/--gpu-mem sizes, /proc/meminfo, cgroup memory files).
#include <string_view>

#include "aero/error.h"
#include "aero/json.h"
#include "aero/residency/budgets.h"

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
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    (void)aero::residency::parse_size(text, "--ram");
  } catch (const aero::Error&) {
  }
  (void)aero::residency::meminfo_available(text);
  (void)aero::residency::cgroup_free(text.substr(0, size / 3), text.substr(size / 3, size / 3), text.substr(2 * (size / 3)));
  return 0;
}
