// The CUDA backend: every operation queued on one stream of one GPU, nothing waited for until
// read() brings results back. Weights reach the GPU through WeightCache on first use; the
// matrix products are matmul.h's; the other kernels are kernels.h's. The few host inputs of
// a pass (embedding rows decoded on the host, rope angles, positions) go up through pinned
// staging, and the angles and positions only when they differ from the last ones sent (every
// layer of a pass passes the same).
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "aero/error.h"
#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/kernels.h"
#include "backend/cuda/matmul.h"
#include "backend/cuda/step_graph.h"
#include "backend/cuda/weight_cache.h"
#include "backend/cuda/weight_ring.h"

#ifndef AERO_CUDA_ARCHITECTURES_TEXT
#define AERO_CUDA_ARCHITECTURES_TEXT "?"
#endif

namespace aero::backend::cuda {
namespace {

std::int64_t ceil_div(std::int64_t a, std::int64_t b) { return (a + b - 1) / b; }

// One stream, destroyed last.
class Stream {
 public:
  explicit Stream(int device) : device_(device) {
    check(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), fmt::format("creating a stream on GPU {}", device));
  }
  ~Stream() {
    (void)cudaSetDevice(device_);
    (void)cudaStreamSynchronize(stream_);
    (void)cudaStreamDestroy(stream_);
  }
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;
  cudaStream_t get() const { return stream_; }

 private:
  int device_;
  cudaStream_t stream_ = nullptr;
};

kernels::KvFormat kv_format(KvType type) {
  switch (type) {
    case KvType::F32: return kernels::KvFormat::F32;
    case KvType::F16: return kernels::KvFormat::F16;
    case KvType::Q8_0: return kernels::KvFormat::Q8_0;
  }
  return kernels::KvFormat::F16;
}

// Per layer, keys then values, each [kv_heads][slots × capacity][row], as the CPU's cache:
// cache row slot × capacity + position.
class CudaKvCache final : public KvCache {
 public:
  CudaKvCache(int device, std::int64_t layers, std::int64_t kv_heads, std::int64_t head_dim, std::int64_t capacity,
              std::int64_t slots, KvType type, cudaStream_t stream)
      : device_(device), stream_(stream), layers_(layers), kv_heads_(kv_heads), head_dim_(head_dim), capacity_(capacity),
        slots_(slots), type_(type) {
    if (type == KvType::Q8_0 && head_dim % 32 != 0) fail("a q8_0 KV cache needs a head dimension divisible by 32");
    if (slots < 1 || capacity < 1) fail("a KV cache needs at least one slot of one position ({} x {})", slots, capacity);
    if (slots * capacity > std::numeric_limits<std::int32_t>::max()) fail("a KV cache of {} slots x {} positions is too many rows", slots, capacity);
    row_bytes_ = type == KvType::F32 ? 4 * head_dim : type == KvType::F16 ? 2 * head_dim : head_dim / 32 * 34;
    head_bytes_ = row_bytes_ * capacity * slots;
    layer_bytes_ = 2 * head_bytes_ * kv_heads;
    const auto total = static_cast<std::uint64_t>(layer_bytes_) * static_cast<std::uint64_t>(layers);
    storage_ = DeviceBuffer(device, total,
                            fmt::format("the KV cache ({} layers x {} slots x {} tokens, {})", layers, slots, capacity,
                                        kv_type_name(type)));
    // Zeros, as the CPU's: positions not yet written are never read, but hold no garbage either.
    if (total > 0) check(cudaMemsetAsync(storage_.data(), 0, total, stream), "clearing the KV cache");
  }
  ~CudaKvCache() override { (void)cudaSetDevice(device_); }  // storage_ is freed on its GPU

  std::int64_t capacity() const override { return capacity_; }
  std::int64_t slots() const override { return slots_; }
  std::uint64_t bytes() const override { return storage_.bytes(); }
  std::int64_t kv_heads() const { return kv_heads_; }
  std::int64_t head_dim() const { return head_dim_; }

