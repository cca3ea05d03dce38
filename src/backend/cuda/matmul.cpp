// Placeholder until the product kernels land: every call says so.
#include "backend/cuda/matmul.h"

#include "aero/error.h"

namespace aero::backend::cuda {

struct Matmul::State {};

bool gpu_reads(quant::GgmlType) { return false; }
quant::GgmlType gpu_upload_type(quant::GgmlType type) { return type; }

Matmul::Matmul(cudaStream_t) : state_(std::make_unique<State>()) {}
Matmul::~Matmul() = default;

void Matmul::run(std::span<const DeviceMatrix* const>, const float*, std::int64_t, std::span<float* const>) {
  fail("the CUDA matrix products are not built yet");
}

void Matmul::reserve(std::int64_t, std::int64_t, std::int64_t) {}

}  // namespace aero::backend::cuda
