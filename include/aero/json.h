// Structured metadata (MJSN, MMSG, TIDX, AEROSET, config.json) is held as nlohmann JSON
// values. Ordered objects keep the key order of the source, so re-writing a file keeps
// its metadata byte for byte. MessagePack is decoded with a nesting limit, because a
// recursive decoder fed a few kilobytes of nested arrays would otherwise overflow the stack.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace aero {

using Json = nlohmann::ordered_json;

inline constexpr int kMaxMetadataDepth = 64;

// Throws aero::Error naming `what` on malformed input, excess nesting, or trailing bytes
// unless `zero_padded` (the reference writer pads its IHSH payload with zeros to 256 bytes).
Json parse_msgpack(std::span<const std::uint8_t> bytes, std::string_view what, bool zero_padded = false);
Json parse_json(std::string_view text, std::string_view what);

std::string to_msgpack(const Json& value);
// Compact JSON with object keys sorted (the reference writer's json.dumps(sort_keys=True)).
std::string to_sorted_compact_json(const Json& value);
// Human-readable JSON; invalid UTF-8 in strings is replaced, never thrown on.
std::string to_pretty_json(const Json& value);

}  // namespace aero
