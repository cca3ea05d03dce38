// Scalar decoders of every block format to f32, bit-exact with ggml's reference dequantizers
// (and gguf-py's): the same float operations in the same order, compiled without contraction
// into fused multiply-adds. One decoder per format; the type-traits table points at them.
#pragma once

#include <cstdint>

namespace aero::quant::decode {

// Each decodes `n` elements (a whole number of blocks) from `blocks` into `out`.
using Fn = void (*)(const std::uint8_t* blocks, float* out, std::int64_t n);

void f32(const std::uint8_t*, float*, std::int64_t);
void f16(const std::uint8_t*, float*, std::int64_t);
void bf16(const std::uint8_t*, float*, std::int64_t);
void q4_0(const std::uint8_t*, float*, std::int64_t);
void q4_1(const std::uint8_t*, float*, std::int64_t);
void q5_0(const std::uint8_t*, float*, std::int64_t);
void q5_1(const std::uint8_t*, float*, std::int64_t);
void q8_0(const std::uint8_t*, float*, std::int64_t);
void q8_1(const std::uint8_t*, float*, std::int64_t);
void q2_k(const std::uint8_t*, float*, std::int64_t);
void q3_k(const std::uint8_t*, float*, std::int64_t);
void q4_k(const std::uint8_t*, float*, std::int64_t);
void q5_k(const std::uint8_t*, float*, std::int64_t);
void q6_k(const std::uint8_t*, float*, std::int64_t);
void q8_k(const std::uint8_t*, float*, std::int64_t);
void iq4_nl(const std::uint8_t*, float*, std::int64_t);
void iq4_xs(const std::uint8_t*, float*, std::int64_t);
void tq1_0(const std::uint8_t*, float*, std::int64_t);
void tq2_0(const std::uint8_t*, float*, std::int64_t);
void mxfp4(const std::uint8_t*, float*, std::int64_t);
// Code-book formats (decode_iq.cpp).
void iq2_xxs(const std::uint8_t*, float*, std::int64_t);
void iq2_xs(const std::uint8_t*, float*, std::int64_t);
void iq2_s(const std::uint8_t*, float*, std::int64_t);
void iq3_xxs(const std::uint8_t*, float*, std::int64_t);
void iq3_s(const std::uint8_t*, float*, std::int64_t);
void iq1_s(const std::uint8_t*, float*, std::int64_t);
void iq1_m(const std::uint8_t*, float*, std::int64_t);

// The 4-bit non-linear code book of IQ4_NL / IQ4_XS, and MXFP4's E2M1 values doubled.
inline constexpr std::int8_t kIq4nlValues[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                                                 1,    13,   25,  38,  53,  69,  89,  113};
inline constexpr std::int8_t kMxfp4Values[16] = {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12};

}  // namespace aero::quant::decode
