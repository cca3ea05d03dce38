// The CUDA products (backend/cuda/matmul.h) against two host references, for every format the
// kernels read and one converted at upload (IQ4_NL → Q8_0), on shapes with ragged row tiles,
// rows that are not 16-byte multiples, several column slices and split tiles, and 1 to 300 tokens.
//
// 1. A mirror of the GPU's arithmetic, in double: the weights decoded by aero's scalar decoders;
//    for the decode kernels (integer formats) the activations quantized exactly as the GPU does
//    (q8_1: d = max|x| / 127 per 32 columns, q = round(x · (1/d)): same f32 operations, same
//    bits), for the prefill path weights and activations rounded to f16 (bf16 for BF16 weights)
//    as the GPU rounds them before cuBLAS. What is left is f32 rounding: the GPU stays within
//    1e-4 (decode: sums in another order, and the K formats' scale·sum − min·sum split, seen up
//    to 3e-5 on an H200) and 2e-4 (prefill: cuBLAS's f32 accumulation over f16 products, and a
//    weight's f16 rounding that can differ by an ulp where the GPU fuses a multiply-add) of it,
//    relative to each output row's norm over the tokens. Any wrong block, scale or row gives
//    errors of 1e-2 or more.
// 2. The CPU product (backend::cpu::matmul), which quantizes activations its own way (Q8_0 per 32
//    for the legacy formats, Q8_K per 256 for the K formats, bf16 for BF16 weights on AVX512_BF16):
//    the two differ by both sides' activation rounding, under 2e-2 of the output's norm for the
//    integer formats (the CPU's Q8_K alone gives about 5e-3) and 5e-3 for the float ones (the
//    HostMirrorAgreesWithCpuProduct test measures the same bounds on the host, without a GPU).
//
// Without a CUDA device (the developer and CI machines) every test that needs one skips.
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "aero/backend/cpu_gemv.h"
#include "aero/error.h"
#include "aero/quant/matrix.h"
#include "aero/quant/types.h"
#include "backend/cuda/matmul.h"
#include "quant/half.h"

