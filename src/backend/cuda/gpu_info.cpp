// Which GPUs the CUDA runtime sees. Nothing here throws for a machine without a driver or a
// GPU: `--device auto` and `aero info --devices` must work on any machine.
#include <cuda_runtime.h>

#include "backend/cuda/cuda_backend.h"

namespace aero::backend::cuda {

int device_count(std::string& why) {
  int count = 0;
  const cudaError_t status = cudaGetDeviceCount(&count);
  if (status == cudaSuccess && count > 0) return count;
  (void)cudaGetLastError();  // leave no error behind for the next call to report
  switch (status) {
    case cudaSuccess:
    case cudaErrorNoDevice: why = "no CUDA GPU found"; break;
    case cudaErrorInsufficientDriver:
      why = "no CUDA driver, or one older than this build's CUDA " + std::to_string(CUDART_VERSION / 1000) + " runtime";
      break;
    default: why = std::string("the CUDA runtime cannot start: ") + cudaGetErrorString(status); break;
  }
  return 0;
}

std::vector<GpuInfo> list_gpus(std::string& why) {
  const int count = device_count(why);
  std::vector<GpuInfo> gpus;
  int previous = 0;
  const bool restore = cudaGetDevice(&previous) == cudaSuccess;
  for (int i = 0; i < count; ++i) {
    cudaDeviceProp prop{};
    if (cudaGetDeviceProperties(&prop, i) != cudaSuccess) {
      (void)cudaGetLastError();
      continue;
    }
    GpuInfo g{.index = i, .name = prop.name, .total_bytes = prop.totalGlobalMem, .free_bytes = 0,
              .cc_major = prop.major, .cc_minor = prop.minor};
    std::size_t free = 0, total = 0;
    if (cudaSetDevice(i) == cudaSuccess && cudaMemGetInfo(&free, &total) == cudaSuccess) g.free_bytes = free;
    (void)cudaGetLastError();
    gpus.push_back(std::move(g));
  }
  if (restore && count > 0) (void)cudaSetDevice(previous);
  if (count > 0 && gpus.empty()) why = "no CUDA GPU answered";
  return gpus;
}

}  // namespace aero::backend::cuda
