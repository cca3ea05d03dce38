#include "backend/cuda/weight_cache.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <vector>

#include "aero/error.h"
#include "aero/parallel.h"
#include "quant/half.h"

namespace aero::backend::cuda {
namespace {

std::string_view type_name(quant::GgmlType type) {
  const auto traits = quant::type_traits(static_cast<std::uint32_t>(type));
  return traits ? traits->name : std::string_view("unknown");
}

// Rows of `m` re-encoded as `to`: decoded to f32 and encoded again, row by row, in parallel.
std::vector<std::uint8_t> convert_rows(const quant::Matrix& m, quant::GgmlType to, std::size_t to_row_bytes,
                                       unsigned threads) {
  std::vector<std::uint8_t> out(static_cast<std::size_t>(m.rows) * to_row_bytes);
  const std::int64_t per_job = std::max<std::int64_t>(1, m.rows / (8 * std::max(1u, threads)));
  const auto jobs = static_cast<std::size_t>((m.rows + per_job - 1) / per_job);
  parallel_for(jobs, threads, [&](std::size_t job) {
    std::vector<float> row(static_cast<std::size_t>(m.cols));
    const std::int64_t first = static_cast<std::int64_t>(job) * per_job, last = std::min(m.rows, first + per_job);
    for (std::int64_t r = first; r < last; ++r) {
      quant::decode_to_f32(m.type, {m.data + static_cast<std::size_t>(r) * m.row_bytes, m.row_bytes}, row);
      std::uint8_t* dst = out.data() + static_cast<std::size_t>(r) * to_row_bytes;
      switch (to) {
        case quant::GgmlType::F32: std::memcpy(dst, row.data(), to_row_bytes); break;
        case quant::GgmlType::F16:
        case quant::GgmlType::BF16:
          for (std::size_t c = 0; c < row.size(); ++c) {
            const std::uint16_t h = to == quant::GgmlType::F16 ? quant::fp32_to_fp16(row[c]) : quant::fp32_to_bf16(row[c]);
            std::memcpy(dst + 2 * c, &h, 2);
          }
          break;
        default: quant::encode_from_f32(to, row, {dst, to_row_bytes}); break;
      }
    }
  });
  return out;
}

}  // namespace

std::size_t gpu_row_bytes(const quant::Matrix& host) {
  const quant::GgmlType to = gpu_reads(host.type) ? host.type : gpu_upload_type(host.type);
  if (to == host.type) return host.row_bytes;
  const auto traits = quant::type_traits(static_cast<std::uint32_t>(to));
  const auto row_bytes = traits ? quant::row_bytes(*traits, static_cast<std::uint64_t>(host.cols)) : std::nullopt;
  if (!row_bytes)
    fail("CUDA: a {} x {} {} matrix cannot be converted to {} for the GPU (its rows are not whole {} blocks)", host.rows,
         host.cols, type_name(host.type), type_name(to), type_name(to));
  return static_cast<std::size_t>(*row_bytes);
}

GpuForm gpu_form(const quant::Matrix& host, unsigned threads, ConversionNotes& noted) {
  GpuForm form{.type = gpu_reads(host.type) ? host.type : gpu_upload_type(host.type), .row_bytes = gpu_row_bytes(host),
               .converted = {}};
  if (form.type == host.type) return form;
  if (noted.insert({host.type, form.type}).second)
    std::fprintf(stderr, "aero: note: the CUDA kernels don't read %s; converting those weights to %s once, at upload\n",
                 std::string(type_name(host.type)).c_str(), std::string(type_name(form.type)).c_str());
  form.converted = convert_rows(host, form.type, form.row_bytes, threads);
  return form;
}

WeightCache::MatrixEntry WeightCache::upload(const quant::Matrix& host) {
  GpuForm form = gpu_form(host, threads_, noted_);
  MatrixEntry e{.host = host, .device = {}, .storage = {}};
  e.device = DeviceMatrix{.type = form.type, .data = nullptr, .rows = host.rows, .cols = host.cols, .row_bytes = form.row_bytes};
  const std::uint8_t* bytes = form.converted.empty() ? host.data : form.converted.data();
  const std::size_t size = form.bytes(host);
  e.storage = DeviceBuffer(device_, size,
                           fmt::format("a {} x {} {} weight matrix ({} of weights on the GPU already)", host.rows, host.cols,
                                       type_name(form.type), gib(bytes_)));
  // From pageable memory (the mapped file, or the converted rows): the call returns once the
  // bytes are staged, so they may go when it returns; the copy itself is ordered on the stream.
  if (size > 0)
    check(cudaMemcpyAsync(e.storage.data(), bytes, size, cudaMemcpyHostToDevice, stream_), "uploading a weight matrix");
  // (Waiting for a converted matrix costs little, once, and does not lean on that rule.)
  if (!form.converted.empty()) check(cudaStreamSynchronize(stream_), "uploading a converted weight matrix");
  e.device.data = e.storage.as<std::uint8_t>();
  bytes_ += size;
  return e;
}

const DeviceMatrix& WeightCache::matrix(const quant::Matrix& host) {
  auto it = matrices_.find(host.data);
  if (it != matrices_.end() && same_shape(it->second.host, host)) return it->second.device;
  if (it != matrices_.end()) evict(host.data);  // another matrix now at that address
  return matrices_.emplace(host.data, upload(host)).first->second.device;
}

const float* WeightCache::vector(std::span<const float> host) {
  auto it = vectors_.find(host.data());
  if (it != vectors_.end() && it->second.count == host.size()) return it->second.storage.as<const float>();
  if (it != vectors_.end()) evict(host.data());
  VectorEntry e{.count = host.size(), .storage = DeviceBuffer(device_, host.size_bytes(), "a norm or bias vector")};
  if (!host.empty())
    check(cudaMemcpyAsync(e.storage.data(), host.data(), host.size_bytes(), cudaMemcpyHostToDevice, stream_),
          "uploading a norm or bias vector");
  bytes_ += host.size_bytes();
  return vectors_.emplace(host.data(), std::move(e)).first->second.storage.as<const float>();
}

void WeightCache::adopt(const quant::Matrix& host, const DeviceMatrix& device) {
  evict(host.data);
  matrices_.emplace(host.data, MatrixEntry{.host = host, .device = device, .storage = {}});
}

void WeightCache::evict(const void* host) {
  // The stream may still read the memory: wait before it is freed (cudaFree would wait for the
  // whole device anyway; this says so).
  if (auto it = matrices_.find(host); it != matrices_.end()) {
    if (it->second.storage.bytes() > 0) check(cudaStreamSynchronize(stream_), "waiting before freeing a weight matrix");
    bytes_ -= it->second.storage.bytes();
    matrices_.erase(it);
  }
  if (auto it = vectors_.find(host); it != vectors_.end()) {
    check(cudaStreamSynchronize(stream_), "waiting before freeing a weight vector");
    bytes_ -= it->second.storage.bytes();
    vectors_.erase(it);
  }
}

void WeightCache::forget_uploads() {
  if (matrices_.empty() && vectors_.empty()) return;
  check(cudaStreamSynchronize(stream_), "waiting before freeing uploaded weights");
  std::erase_if(matrices_, [&](const auto& e) {
    if (e.second.storage.bytes() == 0) return false;  // adopted
    bytes_ -= e.second.storage.bytes();
    return true;
  });
  for (const auto& e : vectors_) bytes_ -= e.second.storage.bytes();
  vectors_.clear();
}

}  // namespace aero::backend::cuda