namespace aero::backend::cuda {
namespace {

using quant::GgmlType;

bool have_gpu() {
  int count = 0;
  return cudaGetDeviceCount(&count) == cudaSuccess && count > 0;
}

#define AERO_REQUIRE_GPU() \
  if (!have_gpu()) GTEST_SKIP() << "no CUDA GPU"

void cuda_ok(cudaError_t e) { ASSERT_EQ(e, cudaSuccess) << cudaGetErrorString(e); }

// Tokens up to which the tests' Matmul takes the decode kernels (AERO_CUDA_GEMV_MAX_TOKENS):
// fixed here so that the tests know each call's path; the defaults are measured elsewhere.
constexpr std::int64_t kTestGemvMaxTokens = 16;

template <class T>
struct DeviceArray {
  T* ptr = nullptr;
  std::size_t count = 0;
  explicit DeviceArray(std::size_t n) : count(n) {
    if (cudaMalloc(&ptr, n * sizeof(T) + 16) != cudaSuccess) ptr = nullptr;
  }
  DeviceArray(const DeviceArray&) = delete;
  DeviceArray& operator=(const DeviceArray&) = delete;
  ~DeviceArray() {
    if (ptr) cudaFree(ptr);
  }
  void upload(const std::vector<T>& v) { EXPECT_EQ(cudaMemcpy(ptr, v.data(), v.size() * sizeof(T), cudaMemcpyHostToDevice), cudaSuccess); }
  std::vector<T> download() const {
    std::vector<T> v(count);
    EXPECT_EQ(cudaMemcpy(v.data(), ptr, count * sizeof(T), cudaMemcpyDeviceToHost), cudaSuccess);
    return v;
  }
};

quant::TypeTraits traits_of(GgmlType type) { return *quant::type_traits(static_cast<std::uint32_t>(type)); }
std::size_t row_bytes_of(GgmlType type, std::int64_t cols) { return *quant::row_bytes(traits_of(type), static_cast<std::uint64_t>(cols)); }

// Weights as aero's quantizers make them from normal random rows; f16 / bf16 rounded from them.
std::vector<std::uint8_t> make_weights(GgmlType type, std::int64_t rows, std::int64_t cols, std::mt19937& rng) {
  const std::size_t rb = row_bytes_of(type, cols);
  std::vector<std::uint8_t> w(rb * static_cast<std::size_t>(rows));
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> row(static_cast<std::size_t>(cols));
  for (std::int64_t r = 0; r < rows; ++r) {
    for (auto& v : row) v = normal(rng);
    std::uint8_t* dst = w.data() + static_cast<std::size_t>(r) * rb;
    if (type == GgmlType::F32) {
      std::memcpy(dst, row.data(), rb);
    } else if (type == GgmlType::F16 || type == GgmlType::BF16) {
      for (std::int64_t c = 0; c < cols; ++c) {
        const std::uint16_t h = type == GgmlType::F16 ? quant::fp32_to_fp16(row[c]) : quant::fp32_to_bf16(row[c]);
        std::memcpy(dst + 2 * c, &h, 2);
      }
    } else {
      quant::encode_from_f32(type, row, {dst, rb});
    }
  }
  return w;
}

std::vector<float> decode(GgmlType type, const std::vector<std::uint8_t>& w, std::int64_t rows, std::int64_t cols) {
  std::vector<float> out(static_cast<std::size_t>(rows * cols));
  quant::decode_to_f32(type, w, out);
  return out;
}

bool integer_format(GgmlType t) { return t != GgmlType::F32 && t != GgmlType::F16 && t != GgmlType::BF16; }

// The activations as the GPU rounds them for `type` on the decode (gemv) or prefill path.
std::vector<double> gpu_activations(GgmlType type, bool gemv, const std::vector<float>& x) {
  std::vector<double> out(x.size());
  if (gemv && integer_format(type)) {  // q8_1, bit for bit as quantize_q8_1_kernel
    for (std::size_t b = 0; b < x.size(); b += 32) {
      float amax = 0.0f;
      for (std::size_t i = 0; i < 32; ++i) amax = std::fmax(amax, std::fabs(x[b + i]));
      const float d = amax / 127.0f;
      const float id = d != 0.0f ? 1.0f / d : 0.0f;
      for (std::size_t i = 0; i < 32; ++i) out[b + i] = static_cast<double>(d) * std::round(x[b + i] * id);
    }
  } else if (gemv || type == GgmlType::F32) {
    for (std::size_t i = 0; i < x.size(); ++i) out[i] = x[i];
  } else if (type == GgmlType::BF16) {
    for (std::size_t i = 0; i < x.size(); ++i) out[i] = quant::bf16_to_fp32(quant::fp32_to_bf16(x[i]));
  } else {
    for (std::size_t i = 0; i < x.size(); ++i) out[i] = quant::fp16_to_fp32(quant::fp32_to_fp16(x[i]));
  }
  return out;
}

// y[t][r] in double of the weights and activations as the GPU sees them.
std::vector<double> mirror(GgmlType type, bool gemv, const std::vector<float>& wf, const std::vector<float>& x,
                           std::int64_t n, std::int64_t rows, std::int64_t cols) {
  const std::vector<double> xa = gpu_activations(type, gemv, x);
  std::vector<double> w(wf.begin(), wf.end());
  if (!gemv && integer_format(type))
    for (std::size_t i = 0; i < wf.size(); ++i) w[i] = quant::fp16_to_fp32(quant::fp32_to_fp16(wf[i]));
  std::vector<double> y(static_cast<std::size_t>(n * rows));
  for (std::int64_t t = 0; t < n; ++t)
    for (std::int64_t r = 0; r < rows; ++r) {
      double s = 0;
      const double* wr = w.data() + r * cols;
      const double* xt = xa.data() + t * cols;
      for (std::int64_t c = 0; c < cols; ++c) s += wr[c] * xt[c];
      y[static_cast<std::size_t>(t * rows + r)] = s;
    }
  return y;
}

// The largest over rows of ‖got − want‖ / ‖want‖ taken over the tokens (rows of tiny norm are
// measured against the whole output's mean row norm instead).
double worst_row_error(const std::vector<float>& got, const std::vector<double>& want, std::int64_t n, std::int64_t rows) {
  double total = 0;
  for (double v : want) total += v * v;
  const double floor = std::sqrt(total / static_cast<double>(rows)) * 1e-2;
  double worst = 0;
  for (std::int64_t r = 0; r < rows; ++r) {
    double e = 0, s = 0;
    for (std::int64_t t = 0; t < n; ++t) {
      const std::size_t i = static_cast<std::size_t>(t * rows + r);
      e += (got[i] - want[i]) * (got[i] - want[i]);
      s += want[i] * want[i];
    }
    worst = std::max(worst, std::sqrt(e) / std::max(std::sqrt(s), floor));
  }
  return worst;
}

double relative_error(const std::vector<float>& got, const std::vector<float>& want) {
  double e = 0, s = 0;
  for (std::size_t i = 0; i < got.size(); ++i) {
    e += (static_cast<double>(got[i]) - want[i]) * (static_cast<double>(got[i]) - want[i]);
    s += static_cast<double>(want[i]) * want[i];
  }
  return std::sqrt(e / s);
}

double cpu_tolerance(GgmlType type) { return integer_format(type) ? 2e-2 : 5e-3; }

std::vector<float> cpu_product(GgmlType type, const std::vector<std::uint8_t>& w, const std::vector<float>& x,
                               std::int64_t n, std::int64_t rows, std::int64_t cols) {
  static ThreadPool pool(4);
  const quant::Matrix m{type, w.data(), rows, cols, row_bytes_of(type, cols)};
  std::vector<float> y(static_cast<std::size_t>(n * rows));
  cpu::matmul(m, x, n, y, pool);
  return y;
}

std::vector<float> random_activations(std::int64_t n, std::int64_t cols, std::mt19937& rng) {
  std::vector<float> x(static_cast<std::size_t>(n * cols));
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (auto& v : x) v = normal(rng);
  return x;
}

struct Shape {
  std::int64_t rows, cols;
};

// Per format: rows that leave a ragged last tile; columns whose rows are 16-byte multiples (the
// aligned kernels) and columns whose rows are not (the run-time-placed ones); and a wide matrix
// of few rows, whose tiles are split over several blocks.
std::vector<Shape> shapes_for(GgmlType type) {
  switch (type) {
    case GgmlType::F32: return {{37, 64}, {70, 67}, {45, 4096}};
    case GgmlType::F16: return {{37, 256}, {41, 83}, {45, 4096}};
    case GgmlType::BF16: return {{37, 256}, {29, 1001}, {45, 4096}};
    case GgmlType::Q4_0: case GgmlType::Q5_0: case GgmlType::Q8_0: return {{37, 512}, {70, 96}, {45, 4096}};
    case GgmlType::Q4_1: case GgmlType::Q5_1: return {{37, 512}, {70, 96}, {45, 4096}};
    case GgmlType::Q2_K: return {{37, 1024}, {70, 256}, {45, 4096}};    // 84 · 1 = 84: unaligned
    case GgmlType::Q3_K: return {{37, 2048}, {70, 768}, {45, 4096}};    // 110 · 3 = 330: unaligned
    case GgmlType::Q6_K: return {{37, 2048}, {70, 768}, {45, 4096}};    // 210 · 3 = 630: unaligned
    default: return {{37, 512}, {70, 256}, {45, 4096}};                 // Q4_K, Q5_K: always aligned
  }
}

const GgmlType kGpuTypes[] = {GgmlType::F32,  GgmlType::F16,  GgmlType::BF16, GgmlType::Q4_0, GgmlType::Q4_1,
                              GgmlType::Q5_0, GgmlType::Q5_1, GgmlType::Q8_0, GgmlType::Q2_K, GgmlType::Q3_K,
                              GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K};

class ScopedEnv {
 public:
  ScopedEnv(const char* name, const std::string& value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    setenv(name, value.c_str(), 1);
  }
  ~ScopedEnv() {
    if (old_.empty()) unsetenv(name_);
    else setenv(name_, old_.c_str(), 1);
  }

