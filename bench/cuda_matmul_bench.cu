// The CUDA products on Llama-3-8B shapes: decode (one token) per format and shape in GB/s of
// weights read and as a share of the device's measured copy bandwidth; several tokens at once
// (where the decode kernels give way to dequantize + cuBLAS); prefill (512 tokens) in TFLOP/s;
// and the matrix products of one whole decode step of the 8B model, as tokens per second.
//
// Every timing replays a CUDA graph of many calls (no launch gaps), each call on the next of
// several copies of the weights, so that together they are far larger than the L2 (60 MB on an
// H200) and every call reads its weights from memory. Weights are random blocks with finite
// scales; the products' speed does not depend on the values.
//
//   build/bin/aero-cuda-matmul-bench            # everything, < 60 s on an H200
//   build/bin/aero-cuda-matmul-bench Q4_K F16   # only these formats
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "aero/quant/types.h"
#include "backend/cuda/matmul.h"

using aero::backend::cuda::DeviceMatrix;
using aero::backend::cuda::Matmul;
using aero::quant::GgmlType;

namespace {

#define CHECK(call)                                                                              \
  do {                                                                                           \
    cudaError_t e_ = (call);                                                                     \
    if (e_ != cudaSuccess) {                                                                     \
      std::fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #call, cudaGetErrorString(e_)); \
      std::exit(1);                                                                              \
    }                                                                                            \
  } while (0)

__device__ std::uint32_t hash(std::uint64_t i, std::uint32_t seed) {
  std::uint64_t x = i * 0x9E3779B97F4A7C15ull + seed;
  x ^= x >> 31;
  x *= 0xBF58476D1CE4E5B9ull;
  x ^= x >> 29;
  return static_cast<std::uint32_t>(x);
}

// Random bytes, then every block's f16 scales set to about 0.002-0.004 (finite, like real ones);
// f16/bf16/f32 weights as random values in ±[0.1, 1].
__global__ void fill_weights(std::uint8_t* p, std::size_t bytes, int type, int block_bytes, std::uint32_t seed) {
  const std::size_t i = (static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x);
  const std::size_t blocks = bytes / block_bytes;
  for (std::size_t b = i; b < blocks; b += static_cast<std::size_t>(gridDim.x) * blockDim.x) {
    std::uint8_t* q = p + b * block_bytes;
    for (int k = 0; k < block_bytes; k += 2) {
      std::uint32_t r = hash(b * block_bytes + k, seed);
      std::uint16_t v = static_cast<std::uint16_t>(r);
      if (type == static_cast<int>(GgmlType::F16)) v = static_cast<std::uint16_t>((r & 0x83ff) | 0x3000);
      if (type == static_cast<int>(GgmlType::BF16) || (type == static_cast<int>(GgmlType::F32) && (k & 2)))
        v = static_cast<std::uint16_t>((r & 0x807f) | 0x3d80);  // bf16 / an f32's upper half: ±[0.06, 0.125)
      q[k] = static_cast<std::uint8_t>(v), q[k + 1] = static_cast<std::uint8_t>(v >> 8);
    }
    int d0 = -1, d1 = -1;
    switch (static_cast<GgmlType>(type)) {
      case GgmlType::Q4_0: case GgmlType::Q5_0: case GgmlType::Q8_0: d0 = 0; break;
      case GgmlType::Q4_1: case GgmlType::Q5_1: case GgmlType::Q4_K: case GgmlType::Q5_K: d0 = 0, d1 = 2; break;
      case GgmlType::Q2_K: d0 = 80, d1 = 82; break;
      case GgmlType::Q3_K: d0 = 108; break;
      case GgmlType::Q6_K: d0 = 208; break;
      default: break;
    }
    const std::uint16_t d = static_cast<std::uint16_t>(0x1800 | (hash(b, seed + 1) & 0x3ff));
    if (d0 >= 0) q[d0] = static_cast<std::uint8_t>(d), q[d0 + 1] = static_cast<std::uint8_t>(d >> 8);
    if (d1 >= 0) q[d1] = static_cast<std::uint8_t>(d), q[d1 + 1] = static_cast<std::uint8_t>(d >> 8);
  }
}

__global__ void copy_kernel(const uint4* __restrict__ a, uint4* __restrict__ b, std::size_t n) {
  for (std::size_t i = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<std::size_t>(gridDim.x) * blockDim.x)
    b[i] = a[i];
}

__global__ void fill_activations(float* x, std::size_t n, std::uint32_t seed) {
  const std::size_t i = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) x[i] = (static_cast<float>(hash(i, seed) & 0xffff) / 65536.0f - 0.5f) * 4.0f;
}

