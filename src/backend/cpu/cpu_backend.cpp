// The CPU backend: matrix products through the quant kernels, everything else in plain
// loops (they are a few percent of a token's time), work spread over one thread pool.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "aero/backend/backend.h"
#include "aero/backend/cpu_calibration.h"
#include "aero/backend/cpu_gemv.h"
#include "aero/backend/thread_pool.h"
#include "aero/error.h"
#include "backend/cpu/dot.h"
#include "quant/half.h"

namespace aero::backend {

KvType kv_type_by_name(std::string_view name) {
  if (name == "f32") return KvType::F32;
  if (name == "f16") return KvType::F16;
  if (name == "q8_0") return KvType::Q8_0;
  fail("unknown KV cache type '{}' (f32, f16 or q8_0)", name);
}

std::string_view kv_type_name(KvType type) {
  switch (type) {
    case KvType::F32: return "f32";
    case KvType::F16: return "f16";
    case KvType::Q8_0: return "q8_0";
  }
  return "?";
}

namespace cpu {
namespace {

float gelu_tanh(float x) {
  constexpr float kSqrt2OverPi = 0.7978845608028654f;
  return 0.5f * x * (1.0f + std::tanh(kSqrt2OverPi * (x + 0.044715f * x * x * x)));
}

// Per layer, keys then values, each [kv_heads][slots × capacity][row]: slot s holds rows
// s × capacity + position, so one head's positions of one sequence are contiguous, which is
// the order attention reads them in.
class CpuKvCache final : public KvCache {
 public:
  CpuKvCache(std::int64_t layers, std::int64_t kv_heads, std::int64_t head_dim, std::int64_t capacity,
             std::int64_t slots, KvType type)
      : type(type), kv_heads(kv_heads), head_dim(head_dim), capacity_(capacity), slots_(slots) {
    if (type == KvType::Q8_0 && head_dim % 32 != 0) fail("a q8_0 KV cache needs a head dimension divisible by 32");
    if (slots < 1 || capacity < 1) fail("a KV cache needs at least one slot of one position ({} x {})", slots, capacity);
    row_bytes = type == KvType::F32 ? 4 * head_dim : type == KvType::F16 ? 2 * head_dim : head_dim / 32 * 34;
    head_bytes = row_bytes * capacity * slots;
    layer_bytes = 2 * head_bytes * kv_heads;
    storage.resize(static_cast<std::size_t>(layer_bytes * layers));
  }
  std::int64_t capacity() const override { return capacity_; }
  std::int64_t slots() const override { return slots_; }
  std::uint64_t bytes() const override { return storage.size(); }

  std::uint8_t* key(std::int64_t layer, std::int64_t head, std::int64_t slot, std::int64_t pos) {
    return storage.data() + layer * layer_bytes + head * head_bytes + (slot * capacity_ + pos) * row_bytes;
  }

  std::uint64_t position_bytes() const override { return static_cast<std::uint64_t>(2 * kv_heads * row_bytes); }
  void read_rows(std::int64_t layer, std::int64_t slot, std::int64_t begin, std::int64_t count,
                 std::uint8_t* host) const override {
    const auto* from = rows_at(layer, slot, begin, count);
    for (std::int64_t h = 0; h < 2 * kv_heads; ++h)
      std::memcpy(host + h * count * row_bytes, from + h * head_bytes, static_cast<std::size_t>(count * row_bytes));
  }
  void write_rows(std::int64_t layer, std::int64_t slot, std::int64_t begin, std::int64_t count,
                  const std::uint8_t* host) override {
    auto* to = const_cast<std::uint8_t*>(rows_at(layer, slot, begin, count));
    for (std::int64_t h = 0; h < 2 * kv_heads; ++h)
      std::memcpy(to + h * head_bytes, host + h * count * row_bytes, static_cast<std::size_t>(count * row_bytes));
  }
  std::uint8_t* value(std::int64_t layer, std::int64_t head, std::int64_t slot, std::int64_t pos) {
    return key(layer, head, slot, pos) + kv_heads * head_bytes;
  }

  KvType type;
  std::int64_t kv_heads, head_dim, row_bytes, head_bytes, layer_bytes;

 private:
  // Key head 0's row `begin` of the slot, after checking the range.
  const std::uint8_t* rows_at(std::int64_t layer, std::int64_t slot, std::int64_t begin, std::int64_t count) const {
    if (layer < 0 || static_cast<std::uint64_t>((layer + 1) * layer_bytes) > storage.size() || slot < 0 || slot >= slots_ ||
        begin < 0 || count < 0 || begin + count > capacity_)
      fail("KV rows: layer {}, slot {}, positions {}..{} are outside the cache", layer, slot, begin, begin + count);
    return storage.data() + layer * layer_bytes + (slot * capacity_ + begin) * row_bytes;
  }
  std::int64_t capacity_, slots_;
  std::vector<std::uint8_t> storage;
};

class CpuBackend final : public Backend {
 public:
  explicit CpuBackend(unsigned threads) : pool_(threads), isa_(best_isa()), k_(kernels(isa_)) {}

