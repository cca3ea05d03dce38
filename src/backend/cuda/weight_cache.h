// Model weights on the GPU: each host matrix, norm vector and bias is uploaded once, on first
// use, and found again by its host address. Matrices keep their stored block format (the
// product kernels read it); a format the kernels don't read is converted once on the host
// to the one matmul.h names (gpu_upload_type), with one note on stderr per format.
//
// The cache is its own class so that a streaming engine can place weights itself: adopt()
// makes a device matrix it owns stand for a host matrix, evict() forgets (and frees) one.
#pragma once

#include <cstdint>
#include <set>
#include <span>
#include <unordered_map>
#include <utility>
#include <vector>

#include <cuda_runtime.h>

#include "aero/quant/matrix.h"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/matmul.h"

namespace aero::backend::cuda {

// `host` in a format the product kernels read: its own (nothing converted), or the one
// gpu_upload_type names, converted on the host with `threads` (one note on stderr per format,
// remembered in `noted`). Throws aero::Error when rows cannot be re-encoded.
struct GpuForm {
  quant::GgmlType type = quant::GgmlType::F32;
  std::size_t row_bytes = 0;
  std::vector<std::uint8_t> converted;  // empty when `host`'s own bytes are the form
  std::size_t bytes(const quant::Matrix& host) const { return static_cast<std::size_t>(host.rows) * row_bytes; }
};
using ConversionNotes = std::set<std::pair<quant::GgmlType, quant::GgmlType>>;
GpuForm gpu_form(const quant::Matrix& host, unsigned threads, ConversionNotes& noted);
// The row bytes of `host` in its GPU form, without converting anything.
std::size_t gpu_row_bytes(const quant::Matrix& host);

class WeightCache {
 public:
  // `threads` convert formats on the host; uploads are queued on `stream`.
  WeightCache(int device, cudaStream_t stream, unsigned threads) : device_(device), stream_(stream), threads_(threads) {}

  // The device copy of `host`, uploaded (and converted, if need be) the first time.
  const DeviceMatrix& matrix(const quant::Matrix& host);
  // The device copy of host f32 vector (a norm's weights, a bias), uploaded the first time.
  const float* vector(std::span<const float> host);

  // From now on `device` (owned by the caller, alive until evicted) stands for `host`.
  void adopt(const quant::Matrix& host, const DeviceMatrix& device);
  // Forgets the entry for the host address `host` (frees the upload the cache made, after the
  // stream's work; an adopted matrix is only forgotten).
  void evict(const void* host);

  // Forgets every upload the cache made (after the stream's work): the host memory they were
  // made from may have been freed (host_weights_released). Adopted matrices stay: their ring
  // evicts them.
  void forget_uploads();

  // GPU bytes the cache has allocated.
  std::uint64_t bytes() const { return bytes_; }

 private:
  struct MatrixEntry {
    quant::Matrix host;
    DeviceMatrix device;
    DeviceBuffer storage;  // empty for an adopted matrix
  };
  struct VectorEntry {
    std::size_t count = 0;
    DeviceBuffer storage;
  };
  static bool same_shape(const quant::Matrix& a, const quant::Matrix& b) {
    return a.type == b.type && a.rows == b.rows && a.cols == b.cols && a.row_bytes == b.row_bytes;
  }
  MatrixEntry upload(const quant::Matrix& host);

  int device_;
  cudaStream_t stream_;
  unsigned threads_;
  std::unordered_map<const void*, MatrixEntry> matrices_;
  std::unordered_map<const void*, VectorEntry> vectors_;
  ConversionNotes noted_;  // conversions already announced
  std::uint64_t bytes_ = 0;
};

}  // namespace aero::backend::cuda
