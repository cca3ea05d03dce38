// The CUDA backend's WeightRing (backend.h): `slots` buffers in one device allocation, loaded
// on a copy stream of their own from pinned host memory, read by the compute stream through
// the WeightCache (a bound matrix is adopted for its host address; retire forgets it).
//
// Ordering, per slot, with two events: `loaded` (recorded on the copy stream after a load) is
// waited for by the compute stream at bind; `released` (recorded on the compute stream at
// retire) is waited for by the copy stream before the next load into the slot. A copy and the
// layers before it therefore overlap, and no call waits on the host except a load from pageable
// memory (the driver stages it) and a load whose format must be converted.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include <cuda_runtime.h>

#include "aero/backend/backend.h"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/weight_cache.h"

namespace aero::backend::cuda {

class CudaWeightRing final : public WeightRing {
 public:
  // `live` counts the rings alive (the backend runs steps directly while any is).
  CudaWeightRing(int device, cudaStream_t compute, WeightCache& cache, unsigned threads, int slots, std::uint64_t slot_bytes,
                 std::atomic<int>& live);
  ~CudaWeightRing() override;

  int slots() const override { return static_cast<int>(slots_.size()); }
  std::uint64_t slot_bytes() const override { return slot_bytes_; }
  std::uint64_t bytes_in_slot(std::span<const quant::Matrix* const> ms) const override;
  quant::Matrix keep(const quant::Matrix& m) override;
  void load(int slot, std::span<const quant::Matrix* const> ms) override;
  void bind(int slot, std::span<const quant::Matrix* const> ms) override;
  void retire(int slot) override;
  std::uint64_t bytes_loaded() const override { return bytes_loaded_; }

 private:
  // Page-locked host memory, freed at destruction.
  struct Pinned {
    void* data = nullptr;
    explicit Pinned(std::size_t bytes);
    ~Pinned();
    Pinned(const Pinned&) = delete;
    Pinned& operator=(const Pinned&) = delete;
  };
  struct Slot {
    cudaEvent_t loaded = nullptr, released = nullptr;
    std::vector<DeviceMatrix> matrices;         // the last load's, in its order
    std::vector<const void*> bound;             // host addresses adopted by bind
  };
  Slot& slot_at(int slot);

  int device_;
  cudaStream_t compute_, copy_ = nullptr;
  WeightCache& cache_;
  unsigned threads_;
  std::uint64_t slot_bytes_;
  DeviceBuffer storage_;
  std::vector<Slot> slots_;
  std::vector<std::unique_ptr<Pinned>> kept_;  // keep()'s pieces; the last one is filled
  std::size_t kept_used_ = 0, kept_capacity_ = 0;
  ConversionNotes noted_;
  std::uint64_t bytes_loaded_ = 0;
  std::atomic<int>& live_;
};

}  // namespace aero::backend::cuda
