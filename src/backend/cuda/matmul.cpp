// The CUDA matrix products' host side: shape checks, scratch, and the choice between the decode
// kernels (matmul_gemv*.cu: weights read as stored, once per launch of up to 8 tokens) and the
// prefill path (weights decoded to f16 tiles by matmul_dequant.cu, then cuBLAS).
#include "backend/cuda/matmul.h"

#include <cublas_v2.h>

#include "backend/cuda/cublas_loader.h"

#include <algorithm>
#include <climits>
#include <cstdlib>
#include <optional>
#include <string>

#include "aero/error.h"
#include "backend/cuda/matmul_kernels.h"

namespace aero::backend::cuda {
namespace {

using quant::GgmlType;
namespace kn = kernels;

// Where decode ends and prefill begins, per matrix of a group. Quantized weights take the decode
// kernels up to kGemvMaxTokensQuantized tokens (one launch, reading the weights once); past it
// they are decoded to f16 (2 bytes a weight written and read again) and multiplied by cuBLAS on
// tensor cores. Measured on an H200 for a 4096 x 14336 matrix (bench/cuda_matmul_bench, µs per
// call, decode kernels / dequantize + cuBLAS): Q4_0 81 / 170 at 8 tokens and 162 / 173 at 16;
// Q4_K 79 / 163 and 156 / 166; Q8_0 93 / 168 and 191 / 170; Q6_K 124 / 167 at 4 but 233 / 167
// at 8. One launch (8 tokens) is where every format is still at least even.
// Float weights (F16, BF16, F32) go to cuBLAS at every token count, activations rounded to the
// weights' type (f32 for F32): it reads F16 at 3.0-3.6 TB/s from one token on (33 µs for that
// matrix against 76 µs for the decode kernels, whose f32 products are kept for
// AERO_CUDA_GEMV_MAX_TOKENS). AERO_CUDA_GEMV_MAX_TOKENS=N sets both limits to N (for tests and
// measurements).
constexpr std::int64_t kGemvMaxTokensQuantized = 8;
constexpr std::int64_t kGemvMaxTokensFloat = 0;
// Rows of a quantized matrix decoded to f16 at a time for the prefill GEMM: 32 MiB (which the
// H100/H200's 50-60 MB L2 keeps between being written and read) but never fewer than 4096 rows,
// so that the GEMM has 128-row tiles for every multiprocessor (1170-row tiles of a 4096 x 14336
// matrix left two thirds of an H200 idle: 400 µs at 512 tokens against 177 µs for 14336 x 4096).
constexpr std::size_t kDequantTileBytes = std::size_t{32} << 20;
constexpr std::int64_t kDequantTileMinRows = 4096;
// cuBLAS's workspace, given to it so that a captured graph needs no allocation (NVIDIA
// recommends 32 MiB on Hopper).
constexpr std::size_t kCublasWorkspaceBytes = std::size_t{32} << 20;

std::optional<kn::Format> format_of(GgmlType type) {
  switch (type) {
    case GgmlType::F32: return kn::Format::F32;
    case GgmlType::F16: return kn::Format::F16;
    case GgmlType::BF16: return kn::Format::BF16;
    case GgmlType::Q4_0: return kn::Format::Q4_0;
    case GgmlType::Q4_1: return kn::Format::Q4_1;
    case GgmlType::Q5_0: return kn::Format::Q5_0;
    case GgmlType::Q5_1: return kn::Format::Q5_1;
    case GgmlType::Q8_0: return kn::Format::Q8_0;
    case GgmlType::Q2_K: return kn::Format::Q2_K;
    case GgmlType::Q3_K: return kn::Format::Q3_K;
    case GgmlType::Q4_K: return kn::Format::Q4_K;
    case GgmlType::Q5_K: return kn::Format::Q5_K;
    case GgmlType::Q6_K: return kn::Format::Q6_K;
    default: return std::nullopt;
  }
}

std::string type_name(GgmlType type) {
  auto traits = quant::type_traits(static_cast<std::uint32_t>(type));
  return traits ? std::string(traits->name) : "type " + std::to_string(static_cast<std::uint32_t>(type));
}

void check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) fail("CUDA matmul: {}: {}", what, cudaGetErrorString(e));
}
void check(cublasStatus_t s, const char* what) {
  if (s != CUBLAS_STATUS_SUCCESS) fail("CUDA matmul: {}: {}", what, cublas().status_string(s));
}