struct Weights {
  GgmlType type;
  std::int64_t rows, cols;
  std::size_t row_bytes;
  std::vector<void*> copies;
  Weights(GgmlType t, std::int64_t r, std::int64_t c, int count, std::uint32_t seed) : type(t), rows(r), cols(c) {
    auto traits = *aero::quant::type_traits(static_cast<std::uint32_t>(t));
    row_bytes = *aero::quant::row_bytes(traits, static_cast<std::uint64_t>(c));
    const int block = traits.block_elements == 1 ? 16 : static_cast<int>(traits.block_bytes);
    for (int i = 0; i < count; ++i) {
      void* p;
      CHECK(cudaMalloc(&p, bytes()));
      fill_weights<<<4096, 256>>>(static_cast<std::uint8_t*>(p), bytes(), static_cast<int>(t), block, seed + 7919u * i);
      CHECK(cudaGetLastError());
      copies.push_back(p);
    }
    CHECK(cudaDeviceSynchronize());  // the fill (default stream) must not overlap the timings
  }
  ~Weights() {
    for (void* p : copies) cudaFree(p);
  }
  std::size_t bytes() const { return static_cast<std::size_t>(rows) * row_bytes; }
  DeviceMatrix matrix(int copy) const {
    return {type, static_cast<const std::uint8_t*>(copies[static_cast<std::size_t>(copy) % copies.size()]), rows, cols, row_bytes};
  }
};

// Copies so that `bytes` × copies is at least 4× the L2 (and at most ~4 GB).
int copies_for(std::size_t bytes, std::size_t l2) {
  const std::size_t want = 4 * l2 + bytes;
  std::size_t c = (want + bytes - 1) / bytes;
  c = std::clamp<std::size_t>(c, 2, 64);
  while (c > 2 && c * bytes > (std::size_t{4} << 30)) --c;
  return static_cast<int>(c);
}

// Mean seconds of one of `calls` (each given its call index), timed as graph replays.
template <class Fn>
double time_calls(cudaStream_t stream, int calls, Fn&& fn) {
  for (int i = 0; i < 2; ++i) fn(i);  // warm-up: lazy setup, scratch growth, kernel attributes
  CHECK(cudaStreamSynchronize(stream));
  cudaGraph_t graph;
  CHECK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal));
  for (int i = 0; i < calls; ++i) fn(i);
  CHECK(cudaStreamEndCapture(stream, &graph));
  cudaGraphExec_t exec;
  CHECK(cudaGraphInstantiate(&exec, graph, 0));
  CHECK(cudaGraphLaunch(exec, stream));  // warm-up
  cudaEvent_t a, b;
  CHECK(cudaEventCreate(&a));
  CHECK(cudaEventCreate(&b));
  const int reps = 3;
  CHECK(cudaEventRecord(a, stream));
  for (int r = 0; r < reps; ++r) CHECK(cudaGraphLaunch(exec, stream));
  CHECK(cudaEventRecord(b, stream));
  CHECK(cudaEventSynchronize(b));
  float ms = 0;
  CHECK(cudaEventElapsedTime(&ms, a, b));
  CHECK(cudaEventDestroy(a));
  CHECK(cudaEventDestroy(b));
  CHECK(cudaGraphExecDestroy(exec));
  CHECK(cudaGraphDestroy(graph));
  return ms * 1e-3 / (reps * calls);
}

