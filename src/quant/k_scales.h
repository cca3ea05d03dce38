// The 6-bit scale and min j (0..7) of a Q4_K / Q5_K super-block, packed in 12 bytes:
// shared by the decoders and the dot-product kernels.
#pragma once

#include <cstdint>

namespace aero::quant {

inline void k4_scale_min(int j, const std::uint8_t* q, std::uint8_t& d, std::uint8_t& m) {
  if (j < 4) {
    d = q[j] & 63;
    m = q[j + 4] & 63;
  } else {
    d = static_cast<std::uint8_t>((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
    m = static_cast<std::uint8_t>((q[j + 4] >> 4) | ((q[j - 0] >> 6) << 4));
  }
}

}  // namespace aero::quant
