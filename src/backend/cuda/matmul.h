// The CUDA backend's matrix products on weights in their stored block format: the one seam
// between the backend (buffers, uploads, the other operations) and the product kernels
// (matmul.cpp on the host, kernels in .cu files). Weights cross to the GPU as they lie in the
// file; nothing is dequantized as a whole.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>

#include <cuda_runtime.h>

#include "aero/quant/types.h"

namespace aero::backend::cuda {

// A weight matrix in GPU memory, laid out exactly as quant::Matrix describes it on the host:
// `rows` rows of `row_bytes`, each a run of `type` blocks covering `cols` columns.
struct DeviceMatrix {
  quant::GgmlType type = quant::GgmlType::F32;
  const std::uint8_t* data = nullptr;  // device pointer
  std::int64_t rows = 0;
  std::int64_t cols = 0;
  std::size_t row_bytes = 0;
};

// True when the product kernels read `type` as stored.
bool gpu_reads(quant::GgmlType type);
// The format a weight of `type` is converted to once, on the host, at upload when the
// kernels don't read it (e.g. IQ formats → Q8_0 or F16); `type` itself when they do.
quant::GgmlType gpu_upload_type(quant::GgmlType type);

// Runs products on one stream. Owns what the products need beyond their inputs (a cuBLAS
// handle, scratch for quantized activations and dequantized tiles), allocated once and grown
// only when a larger call comes; nothing is allocated per call in steady state, so a decode
// step can be captured as a CUDA graph.
class Matmul {
 public:
  explicit Matmul(cudaStream_t stream);
  ~Matmul();
  Matmul(const Matmul&) = delete;
  Matmul& operator=(const Matmul&) = delete;

  // y_i[t] = W_i · x[t] for n tokens and each matrix of a group sharing the input (q, k, v;
  // gate, up). x: device, n × cols f32, row-major; ys[i]: device, n × ws[i]->rows f32.
  // Asynchronous on the stream given at construction. Throws aero::Error for a format the
  // kernels don't read or shapes that disagree.
  void run(std::span<const DeviceMatrix* const> ws, const float* x, std::int64_t n, std::span<float* const> ys);

  // Reserves scratch for products of up to `max_tokens` tokens with matrices of up to
  // `max_cols` columns and `max_rows` rows, so that later calls never allocate (called once
  // when a session sizes its buffers; run() grows the scratch itself if a call exceeds it).
  void reserve(std::int64_t max_tokens, std::int64_t max_cols, std::int64_t max_rows);

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace aero::backend::cuda