  std::uint64_t position_bytes() const override { return static_cast<std::uint64_t>(2 * kv_heads_ * row_bytes_); }
  // One strided copy each way (2 × kv_heads runs of count rows), ordered on the backend's stream
  // after the work that wrote the rows; the host's bytes are ready (or free again) on return.
  void read_rows(std::int64_t layer, std::int64_t slot, std::int64_t begin, std::int64_t count,
                 std::uint8_t* host) const override {
    if (count == 0) return;
    use_device(device_);
    check(cudaMemcpy2DAsync(host, static_cast<std::size_t>(count * row_bytes_), rows_at(layer, slot, begin, count),
                            static_cast<std::size_t>(head_bytes_), static_cast<std::size_t>(count * row_bytes_),
                            static_cast<std::size_t>(2 * kv_heads_), cudaMemcpyDeviceToHost, stream_),
          "reading KV cache rows");
    check(cudaStreamSynchronize(stream_), "reading KV cache rows");
  }
  void write_rows(std::int64_t layer, std::int64_t slot, std::int64_t begin, std::int64_t count,
                  const std::uint8_t* host) override {
    if (count == 0) return;
    use_device(device_);
    check(cudaMemcpy2DAsync(rows_at(layer, slot, begin, count), static_cast<std::size_t>(head_bytes_), host,
                            static_cast<std::size_t>(count * row_bytes_), static_cast<std::size_t>(count * row_bytes_),
                            static_cast<std::size_t>(2 * kv_heads_), cudaMemcpyHostToDevice, stream_),
          "writing KV cache rows");
    check(cudaStreamSynchronize(stream_), "writing KV cache rows");
  }

  kernels::KvLayer layer(std::int64_t index) const {
    if (index < 0 || index >= layers_) fail("layer {} is outside the KV cache's {} layers", index, layers_);
    kernels::KvLayer l;
    l.keys = storage_.as<std::uint8_t>() + index * layer_bytes_;
    l.values = l.keys + kv_heads_ * head_bytes_;
    l.format = kv_format(type_);
    l.kv_heads = static_cast<int>(kv_heads_);
    l.head_dim = static_cast<int>(head_dim_);
    l.row_bytes = row_bytes_;
    l.head_bytes = head_bytes_;
    return l;
  }

 private:
  std::uint8_t* rows_at(std::int64_t layer, std::int64_t slot, std::int64_t begin, std::int64_t count) const {
    if (layer < 0 || layer >= layers_ || slot < 0 || slot >= slots_ || begin < 0 || count < 0 || begin + count > capacity_)
      fail("KV rows: layer {}, slot {}, positions {}..{} are outside the cache", layer, slot, begin, begin + count);
    return storage_.as<std::uint8_t>() + layer * layer_bytes_ + (slot * capacity_ + begin) * row_bytes_;
  }

  int device_;
  cudaStream_t stream_;
  std::int64_t layers_, kv_heads_, head_dim_, capacity_, slots_;
  KvType type_;
  std::int64_t row_bytes_ = 0, head_bytes_ = 0, layer_bytes_ = 0;
  DeviceBuffer storage_;
};

// Operation codes of step signatures (StepGraphs::launch).
enum Op : std::uint64_t {
  kEmbed = 10, kMatmul, kRmsNorm, kAddBias, kAdd, kSiluMul, kRope, kAttention, kGeluTanhMul, kScale, kSoftcap, kGather,
  kScatterAdd
};

class CudaBackend final : public Backend {
 public:
  CudaBackend(int device, unsigned threads)
      : device_((use_device(device), device)), threads_(threads), props_(properties(device)), stream_(device),
        weights_(device, stream_.get(), threads), graphs_(device, stream_.get()) {
    // A build without code for this GPU's architecture fails here, with what to rebuild for.
    const cudaError_t probe = kernels::probe(stream_.get());
    if (probe == cudaErrorNoKernelImageForDevice || probe == cudaErrorUnsupportedPtxVersion) {
      (void)cudaGetLastError();
      fail("CUDA: this aero was built for CUDA architectures {}, which GPU {} ({}, cc {}.{}) cannot run; rebuild with "
           "-DAERO_CUDA_ARCHITECTURES={}{}",
           AERO_CUDA_ARCHITECTURES_TEXT, device, props_.name, props_.major, props_.minor, props_.major, props_.minor);
    }
    check(probe, fmt::format("starting a kernel on GPU {}", device));
    check(cudaStreamSynchronize(stream_.get()), fmt::format("starting a kernel on GPU {}", device));
    matmul_ = std::make_unique<Matmul>(stream_.get());
  }