// Device memory that only grows. Growing frees the old buffer (cudaFree waits for the device, so
// no queued kernel still reads it) and fails inside a stream capture: reserve() first.
struct DeviceBuffer {
  void* ptr = nullptr;
  std::size_t bytes = 0;
  DeviceBuffer() = default;
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  ~DeviceBuffer() {
    if (ptr) cudaFree(ptr);
  }
  // True when it was (re)allocated.
  bool ensure(std::size_t need, const char* what) {
    if (need <= bytes) return false;
    if (ptr) {
      check(cudaFree(ptr), what);
      ptr = nullptr;
      bytes = 0;
    }
    check(cudaMalloc(&ptr, need), what);
    bytes = need;
    return true;
  }
  template <class T>
  T* as() const {
    return static_cast<T*>(ptr);
  }
};

std::int64_t env_gemv_max_tokens() {
  const char* v = std::getenv("AERO_CUDA_GEMV_MAX_TOKENS");
  if (!v || !*v) return -1;
  char* end = nullptr;
  const long long n = std::strtoll(v, &end, 10);
  if (*end != '\0' || n < 0) fail("AERO_CUDA_GEMV_MAX_TOKENS must be a count of tokens, not '{}'", v);
  return n;
}

}  // namespace

struct Matmul::State {
  cudaStream_t stream = nullptr;
  cublasHandle_t blas = nullptr;
  kn::DeviceLimits limits;
  std::int64_t gemv_max_quantized = kGemvMaxTokensQuantized;
  std::int64_t gemv_max_float = kGemvMaxTokensFloat;
  DeviceBuffer xq, xds;                  // decode: q8_1 activations
  DeviceBuffer partials, counters;       // decode: split tiles' partial sums
  DeviceBuffer x16, xbf;                 // prefill: activations as f16 / bf16
  DeviceBuffer tile;                     // prefill: dequantized f16 rows
  DeviceBuffer workspace;                // cuBLAS
  ~State() {
    if (blas) cublas().destroy(blas);
  }
};

bool gpu_reads(GgmlType type) { return format_of(type).has_value(); }

GgmlType gpu_upload_type(GgmlType type) {
  if (gpu_reads(type)) return type;
  // Every other format aero decodes comes in blocks of 32 or 256 weights: rows are whole Q8_0
  // blocks, which keep 8 bits a weight (more than any of them has). Types aero cannot decode
  // have nothing to convert to and are returned as they are (gpu_reads says no).
  auto traits = quant::type_traits(static_cast<std::uint32_t>(type));
  if (!traits || !traits->decode) return type;
  return traits->block_elements % 32 == 0 ? GgmlType::Q8_0 : GgmlType::F32;
}

