#include "backend/cuda/weight_ring.h"

#include <algorithm>
#include <cstring>

#include "aero/error.h"
#include "aero/parallel.h"

namespace aero::backend::cuda {
namespace {

// Matrices start on 256-byte boundaries in a slot (what cudaMalloc gives a lone matrix: the
// product kernels' vector loads rely on 16).
constexpr std::uint64_t kAlign = 256;
std::uint64_t align_up(std::uint64_t v) { return (v + kAlign - 1) / kAlign * kAlign; }

// memcpy in parallel pieces (keeping a layer in pinned memory once, at load time).
void copy_parallel(void* dst, const void* src, std::size_t bytes, unsigned threads) {
  constexpr std::size_t kPiece = std::size_t{8} << 20;
  const std::size_t pieces = (bytes + kPiece - 1) / kPiece;
  parallel_for(pieces, std::max(1u, threads), [&](std::size_t i) {
    const std::size_t off = i * kPiece;
    std::memcpy(static_cast<std::uint8_t*>(dst) + off, static_cast<const std::uint8_t*>(src) + off, std::min(kPiece, bytes - off));
  });
}

}  // namespace

CudaWeightRing::Pinned::Pinned(std::size_t bytes) {
  const cudaError_t e = cudaHostAlloc(&data, std::max<std::size_t>(bytes, 1), cudaHostAllocDefault);
  if (e != cudaSuccess) {
    (void)cudaGetLastError();
    fail("CUDA: cannot pin {} of host memory for streamed weights ({})", gib(bytes), cudaGetErrorString(e));
  }
}

CudaWeightRing::Pinned::~Pinned() { (void)cudaFreeHost(data); }

CudaWeightRing::CudaWeightRing(int device, cudaStream_t compute, WeightCache& cache, unsigned threads, int slots,
                               std::uint64_t slot_bytes, std::atomic<int>& live)
    : device_(device), compute_(compute), cache_(cache), threads_(threads), slot_bytes_(align_up(slot_bytes)), live_(live) {
  if (slots < 1) fail("a weight ring needs at least one slot (got {})", slots);
  use_device(device);
  storage_ = DeviceBuffer(device, static_cast<std::size_t>(slot_bytes_) * static_cast<std::size_t>(slots),
                          fmt::format("a ring of {} slots of {} for streamed layers", slots, gib(slot_bytes_)));
  check(cudaStreamCreateWithFlags(&copy_, cudaStreamNonBlocking), "creating the copy stream");
  slots_.resize(static_cast<std::size_t>(slots));
  for (auto& s : slots_) {
    check(cudaEventCreateWithFlags(&s.loaded, cudaEventDisableTiming), "creating an event");
    check(cudaEventCreateWithFlags(&s.released, cudaEventDisableTiming), "creating an event");
  }
  ++live_;
}

CudaWeightRing::~CudaWeightRing() {
  (void)cudaSetDevice(device_);
  // Everything queued that reads the slots or the pinned copies finishes before they go.
  (void)cudaStreamSynchronize(copy_);
  (void)cudaStreamSynchronize(compute_);
  for (auto& s : slots_) {
    for (const void* host : s.bound) cache_.evict(host);
    (void)cudaEventDestroy(s.loaded);
    (void)cudaEventDestroy(s.released);
  }
  (void)cudaStreamDestroy(copy_);
  --live_;
}

CudaWeightRing::Slot& CudaWeightRing::slot_at(int slot) {
  if (slot < 0 || slot >= slots()) fail("weight ring: slot {} of {}", slot, slots());
  return slots_[static_cast<std::size_t>(slot)];
}

std::uint64_t CudaWeightRing::bytes_in_slot(std::span<const quant::Matrix* const> ms) const {
  std::uint64_t bytes = 0;
  for (const auto* m : ms) bytes = align_up(bytes + static_cast<std::uint64_t>(m->rows) * gpu_row_bytes(*m));
  return bytes;
}

quant::Matrix CudaWeightRing::keep(const quant::Matrix& m) {
  GpuForm form = gpu_form(m, threads_, noted_);
  const std::size_t bytes = form.bytes(m);
  // Pinned memory in pieces of 256 MiB or more, matrices placed one after another: pinning is
  // slow per call (a MoE layer has hundreds of matrices).
  constexpr std::size_t kPiece = std::size_t{256} << 20;
  const std::size_t need = static_cast<std::size_t>(align_up(bytes));
  if (kept_.empty() || kept_used_ + need > kept_capacity_) {
    kept_capacity_ = std::max(kPiece, need);
    kept_.push_back(std::make_unique<Pinned>(kept_capacity_));
    kept_used_ = 0;
  }
  auto* at = static_cast<std::uint8_t*>(kept_.back()->data) + kept_used_;
  kept_used_ += need;
  copy_parallel(at, form.converted.empty() ? m.data : form.converted.data(), bytes, threads_);
  quant::Matrix kept = m;
  kept.type = form.type;
  kept.row_bytes = form.row_bytes;
  kept.data = at;
  return kept;
}

void CudaWeightRing::load(int slot, std::span<const quant::Matrix* const> ms) {
  use_device(device_);
  Slot& s = slot_at(slot);
  if (!s.bound.empty()) fail("weight ring: slot {} is loaded while bound (retire it first)", slot);
  if (bytes_in_slot(ms) > slot_bytes_)
    fail("weight ring: a layer of {} does not fit a slot of {}", gib(bytes_in_slot(ms)), gib(slot_bytes_));
  check(cudaStreamWaitEvent(copy_, s.released, 0), "ordering a weight load");
  s.matrices.clear();
  auto* base = storage_.as<std::uint8_t>() + static_cast<std::size_t>(slot) * slot_bytes_;
  std::uint64_t offset = 0;
  for (const auto* m : ms) {
    GpuForm form = gpu_form(*m, threads_, noted_);
    const std::size_t bytes = form.bytes(*m);
    const void* src = form.converted.empty() ? static_cast<const void*>(m->data) : form.converted.data();
    if (bytes > 0) check(cudaMemcpyAsync(base + offset, src, bytes, cudaMemcpyHostToDevice, copy_), "loading a streamed layer");
    // Converted rows are a temporary: their copy completes before they go.
    if (!form.converted.empty()) check(cudaStreamSynchronize(copy_), "loading a converted streamed layer");
    s.matrices.push_back(DeviceMatrix{.type = form.type, .data = base + offset, .rows = m->rows, .cols = m->cols,
                                      .row_bytes = form.row_bytes});
    offset = align_up(offset + bytes);
    bytes_loaded_ += bytes;
  }
  check(cudaEventRecord(s.loaded, copy_), "ordering a weight load");
}

void CudaWeightRing::bind(int slot, std::span<const quant::Matrix* const> ms) {
  use_device(device_);
  Slot& s = slot_at(slot);
  if (ms.size() != s.matrices.size())
    fail("weight ring: {} matrices bound to slot {}, which holds {}", ms.size(), slot, s.matrices.size());
  check(cudaStreamWaitEvent(compute_, s.loaded, 0), "waiting for a streamed layer");
  for (std::size_t i = 0; i < ms.size(); ++i) {
    const DeviceMatrix& d = s.matrices[i];
    if (ms[i]->rows != d.rows || ms[i]->cols != d.cols)
      fail("weight ring: slot {} holds a {} x {} matrix where a {} x {} one is bound", slot, d.rows, d.cols, ms[i]->rows,
           ms[i]->cols);
    cache_.adopt(*ms[i], d);
    s.bound.push_back(ms[i]->data);
  }
}

void CudaWeightRing::retire(int slot) {
  use_device(device_);
  Slot& s = slot_at(slot);
  for (const void* host : s.bound) cache_.evict(host);  // adopted: forgotten, nothing waited for
  s.bound.clear();
  check(cudaEventRecord(s.released, compute_), "releasing a streamed layer");
}

}  // namespace aero::backend::cuda