  ~CudaBackend() override {
    (void)cudaSetDevice(device_);
    (void)cudaStreamSynchronize(stream_.get());  // then members free their memory, the stream last
  }

  std::string name() const override {
    return fmt::format("cuda ({}, cc {}.{}, {:.0f} GiB)", props_.name, props_.major, props_.minor,
                       static_cast<double>(props_.totalGlobalMem) / (1u << 30));
  }

  // Decode steps (up to StepGraphs::kMaxGraphTokens tokens) replay as CUDA graphs, one per
  // token count and attention length bucket: attention is launched for the bucket's length
  // (a power of two, at least 256) and skips the positions past each token's own.
  void run_step(std::int64_t tokens, std::int64_t max_position, const std::function<void()>& ops) override {
    use_device(device_);
    forget_released_weights();
    // Streamed layers are loaded by the host between operations: nothing a recording could
    // replay, so such steps run directly (inputs still staged once per step).
    if (rings_ > 0) return graphs_.run_direct(ops);
    std::int64_t bucket = 256;
    while (bucket < max_position + 1) bucket *= 2;
    step_max_len_ = bucket;
    const std::uint64_t key = static_cast<std::uint64_t>(tokens) << 32 | static_cast<std::uint64_t>(bucket);
    try {
      graphs_.run(key, tokens, ops);
    } catch (...) {
      step_max_len_ = 0;
      throw;
    }
    step_max_len_ = 0;
  }

  // 2 GiB (far beyond the 50-60 MB L2) read by 8 blocks per multiprocessor: median of 5 passes.
  double measure_read_bandwidth() override {
    use_device(device_);
    constexpr std::size_t kBytes = std::size_t{2} << 30;
    DeviceBuffer buffer(device_, kBytes + 256, "the bandwidth probe");
    check(cudaMemsetAsync(buffer.data(), 1, kBytes + 256, stream_.get()), "the bandwidth probe");
    auto* sink = reinterpret_cast<unsigned*>(buffer.as<std::uint8_t>() + kBytes);
    cudaEvent_t start, stop;
    check(cudaEventCreate(&start), "creating an event");
    check(cudaEventCreate(&stop), "creating an event");
    std::vector<float> ms;
    for (int pass = 0; pass < 6; ++pass) {
      check(cudaEventRecord(start, stream_.get()), "the bandwidth probe");
      check(kernels::read_all(buffer.data(), kBytes, 8 * props_.multiProcessorCount, sink, stream_.get()), "the bandwidth probe");
      check(cudaEventRecord(stop, stream_.get()), "the bandwidth probe");
      check(cudaEventSynchronize(stop), "the bandwidth probe");
      float elapsed = 0;
      check(cudaEventElapsedTime(&elapsed, start, stop), "the bandwidth probe");
      if (pass > 0) ms.push_back(elapsed);  // the first warms up
    }
    (void)cudaEventDestroy(start);
    (void)cudaEventDestroy(stop);
    std::sort(ms.begin(), ms.end());
    return static_cast<double>(kBytes) / (ms[ms.size() / 2] * 1e-3) / 1e9;
  }

  std::unique_ptr<WeightRing> create_weight_ring(int slots, std::uint64_t slot_bytes) override {
    use_device(device_);
    return std::make_unique<CudaWeightRing>(device_, stream_.get(), weights_, threads_, slots, slot_bytes, rings_);
  }

