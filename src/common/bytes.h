// Little-endian field access for on-disk structures. Every format aero reads is
// little-endian; these helpers make the intent explicit and avoid unaligned casts.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <type_traits>

namespace aero {

template <class T>
T load_le(const std::uint8_t* p) {
  static_assert(std::is_trivially_copyable_v<T>);
  T value;
  std::memcpy(&value, p, sizeof(T));
  return value;  // x86-64 and aarch64 Linux are little-endian
}

template <class T>
void store_le(std::uint8_t* p, T value) {
  static_assert(std::is_trivially_copyable_v<T>);
  std::memcpy(p, &value, sizeof(T));
}

template <class T>
void append_le(std::string& out, T value) {
  char raw[sizeof(T)];
  std::memcpy(raw, &value, sizeof(T));
  out.append(raw, sizeof(T));
}

// a + b, or false when it overflows.
inline bool checked_add(std::uint64_t a, std::uint64_t b, std::uint64_t& sum) {
  return !__builtin_add_overflow(a, b, &sum);
}
inline bool checked_mul(std::uint64_t a, std::uint64_t b, std::uint64_t& product) {
  return !__builtin_mul_overflow(a, b, &product);
}

// True when [offset, offset+length) lies inside [0, size).
inline bool range_inside(std::uint64_t offset, std::uint64_t length, std::uint64_t size) {
  std::uint64_t end;
  return checked_add(offset, length, end) && end <= size;
}

constexpr std::uint64_t align_up(std::uint64_t x, std::uint64_t alignment) {
  return (x + alignment - 1) / alignment * alignment;
}

// Shows a four-character code readably even when it holds non-printable bytes.
inline std::string printable_fourcc(const std::uint8_t* p) {
  std::string out;
  for (int i = 0; i < 4; ++i) {
    unsigned char c = p[i];
    if (c >= 0x20 && c < 0x7f) {
      out += static_cast<char>(c);
    } else {
      static constexpr char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

}  // namespace aero
