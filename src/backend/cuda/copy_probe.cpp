// How fast pinned host memory reaches a GPU, alone and beside the CPU reading RAM: the planner's
// host→GPU and RAM figures for a split (issue 26's first H200 runs found the copies slowing from
// 55 to 30 GB/s while 16 cores read RAM: both draw on the same memory).
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <thread>
#include <vector>

#include <cuda_runtime.h>

#include "backend/cuda/cuda_backend.h"

namespace aero::backend::cuda {
namespace {

constexpr std::size_t kBytes = std::size_t{256} << 20;

bool ok(cudaError_t e) {
  if (e == cudaSuccess) return true;
  (void)cudaGetLastError();
  return false;
}

// GB/s of `copies` back-to-back copies of kBytes, timed by events on `stream`.
double copy_rate(void* device, const void* host, cudaStream_t stream, int copies) {
  cudaEvent_t start = nullptr, stop = nullptr;
  double rate = 0;
  if (ok(cudaEventCreate(&start)) && ok(cudaEventCreate(&stop)) && ok(cudaEventRecord(start, stream))) {
    bool queued = true;
    for (int i = 0; i < copies && queued; ++i)
      queued = ok(cudaMemcpyAsync(device, host, kBytes, cudaMemcpyHostToDevice, stream));
    float ms = 0;
    if (queued && ok(cudaEventRecord(stop, stream)) && ok(cudaEventSynchronize(stop)) &&
        ok(cudaEventElapsedTime(&ms, start, stop)) && ms > 0)
      rate = static_cast<double>(kBytes) * copies / (ms * 1e-3) / 1e9;
  }
  if (start) (void)cudaEventDestroy(start);
  if (stop) (void)cudaEventDestroy(stop);
  return rate;
}

}  // namespace

HostCopyProbe probe_host_copies(int index, const std::function<double()>& cpu_pass) {
  HostCopyProbe probe;
  int previous = 0;
  const bool restore = cudaGetDevice(&previous) == cudaSuccess;
  void* host = nullptr;
  void* device = nullptr;
  cudaStream_t stream = nullptr;
  if (ok(cudaSetDevice(index)) && ok(cudaHostAlloc(&host, kBytes, cudaHostAllocDefault)) &&
      ok(cudaMalloc(&device, kBytes)) && ok(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking))) {
    std::fill_n(static_cast<unsigned char*>(host), kBytes, 1);  // pages in
    (void)copy_rate(device, host, stream, 1);                    // warm-up
    probe.copy = copy_rate(device, host, stream, 8);
    if (cpu_pass && probe.copy > 0) {
      // The copies keep going on their own thread while the CPU makes its pass; each side's
      // rate over the time both ran.
      std::atomic<bool> reading{true};
      std::atomic<std::int64_t> copied{0};
      double copy_seconds = 0;
      std::thread copier([&] {
        const auto t0 = std::chrono::steady_clock::now();
        while (reading.load()) {
          if (!ok(cudaMemcpyAsync(device, host, kBytes, cudaMemcpyHostToDevice, stream)) || !ok(cudaStreamSynchronize(stream)))
            break;
          copied += static_cast<std::int64_t>(kBytes);
        }
        copy_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      });
      std::this_thread::sleep_for(std::chrono::milliseconds(5));  // the copies under way first
      probe.cpu_with_copy = cpu_pass();
      reading = false;
      copier.join();
      if (copy_seconds > 0) probe.copy_with_cpu = static_cast<double>(copied.load()) / copy_seconds / 1e9;
    }
  }
  if (stream) (void)cudaStreamDestroy(stream);
  if (device) (void)cudaFree(device);
  if (host) (void)cudaFreeHost(host);
  (void)cudaGetLastError();
  if (restore) (void)cudaSetDevice(previous);
  return probe;
}

}  // namespace aero::backend::cuda
