// GPT-2's byte-level alphabet: every byte maps to a printable code point so that BPE
// vocabularies can be stored as text ("Ġ" is the space byte 0x20).
#pragma once

#include <array>
#include <cstdint>
#include <string>

namespace aero::tokenizer {

inline void append_utf8(std::string& out, std::uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

// Byte -> code point, as GPT-2's bytes_to_unicode(): printable Latin-1 bytes map to
// themselves, the other 68 to 256, 257, ... in byte order.
inline const std::array<std::uint16_t, 256>& byte_to_code_point() {
  static const std::array<std::uint16_t, 256> table = [] {
    std::array<std::uint16_t, 256> t{};
    std::uint16_t next = 256;
    for (int b = 0; b < 256; ++b) {
      bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
      t[b] = printable ? static_cast<std::uint16_t>(b) : next++;
    }
    return t;
  }();
  return table;
}

// Code point -> byte for the alphabet above; -1 for code points outside it.
inline int code_point_to_byte(std::uint32_t cp) {
  static const std::array<std::int16_t, 324> table = [] {
    std::array<std::int16_t, 324> t;
    t.fill(-1);
    const auto& fwd = byte_to_code_point();
    for (int b = 0; b < 256; ++b) t[fwd[b]] = static_cast<std::int16_t>(b);
    return t;
  }();
  return cp < table.size() ? table[cp] : -1;
}

}  // namespace aero::tokenizer