Matmul::Matmul(cudaStream_t stream) : state_(std::make_unique<State>()) {
  State& s = *state_;
  s.stream = stream;
  int device = 0, value = 0;
  check(cudaGetDevice(&device), "no device");
  check(cudaDeviceGetAttribute(&value, cudaDevAttrMultiProcessorCount, device), "device attributes");
  s.limits.sms = value;
  check(cudaDeviceGetAttribute(&value, cudaDevAttrMaxSharedMemoryPerMultiprocessor, device), "device attributes");
  s.limits.smem_per_sm = static_cast<std::size_t>(value);
  check(cudaDeviceGetAttribute(&value, cudaDevAttrMaxSharedMemoryPerBlockOptin, device), "device attributes");
  s.limits.smem_per_block_optin = static_cast<std::size_t>(value);
  check(cudaDeviceGetAttribute(&value, cudaDevAttrReservedSharedMemoryPerBlock, device), "device attributes");
  s.limits.smem_reserved_per_block = static_cast<std::size_t>(value);
  if (const std::int64_t n = env_gemv_max_tokens(); n >= 0) s.gemv_max_quantized = s.gemv_max_float = n;

  check(cublas().create(&s.blas), "cublasCreate");
  check(cublas().set_stream(s.blas, stream), "cublasSetStream");
  s.workspace.ensure(kCublasWorkspaceBytes, "cuBLAS workspace");
  check(cublas().set_workspace(s.blas, s.workspace.ptr, s.workspace.bytes), "cublasSetWorkspace");

  // Split tiles exist only when a launch has fewer than 2 tiles per multiprocessor, and then
  // tiles × splits < 4 × multiprocessors (see plan_gemv): a fixed, small buffer.
  const auto max_split_tiles = static_cast<std::size_t>(4 * s.limits.sms + 16);
  s.partials.ensure(max_split_tiles * kn::kGemvTokens * 32 * sizeof(float), "split partials");
  s.counters.ensure(max_split_tiles * sizeof(unsigned), "split counters");
  check(cudaMemsetAsync(s.counters.ptr, 0, s.counters.bytes, stream), "zero split counters");
}

Matmul::~Matmul() = default;

void Matmul::reserve(std::int64_t max_tokens, std::int64_t max_cols, std::int64_t max_rows) {
  State& s = *state_;
  if (max_tokens < 1 || max_cols < 1 || max_rows < 1)
    fail("matmul: cannot reserve for {} tokens of {} x {} matrices", max_tokens, max_rows, max_cols);
  const auto cols = static_cast<std::size_t>(max_cols);
  const auto decode_tokens = static_cast<std::size_t>(std::min(max_tokens, std::max(s.gemv_max_quantized, s.gemv_max_float)));
  s.xq.ensure(decode_tokens * cols, "q8_1 activations");
  s.xds.ensure(decode_tokens * (cols / 32 + 1) * sizeof(float2), "q8_1 scales");
  if (max_tokens > std::min(s.gemv_max_quantized, s.gemv_max_float)) {
    const auto tokens = static_cast<std::size_t>(max_tokens);
    s.x16.ensure(tokens * cols * 2, "f16 activations");
    s.xbf.ensure(tokens * cols * 2, "bf16 activations");
    const std::int64_t tile_rows = std::min(max_rows, std::max(kDequantTileMinRows, static_cast<std::int64_t>(kDequantTileBytes / (cols * 2))));
    s.tile.ensure(static_cast<std::size_t>(tile_rows) * cols * 2, "f16 weight tile");
  }
}