  float* allocate(std::size_t count) override {
    use_device(device_);
    buffers_.emplace_back(device_, count * sizeof(float), "activations");
    if (count > 0)
      check(cudaMemsetAsync(buffers_.back().data(), 0, count * sizeof(float), stream_.get()), "clearing activations");
    return buffers_.back().as<float>();
  }

  void read(const float* src, std::size_t count, float* host) override {
    use_device(device_);
    if (graphs_.in_step()) fail("CUDA: results are read after a step, not within it");
    check(cudaMemcpyAsync(host, src, count * sizeof(float), cudaMemcpyDeviceToHost, stream_.get()),
          "copying results from the GPU");
    check(cudaStreamSynchronize(stream_.get()), fmt::format("running on GPU {}", device_));
  }

  void write(const float* host, std::size_t count, float* dst) override {
    use_device(device_);
    if (graphs_.in_step()) fail("CUDA: write() within a step (pass inputs through the operations)");
    check(cudaMemcpyAsync(dst, host, count * sizeof(float), cudaMemcpyHostToDevice, stream_.get()), "copying to the GPU");
    check(cudaStreamSynchronize(stream_.get()), fmt::format("copying to GPU {}", device_));
  }

  // Rows decoded on the host (a pass needs n rows of the table: microseconds), then one copy.
  void embed(const quant::Matrix& table, std::span<const std::int32_t> ids, float* out) override {
    use_device(device_);
    const auto row_floats = static_cast<std::size_t>(table.cols);
    const std::size_t bytes = ids.size() * row_floats * sizeof(float);
    for (std::int32_t id : ids)
      if (id < 0 || id >= table.rows) fail("token id {} is outside the vocabulary (0..{})", id, table.rows - 1);
    auto* rows = static_cast<float*>(graphs_.host_slot(bytes));
    for (std::size_t t = 0; t < ids.size(); ++t)
      quant::decode_to_f32(table.type, {table.data + static_cast<std::size_t>(ids[t]) * table.row_bytes, table.row_bytes},
                           {rows + t * row_floats, row_floats});
    graphs_.launch((Signature(kEmbed) << out << static_cast<std::uint64_t>(bytes)).value());
    graphs_.copy(rows, out, bytes);
  }

  using Backend::matmul;
  void matmul(std::span<const quant::Matrix* const> ws, const float* x, std::int64_t n,
              std::span<float* const> ys) override {
    use_device(device_);
    if (ws.size() != ys.size()) fail("matmul: {} matrices but {} outputs", ws.size(), ys.size());
    device_matrices_.clear();
    Signature sig(kMatmul);
    sig << x << n;
    for (std::size_t i = 0; i < ws.size(); ++i) {
      device_matrices_.push_back(&cached_weights().matrix(*ws[i]));
      sig << device_matrices_.back()->data << ys[i];
    }
    if (!graphs_.launch(sig.value())) return;
    matmul_->run(device_matrices_, x, n, ys);
  }

  void rms_norm(const float* x, const float* weight, std::int64_t width, std::int64_t rows, double eps,
                float* y) override {
    use_device(device_);
    const float* w = cached_weights().vector({weight, static_cast<std::size_t>(width)});
    if (!graphs_.launch((Signature(kRmsNorm) << x << w << width << rows << eps << y).value())) return;
    check(kernels::rms_norm(x, w, width, rows, static_cast<float>(eps), y, stream_.get()), "rms_norm");
  }

  void add_bias(float* x, std::span<const float> bias, std::int64_t rows) override {
    use_device(device_);
    const float* b = cached_weights().vector(bias);
    if (!graphs_.launch((Signature(kAddBias) << x << b << rows).value())) return;
    check(kernels::add_bias(x, b, static_cast<std::int64_t>(bias.size()), rows, stream_.get()), "add_bias");
  }

  void add(float* x, const float* y, std::int64_t count) override {
    use_device(device_);
    if (!graphs_.launch((Signature(kAdd) << x << y << count).value())) return;
    check(kernels::add(x, y, count, stream_.get()), "add");
  }

