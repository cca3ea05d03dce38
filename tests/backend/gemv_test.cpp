// Every SIMD path equals the scalar path (up to float summation order) on random inputs of
// awkward sizes, for each format and each instruction set this machine has; and the scalar
// path equals a plain f32 product of the decoded weights (and quantized activations).
#include <cmath>
#include <random>

#include "aero/backend/cpu_gemv.h"
#include "aero/error.h"
#include "backend/cpu/dot.h"
#include "test_support.h"

namespace aero::backend::cpu {
namespace {

using quant::GgmlType;

struct Case {
  GgmlType type;
  std::int64_t rows, cols;
};

// Realistic blocks: quantize random f32 rows with the reference encoder when there is one,
// otherwise random bytes with sane scales (decoded values stay finite).
std::vector<std::uint8_t> make_weights(GgmlType type, std::int64_t rows, std::int64_t cols, std::mt19937& rng) {
  auto traits = *quant::type_traits(static_cast<std::uint32_t>(type));
  const std::size_t row_bytes = *quant::row_bytes(traits, static_cast<std::uint64_t>(cols));
  std::vector<std::uint8_t> w(row_bytes * static_cast<std::size_t>(rows));
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> row(static_cast<std::size_t>(cols));
  for (std::int64_t r = 0; r < rows; ++r) {
    for (auto& v : row) v = normal(rng);
    auto* dst = w.data() + static_cast<std::size_t>(r) * row_bytes;
    if (type == GgmlType::Q4_K || type == GgmlType::Q6_K) {
      // No quantizer yet: random quants and scales, with finite fp16 super-block scales.
      for (std::size_t i = 0; i < row_bytes; ++i) dst[i] = static_cast<std::uint8_t>(rng());
      for (std::size_t blk = 0; blk < row_bytes / traits.block_bytes; ++blk) {
        std::uint8_t* p = dst + blk * traits.block_bytes;
        const std::uint16_t d = static_cast<std::uint16_t>(0x2000 | (rng() & 0x03ff));  // about 0.01
        if (type == GgmlType::Q4_K) {
          std::memcpy(p, &d, 2);
          std::memcpy(p + 2, &d, 2);
        } else {
          std::memcpy(p + 208, &d, 2);
        }
      }
    } else if (type == GgmlType::TQ2_0 || type == GgmlType::MXFP4) {
      // No quantizer: random codes, scales about 0.01 (TQ2_0's f16 d; MXFP4's E8M0 exponent, 2^-7).
      for (std::size_t i = 0; i < row_bytes; ++i) dst[i] = static_cast<std::uint8_t>(rng());
      for (std::size_t blk = 0; blk < row_bytes / traits.block_bytes; ++blk) {
        std::uint8_t* p = dst + blk * traits.block_bytes;
        const std::uint16_t d = static_cast<std::uint16_t>(0x2000 | (rng() & 0x03ff));
        if (type == GgmlType::TQ2_0) std::memcpy(p + 64, &d, 2);
        else p[0] = static_cast<std::uint8_t>(118 + rng() % 6);
      }
    } else if (traits.encode) {
      quant::encode_from_f32(type, row, {dst, row_bytes});
    } else if (type == GgmlType::F32) {
      std::memcpy(dst, row.data(), row_bytes);
    } else if (type == GgmlType::F16 || type == GgmlType::BF16) {
      for (std::int64_t c = 0; c < cols; ++c) {
        std::uint32_t bits;
        std::memcpy(&bits, &row[static_cast<std::size_t>(c)], 4);
        std::uint16_t h = type == GgmlType::BF16 ? static_cast<std::uint16_t>(bits >> 16)
                                                 : static_cast<std::uint16_t>(0x3000 | (rng() & 0x0fff));
        std::memcpy(dst + 2 * c, &h, 2);
      }
    }
  }
  return w;
}

// f32 → bf16 → f32, to nearest even (finite values).
float round_to_bf16(float v) {
  std::uint32_t bits;
  std::memcpy(&bits, &v, 4);
  bits = (bits + 0x7FFF + ((bits >> 16) & 1)) & 0xFFFF0000u;
  std::memcpy(&v, &bits, 4);
  return v;
}

TEST(Gemv, SimdPathsEqualTheScalarPath) {
  std::mt19937 rng(7);
  std::vector<Isa> isas = {Isa::Scalar};
  if (best_isa() >= Isa::Avx2) isas.push_back(Isa::Avx2);
  if (best_isa() >= Isa::Avx512) isas.push_back(Isa::Avx512);
  std::cout << "instruction sets tested: " << isas.size() << " (best: " << kernel_set_name(best_isa()) << ")\n";
  ThreadPool pool(2);
  for (Case c : {Case{GgmlType::F32, 37, 67}, Case{GgmlType::F16, 41, 83}, Case{GgmlType::BF16, 29, 1001}, Case{GgmlType::BF16, 7, 130}, Case{GgmlType::BF16, 3, 31},
                 Case{GgmlType::Q8_0, 53, 96}, Case{GgmlType::Q4_0, 61, 160}, Case{GgmlType::Q4_1, 7, 64},
                 Case{GgmlType::Q8_0, 3, 4096}, Case{GgmlType::Q4_0, 1, 32}, Case{GgmlType::Q4_K, 23, 512},
                 Case{GgmlType::Q6_K, 19, 768}, Case{GgmlType::Q4_K, 2, 256}, Case{GgmlType::Q6_K, 5, 256},
                 // 512-bit kernels take Q4_0 in fours and Q8_0 in pairs of blocks: every remainder
                 Case{GgmlType::Q4_0, 9, 224}, Case{GgmlType::Q4_0, 6, 192}, Case{GgmlType::Q8_0, 5, 224},
                 // 256-bit Q4_0 kernels take chunks of 8 blocks: two whole chunks and an odd tail
                 Case{GgmlType::Q4_0, 7, 608}, Case{GgmlType::Q4_0, 5, 512},
                 Case{GgmlType::Q5_K, 13, 768}, Case{GgmlType::Q5_K, 3, 256},
                 // the generic block kernels: 256-column chunks with a short last one (legacy
                 // formats), rows in fours and a remainder
                 Case{GgmlType::Q4_1, 11, 352}, Case{GgmlType::Q5_0, 9, 96}, Case{GgmlType::Q5_1, 6, 288},
                 Case{GgmlType::IQ4_NL, 7, 544}, Case{GgmlType::Q2_K, 11, 768}, Case{GgmlType::Q3_K, 9, 512},
                 Case{GgmlType::IQ4_XS, 10, 768}, Case{GgmlType::Q2_K, 1, 256}, Case{GgmlType::TQ2_0, 7, 512},
                 Case{GgmlType::MXFP4, 9, 352}}) {
    auto traits = *quant::type_traits(static_cast<std::uint32_t>(c.type));
    SCOPED_TRACE(std::string(traits.name) + " " + std::to_string(c.rows) + "x" + std::to_string(c.cols));
    auto w = make_weights(c.type, c.rows, c.cols, rng);
    quant::Matrix m{c.type, w.data(), c.rows, c.cols, *quant::row_bytes(traits, static_cast<std::uint64_t>(c.cols))};
    std::vector<float> x(static_cast<std::size_t>(c.cols));
    std::normal_distribution<float> normal(0.0f, 1.0f);
    for (auto& v : x) v = normal(rng);
    std::vector<float> reference(static_cast<std::size_t>(c.rows)), rounded_reference(reference.size());
    gemv(m, x, reference, pool, Isa::Scalar);
    // Kernels that round activations to bf16 (VDPBF16PS) are held to the product of rounded ones.
    if (c.type == GgmlType::BF16) {
      std::vector<float> rounded_x(x);
      for (float& v : rounded_x) v = round_to_bf16(v);
      gemv(m, rounded_x, rounded_reference, pool, Isa::Scalar);
    }
    for (Isa isa : isas) {
      std::vector<float> y(static_cast<std::size_t>(c.rows));
      gemv(m, x, y, pool, isa);
      const bool rounded = c.type == GgmlType::BF16 && rounds_bf16_activations(isa);
      for (std::int64_t r = 0; r < c.rows; ++r) {
        const float ref = (rounded ? rounded_reference : reference)[static_cast<std::size_t>(r)];
        EXPECT_NEAR(y[static_cast<std::size_t>(r)], ref, 1e-4f * (1.0f + std::fabs(ref)) * std::sqrt(static_cast<float>(c.cols)))
            << isa_name(isa) << " row " << r;
      }
    }
  }
}

// The batched product equals the scalar GEMV of each token on its own: with 4 tokens the row
// kernels and their 4 × 4 tiles, with 8 or more the packed panels. Shapes leave ragged rows,
// tokens and columns for both panel sets: AVX-512 takes 32 rows of a block format (42 = 32 + 10
// rows, 70 = 2·32 + 6) and 12 of floats against tiles of 32 tokens (40 = 32 + 8); AVX2 takes two
// panels of 8 rows of a block format against 3 tokens, in 256-column blocks (272 = 256 + 16), and
// 4 rows of floats against 3 tokens over whole rows, in every combination of 1-4 rows and 1-3
// tokens at the ends (43, 41, 45 rows; 11, 10, 14 tokens) and columns past a multiple of 8 (67,
// 83, 45 · 8 + 5). Token counts fall off the micro-kernels' widths, a float column block is cut
// short (144 = 128 + 16), a legacy row ends 32 columns into a 64-column step (224, 96, 288 = 256 + 32).
TEST(Matmul, BatchEqualsScalarGemvPerToken) {
  std::mt19937 rng(13);
  ThreadPool pool(2);
  struct BatchCase {
    GgmlType type;
    std::int64_t cols, rows, n;
  };
  for (auto [type, cols, rows, n] :
       {BatchCase{GgmlType::Q8_0, 512, 42, 9}, {GgmlType::Q4_0, 512, 42, 9}, {GgmlType::F16, 512, 42, 9},
        {GgmlType::F32, 67, 42, 9}, {GgmlType::BF16, 83, 42, 9}, {GgmlType::Q4_K, 512, 42, 9},
        {GgmlType::Q4_1, 512, 42, 9}, {GgmlType::Q4_0, 224, 42, 9}, {GgmlType::Q8_0, 96, 42, 9},
        {GgmlType::Q6_K, 512, 42, 9}, {GgmlType::F32, 144, 70, 13}, {GgmlType::BF16, 256, 70, 25},
        {GgmlType::Q4_0, 288, 70, 13}, {GgmlType::Q8_0, 288, 32, 8}, {GgmlType::Q4_K, 768, 70, 13},
        {GgmlType::Q6_K, 768, 70, 25}, {GgmlType::Q4_0, 512, 42, 4}, {GgmlType::F16, 512, 42, 4},
        {GgmlType::F16, 160, 30, 40}, {GgmlType::F32, 144, 70, 33}, {GgmlType::Q4_1, 288, 42, 9},
        {GgmlType::Q5_0, 288, 42, 9}, {GgmlType::Q5_1, 224, 42, 9}, {GgmlType::Q5_K, 768, 42, 13},
        {GgmlType::Q5_K, 512, 42, 4}, {GgmlType::Q2_K, 512, 42, 9}, {GgmlType::Q3_K, 768, 70, 13},
        {GgmlType::IQ4_NL, 288, 42, 9}, {GgmlType::IQ4_XS, 512, 42, 9}, {GgmlType::Q3_K, 256, 42, 4},
        {GgmlType::TQ2_0, 512, 42, 9}, {GgmlType::MXFP4, 288, 42, 9}, {GgmlType::F16, 272, 800, 17},
        {GgmlType::IQ4_XS, 256, 42, 13}, {GgmlType::Q8_0, 288, 70, 25}, {GgmlType::F16, 200, 43, 11},
        {GgmlType::BF16, 136, 41, 10}, {GgmlType::F32, 365, 45, 14}, {GgmlType::F16, 83, 43, 12},
        {GgmlType::BF16, 45, 37, 40}, {GgmlType::BF16, 136, 41, 4}}) {
    auto traits = *quant::type_traits(static_cast<std::uint32_t>(type));
    SCOPED_TRACE(std::string(traits.name) + " " + std::to_string(rows) + "x" + std::to_string(cols) + ", " +
                 std::to_string(n) + " tokens");
    auto w = make_weights(type, rows, cols, rng);
    const quant::Matrix m{type, w.data(), rows, cols, *quant::row_bytes(traits, cols)};
    std::vector<float> x(static_cast<std::size_t>(n * cols));
    for (auto& v : x) v = std::uniform_real_distribution<float>(-1, 1)(rng);
    std::vector<float> y(static_cast<std::size_t>(n * rows));
    matmul(m, x, n, y, pool);
    // Kernels that round activations to bf16 (VDPBF16PS) are held to the product of rounded ones.
    const bool rounded = type == GgmlType::BF16 && rounds_bf16_activations(best_isa());
    for (std::int64_t t = 0; t < n; ++t) {
      std::vector<float> expected(static_cast<std::size_t>(rows));
      std::vector<float> xt(x.begin() + t * cols, x.begin() + (t + 1) * cols);
      if (rounded)
        for (float& v : xt) v = round_to_bf16(v);
      gemv(m, xt, expected, pool, Isa::Scalar);
      for (std::int64_t r = 0; r < rows; ++r)
        EXPECT_NEAR(y[t * rows + r], expected[r], 1e-4f * (1 + std::fabs(expected[r])) * std::sqrt(float(cols)))
            << "token " << t << " row " << r;
    }
  }
}

// A group product (one input, several matrices: q, k and v of mixed formats) equals each
// matrix's own product, for one token (row kernels), four (tiles) and nine (panels): shared
// prepared activations go only to matrices that read them in the same layout.
TEST(Matmul, GroupEqualsEachMatrixAlone) {
  std::mt19937 rng(17);
  ThreadPool pool(2);
  const std::int64_t cols = 512;
  const GgmlType types[] = {GgmlType::Q4_K, GgmlType::Q4_K, GgmlType::Q6_K, GgmlType::F16, GgmlType::Q8_0,
                            GgmlType::Q4_1, GgmlType::IQ4_NL};
  const std::int64_t rows[] = {70, 36, 36, 42, 33, 40, 8};
  std::vector<std::vector<std::uint8_t>> storage;
  std::vector<quant::Matrix> matrices;
  for (std::size_t i = 0; i < std::size(types); ++i) {
    auto traits = *quant::type_traits(static_cast<std::uint32_t>(types[i]));
    storage.push_back(make_weights(types[i], rows[i], cols, rng));
    matrices.push_back({types[i], storage.back().data(), rows[i], cols, *quant::row_bytes(traits, cols)});
  }
  for (std::int64_t n : {1, 4, 9}) {
    SCOPED_TRACE(std::to_string(n) + " tokens");
    std::vector<float> x(static_cast<std::size_t>(n * cols));
    for (auto& v : x) v = std::uniform_real_distribution<float>(-1, 1)(rng);
    std::vector<std::vector<float>> group_out, alone_out;
    std::vector<const quant::Matrix*> ws;
    std::vector<float*> ys;
    for (const auto& m : matrices) {
      group_out.emplace_back(static_cast<std::size_t>(n * m.rows), -1.0f);
      alone_out.emplace_back(static_cast<std::size_t>(n * m.rows));
      ws.push_back(&m);
      ys.push_back(group_out.back().data());
      matmul(m, x, n, alone_out.back(), pool);
    }
    matmul(ws, x, n, ys, pool);
    for (std::size_t i = 0; i < matrices.size(); ++i)
      for (std::size_t j = 0; j < group_out[i].size(); ++j)
        ASSERT_EQ(group_out[i][j], alone_out[i][j]) << "matrix " << i << " output " << j;
  }
  std::vector<float> x(cols), y(100);
  quant::Matrix narrow = matrices[0];
  narrow.cols = 256;
  const quant::Matrix* mixed[] = {&matrices[0], &narrow};
  float* outs[] = {y.data(), y.data()};
  EXPECT_THROW(matmul(mixed, x, 1, outs, pool), Error);
}

// The integer kernels' int16 sums at their bounds: every code at its largest (all bits set: Q4_K
// 15 with scales and mins 63, Q5_K 31, Q6_K 63, Q4_0 15, Q8_0 -1 and Q4_1 15) against
// activations that quantize to -128 everywhere (all equal: the Q8 encoders map the largest value
// to -128) or to +127 and -128 alternately. A kernel that saturated or wrapped in int16 would
// differ from the scalar path by thousands of units.
TEST(Gemv, SimdPathsEqualTheScalarPathAtTheCodesBounds) {
  std::vector<Isa> isas;
  if (best_isa() >= Isa::Avx2) isas.push_back(Isa::Avx2);
  if (best_isa() >= Isa::Avx512) isas.push_back(Isa::Avx512);
  if (isas.empty()) GTEST_SKIP() << "no AVX2 on this machine";
  ThreadPool pool(2);
  const std::int64_t rows = 5, cols = 512;
  for (GgmlType type : {GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K, GgmlType::Q4_0, GgmlType::Q8_0, GgmlType::Q4_1}) {
    auto traits = *quant::type_traits(static_cast<std::uint32_t>(type));
    const std::size_t row_bytes = *quant::row_bytes(traits, static_cast<std::uint64_t>(cols));
    std::vector<std::uint8_t> w(row_bytes * rows, 0xFF);
    const std::uint16_t d = 0x2000;  // about 0.008, for every f16 scale a format has
    for (std::size_t blk = 0; blk < w.size() / traits.block_bytes; ++blk) {
      std::uint8_t* p = w.data() + blk * traits.block_bytes;
      if (type == GgmlType::Q6_K) {
        std::memset(p + 192, 0x7f, 16);  // int8 scales at their largest
        std::memcpy(p + 208, &d, 2);
      } else {
        std::memcpy(p, &d, 2);
        if (type != GgmlType::Q4_0 && type != GgmlType::Q8_0) std::memcpy(p + 2, &d, 2);  // dmin / m
      }
    }
    quant::Matrix m{type, w.data(), rows, cols, row_bytes};
    for (bool alternate : {false, true}) {
      SCOPED_TRACE(std::string(traits.name) + (alternate ? " +127/-128" : " -128"));
      std::vector<float> x(static_cast<std::size_t>(cols));
      for (std::size_t i = 0; i < x.size(); ++i) x[i] = alternate && i % 2 ? -1.0f : 1.0f;
      std::vector<float> reference(static_cast<std::size_t>(rows));
      gemv(m, x, reference, pool, Isa::Scalar);
      for (Isa isa : isas) {
        std::vector<float> y(static_cast<std::size_t>(rows));
        gemv(m, x, y, pool, isa);
        for (std::int64_t r = 0; r < rows; ++r)
          EXPECT_NEAR(y[static_cast<std::size_t>(r)], reference[static_cast<std::size_t>(r)],
                      1e-5f * std::fabs(reference[static_cast<std::size_t>(r)]) + 1e-3f)
              << isa_name(isa) << " row " << r;
      }
    }
  }
}

TEST(Gemv, ScalarPathIsTheProductOfDecodedWeights) {
  std::mt19937 rng(11);
  ThreadPool pool(1);
  for (GgmlType type : {GgmlType::F16, GgmlType::Q4_0, GgmlType::Q8_0, GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K,
                        GgmlType::Q4_1, GgmlType::Q2_K, GgmlType::IQ4_NL, GgmlType::TQ2_0, GgmlType::MXFP4}) {
    const std::int64_t rows = 5, cols = 512;
    auto traits = *quant::type_traits(static_cast<std::uint32_t>(type));
    auto w = make_weights(type, rows, cols, rng);
    std::vector<float> x(cols);
    for (auto& v : x) v = std::uniform_real_distribution<float>(-1, 1)(rng);
    // Block formats see x quantized as ggml pairs them (the integer kernels' activations, and
    // the decode-then-dot fallback's): build the expected product from the same rounded x.
    std::vector<float> xe = x;
    if (traits.block_elements == 256) {
      std::vector<std::uint8_t> xq(cols / 256 * 292);
      quant::encode_from_f32(GgmlType::Q8_K, x, xq);
      quant::decode_to_f32(GgmlType::Q8_K, xq, xe);
    } else if (type != GgmlType::F16) {
      std::vector<std::uint8_t> xq(cols / 32 * 34);
      quant::encode_from_f32(GgmlType::Q8_0, x, xq);
      quant::decode_to_f32(GgmlType::Q8_0, xq, xe);
    }
    std::vector<float> decoded(cols), y(rows);
    gemv({type, w.data(), rows, cols, *quant::row_bytes(traits, cols)}, x, y, pool, Isa::Scalar);
    for (std::int64_t r = 0; r < rows; ++r) {
      quant::decode_to_f32(type, {w.data() + r * (w.size() / rows), w.size() / rows}, decoded);
      double expected = 0;
      for (std::int64_t i = 0; i < cols; ++i) expected += static_cast<double>(decoded[i]) * xe[i];
      EXPECT_NEAR(y[r], expected, 1e-4 * (1 + std::fabs(expected))) << traits.name;
    }
  }
}

// The vector activation quantizers this machine runs (AVX2, AVX-512), by name.
template <class Fn>
std::vector<std::pair<const char*, Fn*>> vector_quantizers(Fn* avx2, Fn* avx512) {
  std::vector<std::pair<const char*, Fn*>> out;
  if (best_isa() >= Isa::Avx2) out.emplace_back("avx2", avx2);
  if (best_isa() >= Isa::Avx512) out.emplace_back("avx512", avx512);
  return out;
}

// The kernels quantize activations with their own vector code: it must give the reference
// quantizer's bytes exactly, rounding ties (k + 0.5 after scaling) away from zero.
TEST(Gemv, VectorActivationQuantizerEqualsTheReference) {
  if (best_isa() < Isa::Avx2) GTEST_SKIP() << "no AVX2 on this machine";
  std::mt19937 rng(5);
  std::vector<float> x(32 * 64);
  for (auto& v : x) v = std::normal_distribution<float>(0.0f, 3.0f)(rng);
  for (int j = 0; j < 32; ++j) x[32 + j] = static_cast<float>(j % 2 ? -j : j) + (j == 0 ? 127.0f : 0.5f);  // d = 1: ties
  for (int j = 0; j < 32; ++j) x[64 + j] = 0.0f;  // an all-zero block
  x[96] = -1e-30f;                                  // a tiny amax
  std::vector<std::uint8_t> expected(64 * 34), got(64 * 34);
  quant::encode_from_f32(GgmlType::Q8_0, x, expected);
  for (auto [name, quantize] : vector_quantizers(quantize_q8_0_avx2, quantize_q8_0_avx512)) {
    std::fill(got.begin(), got.end(), 0xAA);
    quantize(x.data(), static_cast<std::int64_t>(x.size()), got.data());
    EXPECT_EQ(got, expected) << name;
  }
}

// And Q8_K's: the first element of largest magnitude (with its sign) sets the scale, quants
// round half to even and stop at 127.
TEST(Gemv, VectorQ8KQuantizerEqualsTheReference) {
  if (best_isa() < Isa::Avx2) GTEST_SKIP() << "no AVX2 on this machine";
  std::mt19937 rng(6);
  std::vector<float> x(256 * 8);
  for (auto& v : x) v = std::normal_distribution<float>(0.0f, 2.0f)(rng);
  for (int j = 0; j < 256; ++j) x[256 + j] = 0.0f;  // an all-zero block
  for (int j = 0; j < 256; ++j) x[512 + j] *= 0.1f;  // below 3, then two of magnitude 3, the first
  x[512 + 7] = 3.0f;                                  // positive: iscale = -127 / 3
  x[512 + 9] = -3.0f;
  x[768] = -1.0f;  // max −1, iscale 127: x = ±(k + 0.5) / 127 scale to ties
  for (int j = 1; j < 256; ++j) x[768 + j] = (static_cast<float>(j % 100) + 0.5f) / 127.0f * (j % 2 ? 1.0f : -1.0f);
  std::vector<std::uint8_t> expected(8 * 292), got(8 * 292);
  quant::encode_from_f32(GgmlType::Q8_K, x, expected);
  for (auto [name, quantize] : vector_quantizers(quantize_q8_k_avx2, quantize_q8_k_avx512)) {
    std::fill(got.begin(), got.end(), 0xAA);
    quantize(x.data(), static_cast<std::int64_t>(x.size()), got.data());
    EXPECT_EQ(got, expected) << name;
  }
}

// The vector SiLU gate against the formula in double, over the useful range and past it (e^−g
// overflowing or vanishing), at lengths that end in partial vectors, written in place as the
// engine does.
TEST(Gemv, VectorSiluMulEqualsTheFormula) {
  std::vector<std::pair<const char*, SiluMulFn>> sets;
  if (best_isa() >= Isa::Avx2) sets.emplace_back("avx2", kernels(Isa::Avx2).silu_mul);
  if (best_isa() >= Isa::Avx512) sets.emplace_back("avx512", kernels(Isa::Avx512).silu_mul);
  if (sets.empty()) GTEST_SKIP() << "no AVX2 on this machine";
  std::mt19937 rng(8);
  const float edges[] = {-1000.0f, -100.0f, -89.0f, -87.5f, -20.0f, -1e-3f, -0.0f, 0.0f, 1e-30f, 0.5f, 30.0f, 89.0f, 1e4f};
  for (const std::int64_t n : {1, 7, 8, 13, 1000}) {
    std::vector<float> gate(static_cast<std::size_t>(n)), up(gate.size());
    for (std::size_t i = 0; i < gate.size(); ++i) {
      gate[i] = i < std::size(edges) && n > 100 ? edges[i] : std::normal_distribution<float>(0.0f, 6.0f)(rng);
      up[i] = std::normal_distribution<float>(0.0f, 2.0f)(rng);
    }
    for (auto [name, silu_mul] : sets) {
      ASSERT_NE(silu_mul, nullptr) << name;
      std::vector<float> out = gate;
      silu_mul(out.data(), up.data(), n, out.data());
      for (std::size_t i = 0; i < gate.size(); ++i) {
        const double g = gate[i], expected = g / (1.0 + std::exp(-g)) * up[i];
        EXPECT_NEAR(out[i], expected, 1e-6 * std::fabs(expected) + 1e-30) << name << " gate " << g << " n " << n;
      }
    }
  }
}

TEST(Gemv, RefusesMismatchedShapes) {
  ThreadPool pool(1);
  std::vector<std::uint8_t> w(34);
  std::vector<float> x(31), y(1);
  EXPECT_THROW(gemv({GgmlType::Q8_0, w.data(), 1, 32, 34}, x, y, pool), Error);
}

}  // namespace
}  // namespace aero::backend::cpu
