// The 6-bit scales of the K-quant super-blocks, packed in 12 bytes: shared by the decoders
// and the dot-product kernels.
#pragma once

#include <array>
#include <cstdint>
#include <cstring>

namespace aero::quant {

// The 12 scale bytes as three little-endian words, each loaded on its own: one 12-byte copy into
// an array went through the stack (GCC 12), and the kernels' word reloads of it stalled on store
// forwarding (the Q4_K row kernel ran 1.15-1.46 against 1.00 ns per 32 columns on Zen 3).
inline std::array<std::uint32_t, 3> scale_words(const std::uint8_t* q) {
  std::array<std::uint32_t, 3> u;
  for (int i = 0; i < 3; ++i) std::memcpy(&u[i], q + 4 * i, 4);
  return u;
}

inline void k4_scale_min(int j, const std::uint8_t* q, std::uint8_t& d, std::uint8_t& m) {
  if (j < 4) {
    d = q[j] & 63;
    m = q[j + 4] & 63;
  } else {
    d = static_cast<std::uint8_t>((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
    m = static_cast<std::uint8_t>((q[j + 4] >> 4) | ((q[j - 0] >> 6) << 4));
  }
}

// All eight of them at once, one per byte of `scales` and `mins` (j in byte j), from 32-bit
// words as ggml unpacks them.
inline void k4_scales_mins(const std::uint8_t* q, std::uint64_t& scales, std::uint64_t& mins) {
  constexpr std::uint32_t kLow6 = 0x3f3f3f3f, kLow4 = 0x0f0f0f0f, kLow2 = 0x03030303;
  const auto u = scale_words(q);
  const std::uint32_t scales_hi = (u[2] & kLow4) | (((u[0] >> 6) & kLow2) << 4);
  const std::uint32_t mins_hi = ((u[2] >> 4) & kLow4) | (((u[1] >> 6) & kLow2) << 4);
  scales = (u[0] & kLow6) | static_cast<std::uint64_t>(scales_hi) << 32;
  mins = (u[1] & kLow6) | static_cast<std::uint64_t>(mins_hi) << 32;
}

// Q3_K's sixteen 6-bit scales (stored + 32) as four little-endian words of four scale bytes:
// low nibbles in bytes 0..7, high bit pairs in 8..11.
inline std::array<std::uint32_t, 4> k3_scale_words(const std::uint8_t* q) {
  constexpr std::uint32_t kmask1 = 0x03030303, kmask2 = 0x0f0f0f0f;
  const auto u = scale_words(q);
  return {(u[0] & kmask2) | (((u[2] >> 0) & kmask1) << 4), (u[1] & kmask2) | (((u[2] >> 2) & kmask1) << 4),
          ((u[0] >> 4) & kmask2) | (((u[2] >> 4) & kmask1) << 4), ((u[1] >> 4) & kmask2) | (((u[2] >> 6) & kmask1) << 4)};
}

}  // namespace aero::quant