  void silu_mul(const float* gate, const float* up, std::int64_t count, float* out) override {
    use_device(device_);
    if (!graphs_.launch((Signature(kSiluMul) << gate << up << count << out).value())) return;
    check(kernels::silu_mul(gate, up, count, out, stream_.get()), "silu_mul");
  }

  void gelu_tanh_mul(const float* gate, const float* up, std::int64_t count, float* out) override {
    use_device(device_);
    if (!graphs_.launch((Signature(kGeluTanhMul) << gate << up << count << out).value())) return;
    check(kernels::gelu_tanh_mul(gate, up, count, out, stream_.get()), "gelu_tanh_mul");
  }

  void scale(float* x, std::int64_t count, float factor) override {
    use_device(device_);
    if (!graphs_.launch((Signature(kScale) << x << count << static_cast<double>(factor)).value())) return;
    check(kernels::scale(x, count, factor, stream_.get()), "scale");
  }

  void softcap(float* x, std::int64_t count, float cap) override {
    use_device(device_);
    if (!(cap > 0)) fail("softcap: the cap must be positive, not {}", cap);
    if (!graphs_.launch((Signature(kSoftcap) << x << count << static_cast<double>(cap)).value())) return;
    check(kernels::softcap(x, count, cap, stream_.get()), "softcap");
  }

  void gather_rows(const float* src, std::span<const std::int32_t> rows, std::int64_t width, float* dst) override {
    use_device(device_);
    const auto* r = static_cast<const std::int32_t*>(graphs_.input(rows.data(), rows.size_bytes()));
    if (!graphs_.launch((Signature(kGather) << src << r << static_cast<std::uint64_t>(rows.size()) << width << dst).value()))
      return;
    check(kernels::gather_rows(src, r, static_cast<std::int64_t>(rows.size()), width, dst, stream_.get()), "gather_rows");
  }

  void scatter_add_rows(const float* src, std::span<const std::int32_t> rows, std::span<const float> weights,
                        std::int64_t width, float* dst) override {
    use_device(device_);
    if (weights.size() != rows.size()) fail("scatter_add_rows: {} weights for {} rows", weights.size(), rows.size());
    const auto* r = static_cast<const std::int32_t*>(graphs_.input(rows.data(), rows.size_bytes()));
    const auto* w = static_cast<const float*>(graphs_.input(weights.data(), weights.size_bytes()));
    if (!graphs_.launch(
            (Signature(kScatterAdd) << src << r << w << static_cast<std::uint64_t>(rows.size()) << width << dst).value()))
      return;
    check(kernels::scatter_add_rows(src, r, w, static_cast<std::int64_t>(rows.size()), width, dst, stream_.get()),
          "scatter_add_rows");
  }

  void rope(float* x, std::int64_t n, std::int64_t heads, std::int64_t head_dim, std::span<const float> cos_sin,
            model::RopeLayout layout) override {
    use_device(device_);
    if (head_dim % 2 != 0) fail("rope: head dimension {} is odd", head_dim);
    if (static_cast<std::int64_t>(cos_sin.size()) < n * head_dim)
      fail("rope: {} angles for {} tokens of head dimension {}", cos_sin.size() / 2, n, head_dim);
    const auto* table = static_cast<const float*>(graphs_.input(cos_sin.data(), cos_sin.size_bytes()));
    const bool half_split = layout == model::RopeLayout::HalfSplit;
    if (!graphs_.launch((Signature(kRope) << x << n << heads << head_dim << table << int{half_split}).value())) return;
    check(kernels::rope(x, n, heads, head_dim, table, half_split, stream_.get()), "rope");
  }

