#include "backend/cuda/cuda_check.h"

#include <algorithm>
#include <utility>

#include "aero/error.h"

namespace aero::backend::cuda {

void check(cudaError_t status, std::string_view what) {
  if (status == cudaSuccess) return;
  // A kernel's fault is sticky and reported by whichever call comes next.
  const bool sticky = status == cudaErrorIllegalAddress || status == cudaErrorLaunchFailure ||
                      status == cudaErrorIllegalInstruction || status == cudaErrorMisalignedAddress ||
                      status == cudaErrorHardwareStackError || status == cudaErrorAssert;
  fail("CUDA: {}: {}{}", what, cudaGetErrorString(status), sticky ? " (raised by an earlier kernel on this GPU)" : "");
}

std::string gib(std::uint64_t bytes) { return fmt::format("{:.2f} GiB", static_cast<double>(bytes) / (1u << 30)); }

void use_device(int device) { check(cudaSetDevice(device), fmt::format("selecting GPU {}", device)); }

DeviceBuffer::DeviceBuffer(int device, std::size_t bytes, std::string_view purpose) : bytes_(bytes) {
  if (bytes == 0) return;
  const cudaError_t status = cudaMalloc(&data_, bytes);
  if (status == cudaSuccess) return;
  data_ = nullptr;
  if (status == cudaErrorMemoryAllocation) {
    (void)cudaGetLastError();  // not sticky: clear it so that the process can go on
    std::size_t free = 0, total = 0;
    if (cudaMemGetInfo(&free, &total) == cudaSuccess)
      fail("CUDA: out of memory allocating {} for {} (GPU {} has {} free of {})", gib(bytes), purpose, device, gib(free),
           gib(total));
    fail("CUDA: out of memory allocating {} for {} on GPU {}", gib(bytes), purpose, device);
  }
  check(status, fmt::format("allocating {} for {} on GPU {}", gib(bytes), purpose, device));
}

DeviceBuffer::~DeviceBuffer() { release(); }

DeviceBuffer::DeviceBuffer(DeviceBuffer&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)), bytes_(std::exchange(other.bytes_, 0)) {}

DeviceBuffer& DeviceBuffer::operator=(DeviceBuffer&& other) noexcept {
  if (this != &other) {
    release();
    data_ = std::exchange(other.data_, nullptr);
    bytes_ = std::exchange(other.bytes_, 0);
  }
  return *this;
}

void DeviceBuffer::release() noexcept {
  if (data_) (void)cudaFree(data_);  // waits for the work using it; nothing to report from a destructor
  data_ = nullptr;
  bytes_ = 0;
}

}  // namespace aero::backend::cuda