namespace {

struct Checked {
  kn::Format format;
  kn::Geometry geometry;
};

void gemm(cublasHandle_t blas, std::int64_t m, std::int64_t n, std::int64_t k, const void* a, cudaDataType a_type,
          const void* b, cudaDataType b_type, float* c, std::int64_t ldc) {
  const float alpha = 1.0f, beta = 0.0f;
  // Row-major W (m × k) is column-major k × m: C (m × n, column-major, ldc) = Wᵀ-op · X.
  check(cublas().gemm_ex(blas, CUBLAS_OP_T, CUBLAS_OP_N, static_cast<int>(m), static_cast<int>(n), static_cast<int>(k),
                     &alpha, a, a_type, static_cast<int>(k), b, b_type, static_cast<int>(k), &beta, c, CUDA_R_32F,
                     static_cast<int>(ldc), CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
        "cublasGemmEx");
}

}  // namespace

void Matmul::run(std::span<const DeviceMatrix* const> ws, const float* x, std::int64_t n, std::span<float* const> ys) {
  State& s = *state_;
  if (ws.empty() || ws.size() != ys.size()) fail("matmul: {} matrices, {} outputs", ws.size(), ys.size());
  if (n < 1) fail("matmul: {} tokens", n);
  if (!x) fail("matmul: no input");
  if (!ws[0]) fail("matmul: no matrix");
  const std::int64_t cols = ws[0]->cols;
  if (cols < 1) fail("matmul: a matrix of {} columns", cols);
  constexpr std::size_t kMaxGroup = 16;
  if (ws.size() > kMaxGroup) fail("matmul: {} matrices in one group (at most {})", ws.size(), kMaxGroup);
  Checked checked[kMaxGroup];
  bool gemv[kMaxGroup] = {};  // this matrix takes the decode kernels
  bool any_gemv = false, any_gemm = false, gemv_integer = false;
  for (std::size_t i = 0; i < ws.size(); ++i) {
    const DeviceMatrix* w = ws[i];
    if (!w) fail("matmul: no matrix");
    const auto format = format_of(w->type);
    if (!format)
      fail("matmul: the CUDA kernels do not read {} (upload it as {})", type_name(w->type), type_name(gpu_upload_type(w->type)));
    if (w->cols != cols) fail("matmul: matrices of one input differ in width ({} and {})", cols, w->cols);
    if (w->rows < 1) fail("matmul: a matrix of {} rows", w->rows);
    const kn::Geometry g = kn::geometry(*format);
    if (cols % g.block_elements != 0)
      fail("matmul: {} rows of {} columns are not whole blocks of {}", type_name(w->type), cols, g.block_elements);
    const auto expected = static_cast<std::size_t>(cols / g.block_elements * g.block_bytes);
    if (w->row_bytes != expected)
      fail("matmul: {} rows of {} columns are {} bytes, not {}", type_name(w->type), cols, expected, w->row_bytes);
    if (w->row_bytes > (std::size_t{1} << 26)) fail("matmul: rows of {} bytes are too long", w->row_bytes);
    if (!w->data || reinterpret_cast<std::uintptr_t>(w->data) % 16 != 0)
      fail("matmul: weights must be in device memory aligned to 16 bytes");
    if (!ys[i]) fail("matmul: no output");
    checked[i] = {*format, g};
    gemv[i] = n <= (g.integer ? s.gemv_max_quantized : s.gemv_max_float);
    (gemv[i] ? any_gemv : any_gemm) = true;
    gemv_integer = gemv_integer || (gemv[i] && g.integer);
  }
  const auto count = ws.size();
  const auto ucols = static_cast<std::size_t>(cols);

  if (any_gemv) {
    // Decode: activations quantized once for every integer-format matrix of the group.
    if (gemv_integer) {
      const auto tokens = static_cast<std::size_t>(n);
      s.xq.ensure(tokens * ucols, "q8_1 activations");
      s.xds.ensure(tokens * (ucols / 32) * sizeof(float2), "q8_1 scales");
      check(kn::quantize_q8_1(x, n, cols, s.xq.as<std::int8_t>(), s.xds.as<float2>(), s.stream), "quantize activations");
    }
    const bool x_aligned = reinterpret_cast<std::uintptr_t>(x) % 16 == 0;
    // One launch per format (matrices of one format share it, up to kGemvGroup) and 8 tokens.
    bool done[kMaxGroup] = {};
    for (std::size_t i = 0; i < count; ++i) done[i] = !gemv[i];
    for (std::size_t first = 0; first < count; ++first) {
      if (done[first]) continue;
      const kn::Format format = checked[first].format;
      kn::GemvLaunch launch;
      launch.format = format;
      launch.cols = cols;
      launch.row_bytes = ws[first]->row_bytes;
      std::size_t members[kn::kGemvGroup];
      for (std::size_t i = first; i < count && launch.count < kn::kGemvGroup; ++i) {
        if (done[i] || checked[i].format != format) continue;
        done[i] = true;
        members[launch.count] = i;
        kn::GemvMatrix& m = launch.m[launch.count++];
        m.data = ws[i]->data;
        m.rows = ws[i]->rows;
        m.tile_begin = launch.tiles;
        launch.tiles += (m.rows + kn::kTileRows - 1) / kn::kTileRows;
      }
      if (launch.tiles > INT_MAX / 16) fail("matmul: {} rows are too many for one launch", launch.tiles * kn::kTileRows);
      const kn::GemvPlan plan = kn::plan_gemv(format, launch.tiles, cols, s.limits);
      launch.warps = plan.warps;
      launch.splits = plan.splits;
      launch.partials = s.partials.as<float>();
      launch.counters = s.counters.as<unsigned>();
      launch.aligned = launch.row_bytes % 16 == 0 && (checked[first].geometry.integer || x_aligned);
      for (std::int64_t t0 = 0; t0 < n; t0 += kn::kGemvTokens) {
        launch.n = static_cast<int>(std::min<std::int64_t>(kn::kGemvTokens, n - t0));
        launch.x = x + t0 * cols;
        if (gemv_integer) {
          launch.xq = s.xq.as<std::int8_t>() + t0 * cols;
          launch.xds = s.xds.as<float2>() + t0 * (cols / 32);
        }
        for (int j = 0; j < launch.count; ++j) launch.m[j].y = ys[members[j]] + t0 * ws[members[j]]->rows;
        check(kn::gemv(launch, s.stream), "decode kernel");
      }
    }
  }
  if (!any_gemm) return;

  // Prefill: cuBLAS on f16 (quantized weights decoded tile by tile), bf16 or f32.
  if (cols > INT_MAX || n > INT_MAX) fail("matmul: {} tokens of {} columns are too many for cuBLAS", n, cols);
  bool need_f16 = false, need_bf16 = false;
  for (std::size_t i = 0; i < count; ++i) {
    if (gemv[i]) continue;
    if (checked[i].format == kn::Format::BF16) need_bf16 = true;
    else if (checked[i].format != kn::Format::F32) need_f16 = true;
    if (ws[i]->rows > INT_MAX) fail("matmul: {} rows are too many for cuBLAS", ws[i]->rows);
  }
  const auto elements = static_cast<std::size_t>(n) * ucols;
  if (need_f16) {
    s.x16.ensure(elements * 2, "f16 activations");
    check(kn::convert_activations(x, static_cast<std::int64_t>(elements), s.x16.ptr, false, s.stream), "activations to f16");
  }
  if (need_bf16) {
    s.xbf.ensure(elements * 2, "bf16 activations");
    check(kn::convert_activations(x, static_cast<std::int64_t>(elements), s.xbf.ptr, true, s.stream), "activations to bf16");
  }
  for (std::size_t i = 0; i < count; ++i) {
    if (gemv[i]) continue;
    const DeviceMatrix& w = *ws[i];
    switch (checked[i].format) {
      case kn::Format::F32: gemm(s.blas, w.rows, n, cols, w.data, CUDA_R_32F, x, CUDA_R_32F, ys[i], w.rows); break;
      case kn::Format::F16: gemm(s.blas, w.rows, n, cols, w.data, CUDA_R_16F, s.x16.ptr, CUDA_R_16F, ys[i], w.rows); break;
      case kn::Format::BF16: gemm(s.blas, w.rows, n, cols, w.data, CUDA_R_16BF, s.xbf.ptr, CUDA_R_16BF, ys[i], w.rows); break;
      default: {
        const std::int64_t budget_rows = std::max(kDequantTileMinRows, static_cast<std::int64_t>(kDequantTileBytes / (ucols * 2)));
        const std::int64_t tile_rows = std::min(w.rows, budget_rows);
        s.tile.ensure(static_cast<std::size_t>(tile_rows) * ucols * 2, "f16 weight tile");
        for (std::int64_t r0 = 0; r0 < w.rows; r0 += tile_rows) {
          const std::int64_t rows = std::min(tile_rows, w.rows - r0);
          check(kn::dequantize_f16(checked[i].format, w.data, w.row_bytes, r0, rows, cols, s.tile.ptr, s.stream),
                "dequantize weights");
          gemm(s.blas, rows, n, cols, s.tile.ptr, CUDA_R_16F, s.x16.ptr, CUDA_R_16F, ys[i] + r0, w.rows);
        }
      }
    }
  }
}

}  // namespace aero::backend::cuda