  std::unique_ptr<KvCache> create_kv_cache(std::int64_t layers, std::int64_t kv_heads, std::int64_t head_dim,
                                           std::int64_t capacity, std::int64_t slots, KvType type) override {
    use_device(device_);
    if (head_dim % 4 != 0 || head_dim > kernels::kAttentionMaxHeadDim)
      fail("CUDA: attention takes heads of a multiple of 4 elements up to {}, not {}", kernels::kAttentionMaxHeadDim, head_dim);
    const std::size_t shared = kernels::attention_shared_bytes(static_cast<int>(head_dim));
    if (shared > props_.sharedMemPerBlockOptin)
      fail("CUDA: attention over heads of {} needs {} KiB of shared memory per block; GPU {} offers {} KiB", head_dim,
           shared / 1024, device_, props_.sharedMemPerBlockOptin / 1024);
    return std::make_unique<CudaKvCache>(device_, layers, kv_heads, head_dim, capacity, slots, type, stream_.get());
  }

  void attention(KvCache& cache_base, std::int64_t layer, const float* q, const float* k, const float* v,
                 std::span<const std::int32_t> slots, std::span<const std::int32_t> positions, std::int64_t heads,
                 float* out, const AttentionOptions& options) override {
    use_device(device_);
    if (options.window < 0 || options.window > std::numeric_limits<int>::max())
      fail("attention: a sliding window of {} positions", options.window);
    auto& cache = static_cast<CudaKvCache&>(cache_base);
    const std::int64_t n = static_cast<std::int64_t>(positions.size()), d = cache.head_dim(), kv_heads = cache.kv_heads();
    if (slots.size() != positions.size()) fail("attention: {} slots for {} positions", slots.size(), positions.size());
    if (n == 0) return;
    if (heads % kv_heads != 0) fail("attention: {} query heads cannot share {} key/value heads evenly", heads, kv_heads);
    const std::int64_t group = heads / kv_heads;
    // One upload for every layer of a pass: positions, cache rows, and the query tiles (each
    // within one slot's run of consecutive tokens).
    plan_.resize(static_cast<std::size_t>(2 * n));
    std::int32_t max_position = 0;
    for (std::int64_t t = 0; t < n; ++t) {
      const std::int32_t slot = slots[static_cast<std::size_t>(t)], pos = positions[static_cast<std::size_t>(t)];
      if (slot < 0 || slot >= cache.slots()) fail("slot {} is outside the KV cache's {} slots", slot, cache.slots());
      if (pos < 0 || pos >= cache.capacity()) fail("position {} is outside the context of {} tokens", pos, cache.capacity());
      max_position = std::max(max_position, pos);
      plan_[static_cast<std::size_t>(t)] = pos;
      plan_[static_cast<std::size_t>(n + t)] = static_cast<std::int32_t>(slot * cache.capacity() + pos);
    }
    for (std::int64_t t0 = 0, t1; t0 < n; t0 = t1) {
      const std::int32_t slot = slots[static_cast<std::size_t>(t0)];
      for (t1 = t0 + 1; t1 < n && slots[static_cast<std::size_t>(t1)] == slot;) ++t1;
      for (std::int64_t r = t0 * group; r < t1 * group; r += kernels::kAttentionRows)
        plan_.insert(plan_.end(), {static_cast<std::int32_t>(r),
                                   static_cast<std::int32_t>(std::min<std::int64_t>(kernels::kAttentionRows, t1 * group - r)),
                                   static_cast<std::int32_t>(slot * cache.capacity())});
    }
    const auto* device_plan = static_cast<const std::int32_t*>(graphs_.input(plan_.data(), plan_.size() * sizeof(std::int32_t)));
    const kernels::KvLayer kv = cache.layer(layer);

    kernels::AttentionCall call;
    call.layer = kv;
    call.q = q;
    call.out = out;
    call.positions = device_plan;
    call.tiles = device_plan + 2 * n;
    call.tile_count = static_cast<int>((static_cast<std::int64_t>(plan_.size()) - 2 * n) / 3);
    call.n = n;
    call.heads = static_cast<int>(heads);
    call.scale = static_cast<float>(options.scale > 0 ? options.scale : 1.0 / std::sqrt(static_cast<double>(d)));  // as the CPU's
    call.softcap = static_cast<float>(options.softcap);
    call.window = static_cast<int>(options.window);
    // In a step, the bucket's length: the launch is the same for every step of the bucket.
    call.max_len = static_cast<int>(std::max<std::int64_t>(max_position + 1, std::min(step_max_len_, cache.capacity())));
    choose_splits(call);
    const auto scratch = kernels::attention_scratch_floats(n, call.heads, static_cast<int>(d), call.splits);
    if (!graphs_.launch((Signature(kAttention) << kv.keys << q << k << v << out << device_plan << n << heads
                         << call.tile_count << call.max_len << call.splits << static_cast<double>(call.scale)
                         << static_cast<double>(call.softcap) << call.window)
                            .value()))
      return;
    check(kernels::kv_store(kv, k, v, device_plan + n, n, stream_.get()), "storing keys and values");
    if (static_cast<std::size_t>(scratch) * sizeof(float) > attention_scratch_.bytes()) {
      check(cudaStreamSynchronize(stream_.get()), "waiting before growing attention scratch");
      attention_scratch_ = DeviceBuffer(device_, static_cast<std::size_t>(scratch) * sizeof(float), "attention scratch");
    }
    call.scratch = attention_scratch_.as<float>();
    check(kernels::attention(call, stream_.get()), "attention");
  }