 private:
  const char* name_;
  std::string old_;
};

TEST(CudaMatmul, FormatsReadAndUploadTypes) {
  for (GgmlType t : kGpuTypes) {
    EXPECT_TRUE(gpu_reads(t)) << traits_of(t).name;
    EXPECT_EQ(gpu_upload_type(t), t);
  }
  for (GgmlType t : {GgmlType::IQ4_NL, GgmlType::IQ4_XS, GgmlType::IQ2_XXS, GgmlType::IQ3_S, GgmlType::IQ1_M,
                     GgmlType::TQ1_0, GgmlType::TQ2_0, GgmlType::MXFP4, GgmlType::Q8_1, GgmlType::Q8_K}) {
    EXPECT_FALSE(gpu_reads(t)) << traits_of(t).name;
    EXPECT_EQ(gpu_upload_type(t), GgmlType::Q8_0) << traits_of(t).name;
  }
  EXPECT_FALSE(gpu_reads(GgmlType::F64));
  EXPECT_FALSE(gpu_reads(gpu_upload_type(GgmlType::I8)));  // nothing to convert it to
}

// The host mirror (reference 1) against the CPU product (reference 2), without a GPU: the
// tolerance the GPU-vs-CPU comparison uses holds between the references themselves.
TEST(CudaMatmul, HostMirrorAgreesWithCpuProduct) {
  std::mt19937 rng(11);
  for (GgmlType type : kGpuTypes) {
    for (bool gemv : {true, false}) {
      const Shape s = shapes_for(type)[0];
      const std::int64_t n = 3;
      SCOPED_TRACE(std::string(traits_of(type).name) + (gemv ? " decode" : " prefill"));
      const auto w = make_weights(type, s.rows, s.cols, rng);
      const auto x = random_activations(n, s.cols, rng);
      const auto ref = mirror(type, gemv, decode(type, w, s.rows, s.cols), x, n, s.rows, s.cols);
      const auto cpu = cpu_product(type, w, x, n, s.rows, s.cols);
      const std::vector<float> ref_f(ref.begin(), ref.end());
      const double e = relative_error(ref_f, cpu);
      EXPECT_LT(e, cpu_tolerance(type));
      std::cout << traits_of(type).name << (gemv ? " decode" : " prefill") << ": mirror vs CPU " << e << "\n";
    }
  }
}

// One product on the GPU into poisoned outputs; every output written and finite.
std::vector<float> gpu_product(Matmul& mm, GgmlType type, const std::vector<std::uint8_t>& w, const std::vector<float>& x,
                               std::int64_t n, std::int64_t rows, std::int64_t cols) {
  DeviceArray<std::uint8_t> dw(w.size());
  DeviceArray<float> dx(x.size()), dy(static_cast<std::size_t>(n * rows));
  dw.upload(w);
  dx.upload(x);
  EXPECT_EQ(cudaMemset(dy.ptr, 0xFF, dy.count * sizeof(float)), cudaSuccess);  // NaN everywhere
  const DeviceMatrix m{type, dw.ptr, rows, cols, row_bytes_of(type, cols)};
  const DeviceMatrix* ws[] = {&m};
  float* ys[] = {dy.ptr};
  mm.run(ws, dx.ptr, n, ys);
  EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  auto y = dy.download();
  std::size_t unwritten = 0;
  for (float v : y) unwritten += !std::isfinite(v);
  EXPECT_EQ(unwritten, 0u) << "outputs left unwritten (or not finite)";
  return y;
}

TEST(CudaMatmul, EveryFormatAgainstBothReferences) {
  AERO_REQUIRE_GPU();
  ScopedEnv env("AERO_CUDA_GEMV_MAX_TOKENS", std::to_string(kTestGemvMaxTokens));
  cudaStream_t stream;
  cuda_ok(cudaStreamCreate(&stream));
  {
    Matmul mm(stream);
    std::mt19937 rng(5);
    for (GgmlType type : kGpuTypes) {
      for (const Shape s : shapes_for(type)) {
        const auto w = make_weights(type, s.rows, s.cols, rng);
        const auto wf = decode(type, w, s.rows, s.cols);
        for (std::int64_t n : {1, 3, 8, 16, 64, 300}) {
          if (s.cols >= 4096 && n > 64) continue;  // keeps the host references quick
          SCOPED_TRACE(std::string(traits_of(type).name) + " " + std::to_string(s.rows) + "x" + std::to_string(s.cols) +
                       ", " + std::to_string(n) + " tokens");
          const bool gemv = n <= kTestGemvMaxTokens;
          const auto x = random_activations(n, s.cols, rng);
          const auto y = gpu_product(mm, type, w, x, n, s.rows, s.cols);
          const double e_mirror = worst_row_error(y, mirror(type, gemv, wf, x, n, s.rows, s.cols), n, s.rows);
          EXPECT_LT(e_mirror, gemv ? 1e-4 : 2e-4);
          const double e_cpu = relative_error(y, cpu_product(type, w, x, n, s.rows, s.cols));
          EXPECT_LT(e_cpu, cpu_tolerance(type));
        }
      }
    }
  }
  cuda_ok(cudaStreamDestroy(stream));
}

// A format the kernels don't read, converted as an uploader would (decode, re-encode as
// gpu_upload_type): the product is the converted weights' (mirror) and near the original's (CPU:
// Q8_0's requantization adds about 3e-3).
TEST(CudaMatmul, ConvertedFormat) {
  AERO_REQUIRE_GPU();
  ScopedEnv env("AERO_CUDA_GEMV_MAX_TOKENS", std::to_string(kTestGemvMaxTokens));
  std::mt19937 rng(6);
  const GgmlType original = GgmlType::IQ4_NL;
  const GgmlType upload = gpu_upload_type(original);
  ASSERT_EQ(upload, GgmlType::Q8_0);
  const std::int64_t rows = 53, cols = 544;
  const auto w = make_weights(original, rows, cols, rng);
  const auto wf = decode(original, w, rows, cols);
  std::vector<std::uint8_t> converted(row_bytes_of(upload, cols) * rows);
  quant::encode_from_f32(upload, wf, converted);
  const auto cf = decode(upload, converted, rows, cols);
  Matmul mm(nullptr);
  for (std::int64_t n : {1, 3, 64}) {
    SCOPED_TRACE(std::to_string(n) + " tokens");
    const bool gemv = n <= kTestGemvMaxTokens;
    const auto x = random_activations(n, cols, rng);
    const auto y = gpu_product(mm, upload, converted, x, n, rows, cols);
    EXPECT_LT(worst_row_error(y, mirror(upload, gemv, cf, x, n, rows, cols), n, rows), gemv ? 1e-4 : 2e-4);
    EXPECT_LT(relative_error(y, cpu_product(original, w, x, n, rows, cols)), 3e-2);
  }
}

// q, k, v (and more) of mixed formats sharing one input in one call: each output is its own
// matrix's product, on both paths and for a token count that takes several decode launches.
TEST(CudaMatmul, GroupOfMixedFormats) {
  AERO_REQUIRE_GPU();
  ScopedEnv env("AERO_CUDA_GEMV_MAX_TOKENS", std::to_string(kTestGemvMaxTokens));
  std::mt19937 rng(7);
  const std::int64_t cols = 1024;
  const GgmlType types[] = {GgmlType::Q4_K, GgmlType::Q4_K, GgmlType::Q6_K, GgmlType::F16, GgmlType::Q8_0,
                            GgmlType::Q4_K, GgmlType::BF16};
  const std::int64_t rows[] = {300, 40, 40, 33, 70, 1, 9};
  std::vector<std::vector<std::uint8_t>> host;
  std::vector<std::vector<float>> decoded;
  std::vector<std::unique_ptr<DeviceArray<std::uint8_t>>> dev;
  std::vector<DeviceMatrix> ms;
  for (std::size_t i = 0; i < std::size(types); ++i) {
    host.push_back(make_weights(types[i], rows[i], cols, rng));
    decoded.push_back(decode(types[i], host.back(), rows[i], cols));
    dev.push_back(std::make_unique<DeviceArray<std::uint8_t>>(host.back().size()));
    dev.back()->upload(host.back());
    ms.push_back({types[i], dev.back()->ptr, rows[i], cols, row_bytes_of(types[i], cols)});
  }
  Matmul mm(nullptr);
  for (std::int64_t n : {1, 5, 13, 40}) {
    SCOPED_TRACE(std::to_string(n) + " tokens");
    const auto x = random_activations(n, cols, rng);
    DeviceArray<float> dx(x.size());
    dx.upload(x);
    std::vector<std::unique_ptr<DeviceArray<float>>> outs;
    std::vector<const DeviceMatrix*> ws;
    std::vector<float*> ys;
    for (std::size_t i = 0; i < ms.size(); ++i) {
      outs.push_back(std::make_unique<DeviceArray<float>>(static_cast<std::size_t>(n * rows[i])));
      cuda_ok(cudaMemset(outs.back()->ptr, 0xFF, outs.back()->count * sizeof(float)));
      ws.push_back(&ms[i]);
      ys.push_back(outs.back()->ptr);
    }
    mm.run(ws, dx.ptr, n, ys);
    cuda_ok(cudaDeviceSynchronize());
    const bool gemv = n <= kTestGemvMaxTokens;
    for (std::size_t i = 0; i < ms.size(); ++i) {
      SCOPED_TRACE("matrix " + std::to_string(i));
      const auto y = outs[i]->download();
      EXPECT_LT(worst_row_error(y, mirror(types[i], gemv, decoded[i], x, n, rows[i], cols), n, rows[i]), gemv ? 1e-4 : 2e-4);
    }
  }
}

// The default thresholds (no AERO_CUDA_GEMV_MAX_TOKENS), across the token counts where the paths
// change, alone and as one group whose matrices take different paths (F16 always cuBLAS, the
// quantized ones the decode kernels up to 8 tokens): every output is near the CPU's.
TEST(CudaMatmul, DefaultPathsAgreeWithCpu) {
  AERO_REQUIRE_GPU();
  ScopedEnv env("AERO_CUDA_GEMV_MAX_TOKENS", "");
  std::mt19937 rng(8);
  Matmul mm(nullptr);
  const std::int64_t cols = 512;
  const GgmlType types[] = {GgmlType::Q4_K, GgmlType::F16, GgmlType::Q8_0, GgmlType::BF16, GgmlType::Q6_K};
  const std::int64_t rows[] = {64, 48, 40, 33, 70};
  std::vector<std::vector<std::uint8_t>> host;
  std::vector<std::unique_ptr<DeviceArray<std::uint8_t>>> dev;
  std::vector<DeviceMatrix> ms;
  for (std::size_t i = 0; i < std::size(types); ++i) {
    host.push_back(make_weights(types[i], rows[i], cols, rng));
    dev.push_back(std::make_unique<DeviceArray<std::uint8_t>>(host.back().size()));
    dev.back()->upload(host.back());
    ms.push_back({types[i], dev.back()->ptr, rows[i], cols, row_bytes_of(types[i], cols)});
  }
  for (std::int64_t n : {1, 7, 8, 9, 31, 32, 33, 100}) {
    const auto x = random_activations(n, cols, rng);
    for (std::size_t i = 0; i < ms.size(); ++i) {
      SCOPED_TRACE(std::string(traits_of(types[i]).name) + " alone, " + std::to_string(n) + " tokens");
      EXPECT_LT(relative_error(gpu_product(mm, types[i], host[i], x, n, rows[i], cols), cpu_product(types[i], host[i], x, n, rows[i], cols)),
                cpu_tolerance(types[i]));
    }
    DeviceArray<float> dx(x.size());
    dx.upload(x);
    std::vector<std::unique_ptr<DeviceArray<float>>> outs;
    std::vector<const DeviceMatrix*> ws;
    std::vector<float*> ys;
    for (std::size_t i = 0; i < ms.size(); ++i) {
      outs.push_back(std::make_unique<DeviceArray<float>>(static_cast<std::size_t>(n * rows[i])));
      cuda_ok(cudaMemset(outs.back()->ptr, 0xFF, outs.back()->count * sizeof(float)));
      ws.push_back(&ms[i]);
      ys.push_back(outs.back()->ptr);
    }
    mm.run(ws, dx.ptr, n, ys);
    cuda_ok(cudaDeviceSynchronize());
    for (std::size_t i = 0; i < ms.size(); ++i) {
      SCOPED_TRACE(std::string(traits_of(types[i]).name) + " in a group, " + std::to_string(n) + " tokens");
      EXPECT_LT(relative_error(outs[i]->download(), cpu_product(types[i], host[i], x, n, rows[i], cols)), cpu_tolerance(types[i]));
    }
  }
}

// A matrix of more rows than one f16 tile holds (32 MiB: 65536 rows of 256 columns) takes the
// prefill path in several tiles, each written to its rows of the output.
TEST(CudaMatmul, PrefillInSeveralTiles) {
  AERO_REQUIRE_GPU();
  ScopedEnv env("AERO_CUDA_GEMV_MAX_TOKENS", std::to_string(kTestGemvMaxTokens));
  std::mt19937 rng(10);
  const GgmlType type = GgmlType::Q4_0;
  const std::int64_t rows = 65536 + 1000, cols = 256, n = 20;
  const auto w = make_weights(type, rows, cols, rng);
  const auto x = random_activations(n, cols, rng);
  Matmul mm(nullptr);
  const auto y = gpu_product(mm, type, w, x, n, rows, cols);
  EXPECT_LT(worst_row_error(y, mirror(type, false, decode(type, w, rows, cols), x, n, rows, cols), n, rows), 2e-4);
}

// The same call twice gives the same bits (split tiles are summed in a fixed order), and a call
// captured in a CUDA graph (after reserve(): no allocation) replays to the same bits too.
TEST(CudaMatmul, DeterministicAndCapturable) {
  AERO_REQUIRE_GPU();
  ScopedEnv env("AERO_CUDA_GEMV_MAX_TOKENS", std::to_string(kTestGemvMaxTokens));
  std::mt19937 rng(9);
  const std::int64_t cols = 4096;
  const GgmlType types[] = {GgmlType::Q4_K, GgmlType::Q6_K, GgmlType::F16};
  const std::int64_t rows[] = {100, 40, 64};
  std::vector<std::unique_ptr<DeviceArray<std::uint8_t>>> dev;
  std::vector<DeviceMatrix> ms;
  for (std::size_t i = 0; i < std::size(types); ++i) {
    const auto w = make_weights(types[i], rows[i], cols, rng);
    dev.push_back(std::make_unique<DeviceArray<std::uint8_t>>(w.size()));
    dev.back()->upload(w);
    ms.push_back({types[i], dev.back()->ptr, rows[i], cols, row_bytes_of(types[i], cols)});
  }
  cudaStream_t stream;
  cuda_ok(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  {
    Matmul mm(stream);
    mm.reserve(64, cols, 100);
    for (std::int64_t n : {1, 3, 64}) {
      SCOPED_TRACE(std::to_string(n) + " tokens");
      const auto x = random_activations(n, cols, rng);
      DeviceArray<float> dx(x.size());
      dx.upload(x);
      std::vector<std::unique_ptr<DeviceArray<float>>> a, b, c;
      std::vector<float*> ya, yb, yc;
      std::vector<const DeviceMatrix*> ws;
      for (std::size_t i = 0; i < ms.size(); ++i) {
        for (auto* v : {&a, &b, &c}) v->push_back(std::make_unique<DeviceArray<float>>(static_cast<std::size_t>(n * rows[i])));
        ya.push_back(a.back()->ptr), yb.push_back(b.back()->ptr), yc.push_back(c.back()->ptr);
        cuda_ok(cudaMemset(yc.back(), 0xFF, c.back()->count * sizeof(float)));
        ws.push_back(&ms[i]);
      }
      mm.run(ws, dx.ptr, n, ya);
      mm.run(ws, dx.ptr, n, yb);
      cudaGraph_t graph;
      cuda_ok(cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal));
      mm.run(ws, dx.ptr, n, yc);
      cuda_ok(cudaStreamEndCapture(stream, &graph));
      cudaGraphExec_t exec;
      cuda_ok(cudaGraphInstantiate(&exec, graph, 0));
      cuda_ok(cudaGraphLaunch(exec, stream));
      cuda_ok(cudaStreamSynchronize(stream));
      cuda_ok(cudaGraphExecDestroy(exec));
      cuda_ok(cudaGraphDestroy(graph));
      for (std::size_t i = 0; i < ms.size(); ++i) {
        const auto va = a[i]->download(), vb = b[i]->download(), vc = c[i]->download();
        EXPECT_EQ(std::memcmp(va.data(), vb.data(), va.size() * 4), 0) << "matrix " << i << ": two runs differ";
        EXPECT_EQ(std::memcmp(va.data(), vc.data(), va.size() * 4), 0) << "matrix " << i << ": the graph differs";
      }
    }
  }
  cuda_ok(cudaStreamDestroy(stream));
}

TEST(CudaMatmul, BadShapesThrow) {
  AERO_REQUIRE_GPU();
  Matmul mm(nullptr);
  const std::int64_t rows = 8, cols = 256;
  DeviceArray<std::uint8_t> dw(row_bytes_of(GgmlType::Q4_K, cols) * rows);
  DeviceArray<float> dx(2 * cols), dy(2 * rows);
  const DeviceMatrix good{GgmlType::Q4_K, dw.ptr, rows, cols, row_bytes_of(GgmlType::Q4_K, cols)};
  float* ys[] = {dy.ptr, dy.ptr};
  auto run_one = [&](const DeviceMatrix& m, std::int64_t n = 1, const float* x = nullptr) {
    const DeviceMatrix* ws[] = {&m};
    mm.run(ws, x ? x : dx.ptr, n, std::span<float* const>(ys, 1));
  };
  EXPECT_NO_THROW(run_one(good));
  EXPECT_THROW(run_one(good, 0), Error);                                          // no tokens
  DeviceMatrix narrow = good;
  narrow.cols = 512;
  narrow.row_bytes = row_bytes_of(GgmlType::Q4_K, 512);
  const DeviceMatrix* mixed[] = {&good, &narrow};
  EXPECT_THROW(mm.run(mixed, dx.ptr, 1, ys), Error);                             // widths differ
  const DeviceMatrix* one[] = {&good};
  EXPECT_THROW(mm.run(one, dx.ptr, 1, ys), Error);                               // 1 matrix, 2 outputs
  EXPECT_THROW(mm.run({}, dx.ptr, 1, {}), Error);                                // nothing
  DeviceMatrix bad = good;
  bad.type = GgmlType::IQ4_NL;
  EXPECT_THROW(run_one(bad), Error);                                             // not read: convert it
  bad = good;
  bad.row_bytes += 2;
  EXPECT_THROW(run_one(bad), Error);                                             // rows not whole blocks
  bad = good;
  bad.cols = 200;
  bad.row_bytes = 200;
  EXPECT_THROW(run_one(bad), Error);                                             // 200 columns of Q4_K
  bad = good;
  bad.data += 2;
  EXPECT_THROW(run_one(bad), Error);                                             // misaligned weights
  EXPECT_THROW(mm.run(one, nullptr, 1, std::span<float* const>(ys, 1)), Error);  // no input
  cuda_ok(cudaDeviceSynchronize());
}

}  // namespace
}  // namespace aero::backend::cuda