  std::string name() const override {
    return fmt::format("cpu ({}, {} threads)", kernel_set_name(isa_), pool_.size());
  }

  void prepare(std::span<const quant::Matrix* const> matrices, std::uint64_t bytes_per_token) override {
    calibrate_for_model(matrices, bytes_per_token, pool_);
  }

  float* allocate(std::size_t count) override {
    buffers_.push_back(std::make_unique<float[]>(count));
    return buffers_.back().get();
  }
  void read(const float* src, std::size_t count, float* host) override { std::memcpy(host, src, count * sizeof(float)); }
  void write(const float* host, std::size_t count, float* dst) override { std::memcpy(dst, host, count * sizeof(float)); }

  void embed(const quant::Matrix& table, std::span<const std::int32_t> ids, float* out) override {
    const auto traits = quant::type_traits(static_cast<std::uint32_t>(table.type));
    for (std::size_t t = 0; t < ids.size(); ++t) {
      if (ids[t] < 0 || ids[t] >= table.rows) fail("token id {} is outside the vocabulary (0..{})", ids[t], table.rows - 1);
      traits->decode(table.data + static_cast<std::size_t>(ids[t]) * table.row_bytes, out + t * table.cols, table.cols);
    }
  }

  using Backend::matmul;
  void matmul(std::span<const quant::Matrix* const> ws, const float* x, std::int64_t n,
              std::span<float* const> ys) override {
    cpu::matmul(ws, {x, static_cast<std::size_t>(n * ws[0]->cols)}, n, ys, pool_, isa_);
  }

  void rms_norm(const float* x, const float* weight, std::int64_t width, std::int64_t rows, double eps,
                float* y) override {
    for_rows(rows, width, [&](std::int64_t r) {
      const float* xr = x + r * width;
      double sum = 0;
      for (std::int64_t i = 0; i < width; ++i) sum += static_cast<double>(xr[i]) * xr[i];
      const auto scale = static_cast<float>(1.0 / std::sqrt(sum / static_cast<double>(width) + eps));
      float* yr = y + r * width;
      for (std::int64_t i = 0; i < width; ++i) yr[i] = xr[i] * scale * weight[i];
    });
  }

  void add_bias(float* x, std::span<const float> bias, std::int64_t rows) override {
    const auto width = static_cast<std::int64_t>(bias.size());
    for (std::int64_t r = 0; r < rows; ++r)
      for (std::int64_t i = 0; i < width; ++i) x[r * width + i] += bias[static_cast<std::size_t>(i)];
  }

  void add(float* x, const float* y, std::int64_t count) override {
    for (std::int64_t i = 0; i < count; ++i) x[i] += y[i];
  }

  void silu_mul(const float* gate, const float* up, std::int64_t count, float* out) override {
    for_rows(count / 1024 + 1, 1024, [&](std::int64_t block) {
      const std::int64_t begin = block * 1024, end = std::min(count, begin + 1024);
      if (begin >= end) return;
      if (k_.silu_mul) return k_.silu_mul(gate + begin, up + begin, end - begin, out + begin);
      for (std::int64_t i = begin; i < end; ++i) out[i] = gate[i] / (1.0f + std::exp(-gate[i])) * up[i];
    });
  }

  void gelu_tanh_mul(const float* gate, const float* up, std::int64_t count, float* out) override {
    for_rows(count / 1024 + 1, 1024, [&](std::int64_t block) {
      const std::int64_t begin = block * 1024, end = std::min(count, begin + 1024);
      for (std::int64_t i = begin; i < end; ++i) out[i] = gelu_tanh(gate[i]) * up[i];
    });
  }

  void scale(float* x, std::int64_t count, float factor) override {
    for (std::int64_t i = 0; i < count; ++i) x[i] *= factor;
  }

  void softcap(float* x, std::int64_t count, float cap) override {
    if (!(cap > 0)) fail("softcap: the cap must be positive, not {}", cap);
    for (std::int64_t i = 0; i < count; ++i) x[i] = cap * std::tanh(x[i] / cap);
  }

