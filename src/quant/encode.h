// Scalar reference quantizers: f32 rows into blocks, byte-identical with llama.cpp's
// quantize_row_*_ref (what llama-quantize uses without an importance matrix).
#pragma once

#include <cstdint>

namespace aero::quant::encode {

using Fn = void (*)(const float* x, std::uint8_t* blocks, std::int64_t n);

void q4_0(const float*, std::uint8_t*, std::int64_t);
void q4_1(const float*, std::uint8_t*, std::int64_t);
void q5_0(const float*, std::uint8_t*, std::int64_t);
void q5_1(const float*, std::uint8_t*, std::int64_t);
void q8_0(const float*, std::uint8_t*, std::int64_t);
void q2_k(const float*, std::uint8_t*, std::int64_t);
void q3_k(const float*, std::uint8_t*, std::int64_t);
void q4_k(const float*, std::uint8_t*, std::int64_t);
void q5_k(const float*, std::uint8_t*, std::int64_t);
void q6_k(const float*, std::uint8_t*, std::int64_t);
void iq4_nl(const float*, std::uint8_t*, std::int64_t);
void iq4_xs(const float*, std::uint8_t*, std::int64_t);
// Q8_K: the activation format of the K-quant dot products (d f32, 256 int8, 16 int16 sums).
void q8_k(const float*, std::uint8_t*, std::int64_t);

}  // namespace aero::quant::encode
