// Choosing a backend by the device the command line names. Compiled in every build: without
// the CUDA backend, "cuda" is refused here with one line and list_gpus() is empty.
#include <atomic>
#include <charconv>

#include "aero/backend/backend.h"
#include "aero/error.h"
#ifdef AERO_HAVE_CUDA
#include "backend/cuda/cuda_backend.h"
#endif

namespace aero::backend {
namespace {
std::atomic<std::uint64_t> released_weights{0};
}  // namespace

void KvCache::read_rows(std::int64_t, std::int64_t, std::int64_t, std::int64_t, std::uint8_t*) const {
  fail("this backend's KV cache cannot move rows to another backend");
}
void KvCache::write_rows(std::int64_t, std::int64_t, std::int64_t, std::int64_t, const std::uint8_t*) {
  fail("this backend's KV cache cannot move rows from another backend");
}

void host_weights_released() { released_weights.fetch_add(1, std::memory_order_relaxed); }
std::uint64_t host_weights_epoch() { return released_weights.load(std::memory_order_relaxed); }

bool built_with_cuda() {
#ifdef AERO_HAVE_CUDA
  return true;
#else
  return false;
#endif
}

std::vector<GpuInfo> list_gpus(std::string* why) {
#ifdef AERO_HAVE_CUDA
  std::string reason;
  auto gpus = cuda::list_gpus(reason);
  if (why) *why = gpus.empty() ? reason : "";
  return gpus;
#else
  if (why) *why = "this aero was built without the CUDA backend";
  return {};
#endif
}

HostCopyProbe probe_host_copies(int index, const std::function<double()>& cpu_pass) {
#ifdef AERO_HAVE_CUDA
  return cuda::probe_host_copies(index, cpu_pass);
#else
  (void)index;
  (void)cpu_pass;
  return {};
#endif
}

Device choose_device(std::string_view name) {
  if (name == "cpu") return {Device::Kind::Cpu, 0};
  const bool is_auto = name == "auto";
  int index = 0;
  if (name.starts_with("cuda:")) {
    const std::string_view digits = name.substr(5);
    const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), index);
    if (digits.empty() || ec != std::errc() || end != digits.data() + digits.size() || index < 0)
      fail("unknown device '{}' (auto, cpu, cuda or cuda:N)", name);
  } else if (name != "cuda" && !is_auto) {
    fail("unknown device '{}' (auto, cpu, cuda or cuda:N)", name);
  }
#ifdef AERO_HAVE_CUDA
  std::string why;
  const int count = cuda::device_count(why);
  if (is_auto) return count > 0 ? Device{Device::Kind::Cuda, 0} : Device{Device::Kind::Cpu, 0};
  if (count == 0) fail("--device {}: {} (use --device cpu)", name, why);
  if (index >= count) fail("--device {}: there is no GPU {} (this machine has {}: cuda:0..cuda:{})", name, index, count, count - 1);
  return {Device::Kind::Cuda, index};
#else
  if (is_auto) return {Device::Kind::Cpu, 0};
  fail("--device {}: this aero was built without the CUDA backend (use --device cpu)", name);
#endif
}

std::string device_name(const Device& device) {
  return device.kind == Device::Kind::Cpu ? std::string("cpu") : fmt::format("cuda:{}", device.index);
}

std::unique_ptr<Backend> make_backend(const Device& device, unsigned threads) {
  if (device.kind == Device::Kind::Cpu) return make_cpu_backend(threads);
#ifdef AERO_HAVE_CUDA
  return cuda::make_cuda_backend(device.index, threads);
#else
  fail("--device {}: this aero was built without the CUDA backend (use --device cpu)", device_name(device));
#endif
}

std::unique_ptr<Backend> make_backend(std::string_view device, unsigned threads) {
  return make_backend(choose_device(device), threads);
}

}  // namespace aero::backend