  void rope(float* x, std::int64_t n, std::int64_t heads, std::int64_t head_dim, std::span<const float> cos_sin,
            model::RopeLayout layout) override {
    const std::int64_t half = head_dim / 2;
    const bool split = layout == model::RopeLayout::HalfSplit;
    for_rows(n, heads * head_dim, [&](std::int64_t t) {
      const float* angles = cos_sin.data() + t * half * 2;
      for (std::int64_t h = 0; h < heads; ++h) {
        float* v = x + (t * heads + h) * head_dim;
        for (std::int64_t i = 0; i < half; ++i) {
          // The pair (a, b) rotates by the angle of frequency i.
          const std::int64_t ia = split ? i : 2 * i, ib = split ? i + half : 2 * i + 1;
          const float a = v[ia], b = v[ib], c = angles[2 * i], s = angles[2 * i + 1];
          v[ia] = a * c - b * s;
          v[ib] = b * c + a * s;
        }
      }
    });
  }

  std::unique_ptr<KvCache> create_kv_cache(std::int64_t layers, std::int64_t kv_heads, std::int64_t head_dim,
                                           std::int64_t capacity, std::int64_t slots, KvType type) override {
    return std::make_unique<CpuKvCache>(layers, kv_heads, head_dim, capacity, slots, type);
  }

  void attention(KvCache& cache_base, std::int64_t layer, const float* q, const float* k, const float* v,
                 std::span<const std::int32_t> slots, std::span<const std::int32_t> positions, std::int64_t heads,
                 float* out, const AttentionOptions& options) override {
    auto& cache = static_cast<CpuKvCache&>(cache_base);
    const std::int64_t n = static_cast<std::int64_t>(positions.size()), d = cache.head_dim, kv_heads = cache.kv_heads;
    if (slots.size() != positions.size()) fail("attention: {} slots for {} positions", slots.size(), positions.size());
    if (heads % kv_heads != 0) fail("attention: {} query heads cannot share {} key/value heads evenly", heads, kv_heads);
    for (std::int64_t t = 0; t < n; ++t) {
      const std::int32_t slot = slots[static_cast<std::size_t>(t)], pos = positions[static_cast<std::size_t>(t)];
      if (slot < 0 || slot >= cache.slots()) fail("slot {} is outside the KV cache's {} slots", slot, cache.slots());
      if (pos < 0 || pos >= cache.capacity()) fail("position {} is outside the context of {} tokens", pos, cache.capacity());
    }
    for (std::int64_t t = 0; t < n; ++t) {
      const std::int32_t slot = slots[static_cast<std::size_t>(t)], pos = positions[static_cast<std::size_t>(t)];
      for (std::int64_t g = 0; g < kv_heads; ++g) {
        store_row(cache, k + (t * kv_heads + g) * d, cache.key(layer, g, slot, pos), d);
        store_row(cache, v + (t * kv_heads + g) * d, cache.value(layer, g, slot, pos), d);
      }
    }
    const std::int64_t group = heads / kv_heads;
    const auto scale = static_cast<float>(options.scale > 0 ? options.scale : 1.0 / std::sqrt(static_cast<double>(d)));
    const auto softcap = static_cast<float>(options.softcap);
    // A sliding window: the positions a token at `pos` sees start here.
    const auto first_seen = [window = options.window](std::int32_t pos) -> std::int64_t {
      return window > 0 ? std::max<std::int64_t>(0, pos - window + 1) : 0;
    };
    const AttendFn attend = d % 8 != 0                     ? nullptr
                            : cache.type == KvType::F32 ? k_.attend_f32
                            : cache.type == KvType::F16 ? k_.attend_f16
                                                        : nullptr;
    if (attend) {  // the heads that share a key/value head together: each cache row read once for them
      pool_.run(static_cast<std::size_t>(n * kv_heads), [&](std::size_t task) {
        const std::int64_t t = static_cast<std::int64_t>(task) / kv_heads, g = static_cast<std::int64_t>(task) % kv_heads;
        const std::int32_t slot = slots[static_cast<std::size_t>(t)], pos = positions[static_cast<std::size_t>(t)];
        const std::int64_t from = first_seen(pos), len = pos + 1 - from;
        thread_local std::vector<float> scores;
        scores.resize(static_cast<std::size_t>(group * len));
        const std::int64_t first = t * heads + g * group;
        attend(cache.key(layer, g, slot, from), cache.value(layer, g, slot, from),
               static_cast<std::size_t>(cache.row_bytes), len, q + first * d, static_cast<int>(group), d, scale, softcap,
               out + first * d, scores.data());
      });
      return;
    }
    pool_.run(static_cast<std::size_t>(n * heads), [&](std::size_t task) {
      const std::int64_t t = static_cast<std::int64_t>(task) / heads, h = static_cast<std::int64_t>(task) % heads;
      const std::int32_t pos = positions[static_cast<std::size_t>(t)];
      attend_head(cache, layer, h / group, slots[static_cast<std::size_t>(t)], first_seen(pos), pos,
                  q + (t * heads + h) * d, scale, softcap, out + (t * heads + h) * d);
    });
  }

