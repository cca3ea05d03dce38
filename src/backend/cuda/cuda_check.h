// CUDA runtime errors as aero::Error, and the device memory the backend owns. Host code only
// (g++): it includes fmt through aero/error.h, which nvcc must never see.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include <cuda_runtime.h>

namespace aero::backend::cuda {

// Throws "CUDA: <what>: <the runtime's text>" (one line) unless `status` is cudaSuccess.
// Errors a kernel hits surface at the next call that waits for it (read()), so `what` names
// the call that saw it, and the message says that an earlier kernel may be the cause.
void check(cudaError_t status, std::string_view what);

// "1.20 GiB"
std::string gib(std::uint64_t bytes);

// Makes `device` current for this thread (the backend's every entry point calls it: another
// backend on another GPU may have changed it).
void use_device(int device);

// Bytes of GPU memory, freed at destruction. Allocation failures name what the memory was for
// and how much the GPU has free: "CUDA: out of memory allocating 1.20 GiB for the KV cache
// (GPU 0 has 0.30 GiB free of 139.81 GiB)".
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  DeviceBuffer(int device, std::size_t bytes, std::string_view purpose);
  ~DeviceBuffer();
  DeviceBuffer(DeviceBuffer&& other) noexcept;
  DeviceBuffer& operator=(DeviceBuffer&& other) noexcept;
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  void* data() const { return data_; }
  template <class T>
  T* as() const {
    return static_cast<T*>(data_);
  }
  std::size_t bytes() const { return bytes_; }

 private:
  void release() noexcept;
  void* data_ = nullptr;
  std::size_t bytes_ = 0;
};

}  // namespace aero::backend::cuda