// The better of cudaMemcpyAsync and a plain 16-byte copy kernel over 4 GiB, counting bytes read
// plus bytes written; after a second of copying, so that the clocks are up.
double copy_bandwidth(cudaStream_t stream, int sms) {
  const std::size_t bytes = std::size_t{4} << 30;
  void *a, *b;
  CHECK(cudaMalloc(&a, bytes));
  CHECK(cudaMalloc(&b, bytes));
  CHECK(cudaMemsetAsync(a, 1, bytes, stream));
  for (int i = 0; i < 200; ++i) CHECK(cudaMemcpyAsync(b, a, bytes, cudaMemcpyDeviceToDevice, stream));
  const double memcpy_s = time_calls(stream, 10, [&](int) { CHECK(cudaMemcpyAsync(b, a, bytes, cudaMemcpyDeviceToDevice, stream)); });
  const double kernel_s = time_calls(stream, 10, [&](int) {
    copy_kernel<<<sms * 8, 512, 0, stream>>>(static_cast<const uint4*>(a), static_cast<uint4*>(b), bytes / 16);
  });
  CHECK(cudaFree(a));
  CHECK(cudaFree(b));
  std::printf("copy: cudaMemcpyAsync %.0f GB/s, kernel %.0f GB/s\n", 2.0 * bytes / memcpy_s / 1e9, 2.0 * bytes / kernel_s / 1e9);
  return 2.0 * static_cast<double>(bytes) / std::min(memcpy_s, kernel_s);
}

const char* name_of(GgmlType t) { return aero::quant::type_traits(static_cast<std::uint32_t>(t))->name.data(); }

struct Shape {
  std::int64_t rows, cols;
  const char* what;
};

}  // namespace