 private:
  template <class F>
  void for_rows(std::int64_t rows, std::int64_t width, const F& f) {
    if (rows * width < (1 << 15) || rows == 1) {
      for (std::int64_t r = 0; r < rows; ++r) f(r);
      return;
    }
    pool_.run(static_cast<std::size_t>(rows), [&](std::size_t r) { f(static_cast<std::int64_t>(r)); });
  }

  // The AVX-512 set has no Q8_0 row kernel of this shape (its products take Q8_0 through the
  // generic block kernels, whose activations are laid out otherwise): a q8_0 cache's rows go
  // through the AVX2 set's kernel there, which every AVX-512 CPU runs.
  DotFn q8_0_dot() const {
    if (k_.q8_0) return k_.q8_0;
    return kernels(isa_ == Isa::Avx512 ? Isa::Avx2 : Isa::Scalar).q8_0;
  }

  static void store_row(const CpuKvCache& cache, const float* src, std::uint8_t* dst, std::int64_t d) {
    switch (cache.type) {
      case KvType::F32: std::memcpy(dst, src, static_cast<std::size_t>(d) * 4); break;
      case KvType::F16:
        for (std::int64_t i = 0; i < d; ++i) {
          const std::uint16_t h = quant::fp32_to_fp16(src[i]);
          std::memcpy(dst + 2 * i, &h, 2);
        }
        break;
      case KvType::Q8_0:
        quant::encode_from_f32(quant::GgmlType::Q8_0, {src, static_cast<std::size_t>(d)},
                               {dst, static_cast<std::size_t>(cache.row_bytes)});
        break;
    }
  }

  // One query head against positions from..pos of its key/value head in `slot`: scores
  // (soft-capped when softcap > 0), softmax, and the probability-weighted sum of values.
  void attend_head(CpuKvCache& cache, std::int64_t layer, std::int64_t g, std::int32_t slot, std::int64_t from,
                   std::int32_t pos, const float* q, float scale, float softcap, float* out) {
    thread_local std::vector<float> scores, row;
    thread_local std::vector<std::uint8_t> q8;
    const std::int64_t d = cache.head_dim, len = pos + 1 - from;
    scores.resize(static_cast<std::size_t>(len));
    const std::uint8_t* keys = cache.key(layer, g, slot, from);
    const std::uint8_t* values = cache.value(layer, g, slot, from);
    const auto stride = static_cast<std::size_t>(cache.row_bytes);
    DotFn dot = cache.type == KvType::F32 ? k_.f32 : cache.type == KvType::F16 ? k_.f16 : q8_0_dot();
    if (cache.type == KvType::Q8_0) {
      q8.resize(stride);
      quant::encode_from_f32(quant::GgmlType::Q8_0, {q, static_cast<std::size_t>(d)}, q8);
    }
    for (std::int64_t j = 0; j < len; j += kMaxRows)
      dot(keys + j * stride, stride, static_cast<int>(std::min<std::int64_t>(kMaxRows, len - j)), q, q8.data(), d,
          scores.data() + j);
    float max = -INFINITY;
    for (float& s : scores) {
      s *= scale;
      if (softcap > 0) s = softcap * std::tanh(s / softcap);
      max = std::max(max, s);
    }
    float sum = 0;
    for (float& s : scores) sum += (s = std::exp(s - max));
    std::fill(out, out + d, 0.0f);
    row.resize(static_cast<std::size_t>(d));
    for (std::int64_t j = 0; j < len; ++j) {
      const float p = scores[static_cast<std::size_t>(j)] / sum;
      const std::uint8_t* vj = values + j * stride;
      if (cache.type == KvType::F32) k_.axpy_f32(vj, p, out, d);
      else if (cache.type == KvType::F16) k_.axpy_f16(vj, p, out, d);
      else {
        quant::decode_to_f32(quant::GgmlType::Q8_0, {vj, stride}, row);
        k_.axpy_f32(reinterpret_cast<const std::uint8_t*>(row.data()), p, out, d);
      }
    }
  }

  ThreadPool pool_;
  Isa isa_;
  const DotKernels& k_;
  std::vector<std::unique_ptr<float[]>> buffers_;
};

}  // namespace
}  // namespace cpu

std::unique_ptr<Backend> make_cpu_backend(unsigned threads) { return std::make_unique<cpu::CpuBackend>(threads); }

}  // namespace aero::backend