 private:
  static cudaDeviceProp properties(int device) {
    cudaDeviceProp p{};
    check(cudaGetDeviceProperties(&p, device), fmt::format("reading GPU {}'s properties", device));
    return p;
  }

  // Few blocks (one token: a tile per key/value head) over many positions leave most of the
  // GPU idle: split the positions so that about two blocks per multiprocessor run, none
  // covering fewer than kMinSplitKeys (two tiles).
  void choose_splits(kernels::AttentionCall& call) const {
    constexpr std::int64_t kMinSplitKeys = 64, kMaxSplits = 64;
    const std::int64_t blocks = std::int64_t{call.tile_count} * call.layer.kv_heads, target = 2 * static_cast<std::int64_t>(props_.multiProcessorCount);
    std::int64_t splits = 1;
    if (blocks < target && call.max_len > 2 * kMinSplitKeys)
      splits = std::min({ceil_div(target, blocks), ceil_div(call.max_len, kMinSplitKeys), kMaxSplits});
    std::int64_t split_len = call.max_len;
    if (splits > 1) {
      split_len = ceil_div(ceil_div(call.max_len, splits), kernels::kAttentionKeys) * kernels::kAttentionKeys;
      splits = ceil_div(call.max_len, split_len);
    }
    call.splits = static_cast<int>(splits);
    call.split_len = static_cast<int>(splits > 1 ? split_len : call.max_len);
  }

  // Device copies of weights are kept under their host addresses: once an owner of such memory
  // has freed it, they may name other weights. Checked before a step (never inside one: a
  // recording cannot wait for the GPU) and before an operation outside steps.
  void forget_released_weights() {
    const std::uint64_t epoch = host_weights_epoch();
    if (epoch == weights_epoch_ || graphs_.in_step()) return;
    weights_.forget_uploads();
    weights_epoch_ = epoch;
  }
  WeightCache& cached_weights() {
    forget_released_weights();
    return weights_;
  }

  int device_;
  unsigned threads_;
  std::atomic<int> rings_{0};  // weight rings alive
  std::uint64_t weights_epoch_ = host_weights_epoch();  // releases of host weights seen
  cudaDeviceProp props_;
  Stream stream_;  // declared first of the members that use it: destroyed after them
  WeightCache weights_;
  StepGraphs graphs_;
  std::int64_t step_max_len_ = 0;  // attention's launch length within a step
  std::vector<std::int32_t> plan_;  // one attention call's positions, cache rows, tiles
  DeviceBuffer attention_scratch_;
  std::vector<DeviceBuffer> buffers_;
  std::vector<const DeviceMatrix*> device_matrices_;
  std::unique_ptr<Matmul> matmul_;  // destroyed first
};

}  // namespace

std::unique_ptr<Backend> make_cuda_backend(int index, unsigned threads) {
  return std::make_unique<CudaBackend>(index, threads);
}

}  // namespace aero::backend::cuda