int main(int argc, char** argv) {
  std::vector<GgmlType> types = {GgmlType::Q4_0, GgmlType::Q4_1, GgmlType::Q5_0, GgmlType::Q5_1, GgmlType::Q8_0,
                                 GgmlType::Q2_K, GgmlType::Q3_K, GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K,
                                 GgmlType::F16,  GgmlType::BF16, GgmlType::F32};
  if (argc > 1) {
    types.clear();
    for (int i = 1; i < argc; ++i) {
      auto t = aero::quant::type_traits_by_name(argv[i]);
      if (!t || !aero::backend::cuda::gpu_reads(t->type)) {
        std::fprintf(stderr, "not a format the kernels read: %s\n", argv[i]);
        return 2;
      }
      types.push_back(t->type);
    }
  }
  cudaDeviceProp prop;
  CHECK(cudaGetDeviceProperties(&prop, 0));
  const auto l2 = static_cast<std::size_t>(prop.l2CacheSize);
  cudaStream_t stream;
  CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  const double copy_bw = copy_bandwidth(stream, prop.multiProcessorCount);
  std::printf("%s: %d SMs, %.0f MB L2; device-to-device copy %.0f GB/s (read + written)\n", prop.name,
              prop.multiProcessorCount, l2 / 1e6, copy_bw / 1e9);

  const std::int64_t max_tokens = 512, max_cols = 14336, max_rows = 128256;
  float* x;
  CHECK(cudaMalloc(&x, sizeof(float) * max_tokens * max_cols));
  fill_activations<<<(max_tokens * max_cols + 255) / 256, 256, 0, stream>>>(x, max_tokens * max_cols, 1);
  float* y;
  CHECK(cudaMalloc(&y, sizeof(float) * max_tokens * max_rows * 2));
  auto matmul = std::make_unique<Matmul>(stream);
  matmul->reserve(max_tokens, max_cols, max_rows);

  const Shape shapes[] = {{4096, 4096, "attn q/o"}, {1024, 4096, "attn k/v"}, {14336, 4096, "ffn gate/up"},
                          {4096, 14336, "ffn down"}, {128256, 4096, "output"}};

  std::printf("\n== decode, 1 token (default paths: decode kernels for quantized weights, cuBLAS for float ones) ==\n");
  std::printf("%-6s %-16s %10s %9s %9s %7s\n", "format", "rows x cols", "MB", "us", "GB/s", "of copy");
  for (GgmlType t : types) {
    for (const Shape& s : shapes) {
      auto probe_traits = *aero::quant::type_traits(static_cast<std::uint32_t>(t));
      const std::size_t bytes = static_cast<std::size_t>(s.rows) * *aero::quant::row_bytes(probe_traits, s.cols);
      Weights w(t, s.rows, s.cols, copies_for(bytes, l2), 17);
      const int calls = std::max<int>(static_cast<int>(w.copies.size()), 24);
      const double sec = time_calls(stream, calls, [&](int i) {
        const DeviceMatrix m = w.matrix(i);
        const DeviceMatrix* ws[] = {&m};
        float* ys[] = {y};
        matmul->run(ws, x, 1, ys);
      });
      const double bw = static_cast<double>(w.bytes()) / sec;
      char shape[32];
      std::snprintf(shape, sizeof shape, "%lld x %lld", static_cast<long long>(s.rows), static_cast<long long>(s.cols));
      std::printf("%-6s %-16s %10.1f %9.2f %9.0f %6.0f%%\n", name_of(t), shape, w.bytes() / 1e6, sec * 1e6, bw / 1e9,
                  100.0 * bw / copy_bw);
    }
  }

  // Several tokens: the decode kernels (one pass over the weights per 8 tokens) against the
  // prefill path (dequantize + cuBLAS), on the ffn down shape; the faster one sets the threshold.
  std::printf("\n== several tokens, 4096 x 14336: decode kernels vs cuBLAS (dequantized to f16 first) (us per call) ==\n");
  std::printf("%-6s %6s %12s %12s\n", "format", "tokens", "decode", "cuBLAS");
  auto decode_mm = [&] {
    setenv("AERO_CUDA_GEMV_MAX_TOKENS", "1000000", 1);
    auto m = std::make_unique<Matmul>(stream);
    m->reserve(max_tokens, max_cols, max_rows);
    return m;
  }();
  auto blas_mm = [&] {
    setenv("AERO_CUDA_GEMV_MAX_TOKENS", "0", 1);
    auto m = std::make_unique<Matmul>(stream);
    m->reserve(max_tokens, max_cols, max_rows);
    return m;
  }();
  unsetenv("AERO_CUDA_GEMV_MAX_TOKENS");
  for (GgmlType t : {GgmlType::Q4_0, GgmlType::Q4_K, GgmlType::Q6_K, GgmlType::Q8_0, GgmlType::F16}) {
    if (std::find(types.begin(), types.end(), t) == types.end()) continue;
    auto traits = *aero::quant::type_traits(static_cast<std::uint32_t>(t));
    const std::size_t bytes = 4096 * *aero::quant::row_bytes(traits, 14336);
    Weights w(t, 4096, 14336, copies_for(bytes, l2), 23);
    for (std::int64_t n : {1, 2, 4, 8, 16, 32, 64}) {
      double sec[2];
      for (int path = 0; path < 2; ++path) {
        Matmul& mm = path == 0 ? *decode_mm : *blas_mm;
        sec[path] = time_calls(stream, std::max<int>(static_cast<int>(w.copies.size()), 8), [&](int i) {
          const DeviceMatrix m = w.matrix(i);
          const DeviceMatrix* ws[] = {&m};
          float* ys[] = {y};
          mm.run(ws, x, n, ys);
        });
      }
      std::printf("%-6s %6lld %12.1f %12.1f\n", name_of(t), static_cast<long long>(n), sec[0] * 1e6, sec[1] * 1e6);
    }
  }
  decode_mm.reset();
  blas_mm.reset();

  std::printf("\n== prefill, 512 tokens ==\n");
  std::printf("%-6s %-16s %9s %9s\n", "format", "rows x cols", "us", "TFLOP/s");
  for (GgmlType t : types) {
    for (const Shape& s : {shapes[0], shapes[2], shapes[3]}) {
      Weights w(t, s.rows, s.cols, 2, 29);
      const double sec = time_calls(stream, 4, [&](int i) {
        const DeviceMatrix m = w.matrix(i);
        const DeviceMatrix* ws[] = {&m};
        float* ys[] = {y};
        matmul->run(ws, x, 512, ys);
      });
      char shape[32];
      std::snprintf(shape, sizeof shape, "%lld x %lld", static_cast<long long>(s.rows), static_cast<long long>(s.cols));
      std::printf("%-6s %-16s %9.1f %9.1f\n", name_of(t), shape, sec * 1e6, 2.0 * s.rows * s.cols * 512 / sec / 1e12);
    }
  }

  // One decode step's products of Llama-3-8B: per layer q/k/v as one group, o, gate/up as one
  // group, down; 32 layers; the output head. "Q4_K_M~" is Q4_K with Q6_K for v, down and the head
  // (llama.cpp's Q4_K_M keeps Q6_K for v and down on about half the layers only).
  std::printf("\n== Llama-3-8B decode step, matrix products only (1 token) ==\n");
  struct Mix {
    const char* name;
    GgmlType main, v_down, head;
    double llama_cpp;  // llama.cpp CUDA tg t/s on an H200, from the issue
  };
  const Mix mixes[] = {{"Q4_0", GgmlType::Q4_0, GgmlType::Q4_0, GgmlType::Q4_0, 335},
                       {"Q8_0", GgmlType::Q8_0, GgmlType::Q8_0, GgmlType::Q8_0, 256},
                       {"F16", GgmlType::F16, GgmlType::F16, GgmlType::F16, 205},
                       {"Q4_K_M~", GgmlType::Q4_K, GgmlType::Q6_K, GgmlType::Q6_K, 274}};
  std::printf("%-8s %10s %10s %10s %12s %14s\n", "weights", "GB", "ms", "GB/s", "tokens/s", "llama.cpp t/s");
  for (const Mix& mix : mixes) {
    if (std::find(types.begin(), types.end(), mix.main) == types.end()) continue;
    const int layers_resident = 3;  // distinct layer copies cycled through (> L2 together)
    std::vector<std::unique_ptr<Weights>> q, k, v, o, gate, up, down;
    for (auto* list : {&q, &o}) list->push_back(std::make_unique<Weights>(mix.main, 4096, 4096, layers_resident, 31));
    k.push_back(std::make_unique<Weights>(mix.main, 1024, 4096, layers_resident, 37));
    v.push_back(std::make_unique<Weights>(mix.v_down, 1024, 4096, layers_resident, 41));
    for (auto* list : {&gate, &up}) list->push_back(std::make_unique<Weights>(mix.main, 14336, 4096, layers_resident, 43));
    down.push_back(std::make_unique<Weights>(mix.v_down, 4096, 14336, layers_resident, 47));
    Weights head(mix.head, 128256, 4096, 1, 53);
    const double layer_bytes = static_cast<double>(q[0]->bytes() + k[0]->bytes() + v[0]->bytes() + o[0]->bytes() +
                                                   gate[0]->bytes() + up[0]->bytes() + down[0]->bytes());
    float* y2 = y + 16384;
    float* y3 = y + 2 * 16384;
    const double layer = time_calls(stream, 3 * layers_resident, [&](int i) {
      const DeviceMatrix mq = q[0]->matrix(i), mk = k[0]->matrix(i), mv = v[0]->matrix(i), mo = o[0]->matrix(i);
      const DeviceMatrix mg = gate[0]->matrix(i), mu = up[0]->matrix(i), md = down[0]->matrix(i);
      const DeviceMatrix* qkv[] = {&mq, &mk, &mv};
      float* yqkv[] = {y, y2, y3};
      matmul->run(qkv, x, 1, yqkv);
      const DeviceMatrix* wo[] = {&mo};
      matmul->run(wo, x, 1, std::span<float* const>(yqkv, 1));
      const DeviceMatrix* gu[] = {&mg, &mu};
      matmul->run(gu, x, 1, std::span<float* const>(yqkv, 2));
      const DeviceMatrix* wd[] = {&md};
      matmul->run(wd, x + 4096, 1, std::span<float* const>(yqkv, 1));
    });
    const double head_s = time_calls(stream, 2, [&](int) {
      const DeviceMatrix m = head.matrix(0);
      const DeviceMatrix* ws[] = {&m};
      float* ys[] = {y};
      matmul->run(ws, x, 1, ys);
    });
    const double step = 32 * layer + head_s;
    const double bytes = 32 * layer_bytes + static_cast<double>(head.bytes());
    std::printf("%-8s %10.2f %10.3f %10.0f %12.0f %14.0f\n", mix.name, bytes / 1e9, step * 1e3, bytes / step / 1e9, 1.0 / step,
                mix.llama_cpp);
  }
  CHECK(cudaFree(x));
  CHECK(cudaFree(y));
  matmul.reset();
  CHECK(cudaStreamDestroy(stream));
  return 0;
}
