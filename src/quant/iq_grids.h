// Packed code books of the IQ formats (see iq_grids.cpp for their form and provenance).
#pragma once

#include <cstdint>

namespace aero::quant::iq {

extern const std::uint16_t kIq2XxsGrid[256];
extern const std::uint16_t kIq2XsGrid[512];
extern const std::uint16_t kIq2SGrid[1024];
extern const std::uint16_t kIq3XxsGrid[256];
extern const std::uint16_t kIq3SGrid[512];
extern const std::uint16_t kIq1SGrid[2048];  // IQ1_M uses the same points

}  // namespace aero::quant::iq
