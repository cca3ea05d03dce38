// The operations a transformer forward pass needs, implemented once per device (cpu, cuda).
// Model code is written once against this interface; a new device adds an implementation,
// not a model. Activation buffers come from the backend (host memory on the CPU, device
// memory on a GPU); token ids, positions, rope angles and weights (matrices, norm vectors,
// biases) are passed from the host. Weights are immutable model data that outlive the
// backend's use of them: a GPU backend uploads each once, keyed by its host address.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "aero/model/rope.h"
#include "aero/quant/matrix.h"

namespace aero::backend {

// Element type of the key/value cache.
enum class KvType { F32, F16, Q8_0 };
KvType kv_type_by_name(std::string_view name);  // "f32" | "f16" | "q8_0"; throws otherwise
std::string_view kv_type_name(KvType type);

// A layer's attention beyond causal softmax(q·kᵀ/√head_dim) over every earlier position
// (Gemma's, Phi-3's): scores scaled by `scale` instead (0: 1/√head_dim), soft-capped to
// cap·tanh(score/cap) (0: not), and only the last `window` positions seen, the token's own
// among them (0: all).
struct AttentionOptions {
  double scale = 0;
  double softcap = 0;
  std::int64_t window = 0;
};

// Keys and values of every layer for `slots` independent sequences, each with positions
// [0, capacity), kept by the backend. A slot is one sequence's cache: a batch of sequences
// decodes together in one forward pass, each token stored and attending in its own slot.
class KvCache {
 public:
  virtual ~KvCache() = default;
  virtual std::int64_t capacity() const = 0;  // positions per slot
  virtual std::int64_t slots() const = 0;
  virtual std::uint64_t bytes() const = 0;

  // A layer's rows moved between caches of two backends of the same shape and type (a pass that
  // computes a layer on another backend than the one holding its cache): positions [begin,
  // begin + count) of one slot as bytes in the encoding both backends store (f32, f16, q8_0
  // blocks), keys then values, head by head, `count` rows each: count × position_bytes() in all.
  // Default: refused (aero::Error).
  virtual std::uint64_t position_bytes() const { return 0; }
  virtual void read_rows(std::int64_t layer, std::int64_t slot, std::int64_t begin, std::int64_t count,
                         std::uint8_t* host) const;
  virtual void write_rows(std::int64_t layer, std::int64_t slot, std::int64_t begin, std::int64_t count,
                          const std::uint8_t* host);
};

// A ring of buffers in a device's memory that weight matrices kept in host memory are copied
// into before a pass reads them: layer streaming (models larger than the GPU's memory). The
// copies run on their own queue, overlapped with the computation, ordered by events: a load
// into a slot waits for the last computation that read it, a computation waits for its slot's
// load. Nothing is allocated or freed per load.
class WeightRing {
 public:
  virtual ~WeightRing() = default;
  virtual int slots() const = 0;
  virtual std::uint64_t slot_bytes() const = 0;
  // Device bytes `ms` take in a slot (each matrix aligned; a format the device does not read
  // counted as the one it is converted to).
  virtual std::uint64_t bytes_in_slot(std::span<const quant::Matrix* const> ms) const = 0;
  // A copy of `m` in host memory the device copies from at full speed (pinned), in a format
  // the device reads, owned by the ring: the form in which a layer kept in RAM streams.
  virtual quant::Matrix keep(const quant::Matrix& m) = 0;
  // Queues the copy of `ms` (host memory: keep()'s, or any, which is slower) into `slot`, after
  // the last computation that read the slot; returns once the host bytes may change again
  // (at once for keep()'s memory).
  virtual void load(int slot, std::span<const quant::Matrix* const> ms) = 0;
  // The last load into `slot` will not be read (a pass of another kind comes next): the next
  // load may replace it. (Loads into one slot are queued in order: nothing to wait for.)
  virtual void discard(int slot) { (void)slot; }
  // The operations queued from now on read `ms` from `slot` (the device waits for the load),
  // until retire(slot).
  virtual void bind(int slot, std::span<const quant::Matrix* const> ms) = 0;
  // The operations queued so far are the last to read `slot`'s matrices.
  virtual void retire(int slot) = 0;
  // Bytes loaded since creation.
  virtual std::uint64_t bytes_loaded() const = 0;
};

// Host memory that held weights (a model's norms and mapped tensors, streamed layers' pinned
// copies) was freed: a backend that keeps device copies of weights under their host addresses
// (CUDA) forgets them before its next step, since the addresses may now hold other weights.
// Called by the owners of that memory as they go; host_weights_epoch() counts the calls.
void host_weights_released();
std::uint64_t host_weights_epoch();

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string name() const = 0;

  // Called once per model before it runs, with the matrices of one layer and the output head,
  // and the weight bytes one token reads: a backend may measure here how best to run them (the
  // CPU backend calibrates its one-token products, cpu_calibration.h). Default: nothing.
  virtual void prepare(std::span<const quant::Matrix* const> matrices, std::uint64_t bytes_per_token) {
    (void)matrices;
    (void)bytes_per_token;
  }

  // One forward pass: `ops` queues its operations (everything but reading results back) for
  // `tokens` tokens, the latest at `max_position`. A GPU backend may record the operations of
  // a shape once and replay the recording afterwards (the CUDA backend: a CUDA graph), running
  // `ops` with launches suppressed to gather the step's inputs: `ops` must do nothing but call
  // this backend, and may run more than once. Default: ops().
  virtual void run_step(std::int64_t tokens, std::int64_t max_position, const std::function<void()>& ops) {
    (void)tokens;
    (void)max_position;
    ops();
  }

  // GB/s of reading the memory the weights live in (the bound of generating a token), measured
  // now; 0 when the backend does not measure its own (the CPU's probe is memory_bandwidth.h's).
  virtual double measure_read_bandwidth() { return 0; }

  // A ring of `slots` buffers of `slot_bytes` each for streaming weights into the backend's
  // memory (WeightRing); null for a backend that computes where the weights lie (the CPU).
  // Throws aero::Error when the memory is not there. While a ring exists, steps run directly
  // (a CUDA graph cannot wait on the host).
  virtual std::unique_ptr<WeightRing> create_weight_ring(int slots, std::uint64_t slot_bytes) {
    (void)slots;
    (void)slot_bytes;
    return nullptr;
  }

  // A buffer of `count` floats in the backend's memory, alive as long as the backend.
  virtual float* allocate(std::size_t count) = 0;
  // Copies `count` floats out of backend memory into host memory; waits for the work before.
  virtual void read(const float* src, std::size_t count, float* host) = 0;
  // Copies `count` floats from host memory into backend memory (inputs built on the host).
  virtual void write(const float* host, std::size_t count, float* dst) = 0;

  // out[t] = row ids[t] of `table`, as f32.
  virtual void embed(const quant::Matrix& table, std::span<const std::int32_t> ids, float* out) = 0;
  // y_i[t] = W_i · x[t] for n rows and each matrix of a group sharing the input (x: n × cols,
  // y_i: n × W_i.rows): q, k and v, or gate and up, go as one call.
  virtual void matmul(std::span<const quant::Matrix* const> ws, const float* x, std::int64_t n,
                      std::span<float* const> ys) = 0;
  void matmul(const quant::Matrix& w, const float* x, std::int64_t n, float* y) {
    const quant::Matrix* ws[] = {&w};
    float* ys[] = {y};
    matmul(ws, x, n, ys);
  }
  // y = x / rms(x) · weight, per row of `width` (rows may be heads); y may be x. `weight`
  // (width floats) is host memory, as biases are.
  virtual void rms_norm(const float* x, const float* weight, std::int64_t width, std::int64_t rows, double eps,
                        float* y) = 0;
  // x[r] += bias for each of `rows` rows of bias.size().
  virtual void add_bias(float* x, std::span<const float> bias, std::int64_t rows) = 0;
  // x += y, elementwise.
  virtual void add(float* x, const float* y, std::int64_t count) = 0;
  // out = silu(gate) · up, elementwise.
  virtual void silu_mul(const float* gate, const float* up, std::int64_t count, float* out) = 0;
  // out = gelu(gate) · up, elementwise, GELU in its tanh form (Gemma's gate):
  // gelu(x) = x/2 · (1 + tanh(√(2/π) · (x + 0.044715 x³))).
  virtual void gelu_tanh_mul(const float* gate, const float* up, std::int64_t count, float* out) = 0;
  // x *= factor, elementwise (Gemma's embedding scale).
  virtual void scale(float* x, std::int64_t count, float factor) = 0;
  // x = cap · tanh(x / cap), elementwise (Gemma 2's logit soft-capping).
  virtual void softcap(float* x, std::int64_t count, float cap) = 0;
  // dst[i] = src[rows[i]] for each i, rows of `width` floats (a mixture of experts gathers the
  // tokens routed to one expert). Default: through read() and write(), row by row.
  virtual void gather_rows(const float* src, std::span<const std::int32_t> rows, std::int64_t width, float* dst) {
    std::vector<float> row(static_cast<std::size_t>(width));
    for (std::size_t i = 0; i < rows.size(); ++i) {
      read(src + rows[i] * width, row.size(), row.data());
      write(row.data(), row.size(), dst + static_cast<std::int64_t>(i) * width);
    }
  }
  // dst[rows[i]] += weights[i] · src[i] for each i in order, rows of `width` floats (and adds
  // each expert's weighted output to its tokens' rows). Default: through read() and write().
  virtual void scatter_add_rows(const float* src, std::span<const std::int32_t> rows, std::span<const float> weights,
                                std::int64_t width, float* dst) {
    std::vector<float> in(static_cast<std::size_t>(width)), out(static_cast<std::size_t>(width));
    for (std::size_t i = 0; i < rows.size(); ++i) {
      read(src + static_cast<std::int64_t>(i) * width, in.size(), in.data());
      read(dst + rows[i] * width, out.size(), out.data());
      for (std::size_t c = 0; c < out.size(); ++c) out[c] += weights[i] * in[c];
      write(out.data(), out.size(), dst + rows[i] * width);
    }
  }
  // Rotates each head of n tokens (n × heads × head_dim) by its token's angles, given as
  // model::rope_table (n × head_dim/2 × {cos, sin}).
  virtual void rope(float* x, std::int64_t n, std::int64_t heads, std::int64_t head_dim,
                    std::span<const float> cos_sin, model::RopeLayout layout) = 0;

  virtual std::unique_ptr<KvCache> create_kv_cache(std::int64_t layers, std::int64_t kv_heads, std::int64_t head_dim,
                                                   std::int64_t capacity, std::int64_t slots, KvType type) = 0;
  // Stores the n tokens' keys and values (n × kv_heads × head_dim) in `layer` at their slot
  // and position (slots[t], positions[t]), then writes to `out` (n × heads × head_dim) each
  // query head's causal attention over positions 0..positions[t] of its token's slot. Tokens
  // of one call may belong to any slots in any order (consecutive tokens of one slot attend
  // together, the cheapest case: a prompt chunk); every key and value of the call is stored
  // before any attention, so the tokens of a chunk see each other causally. No two tokens of a
  // call share a (slot, position). Query heads share key/value heads in groups. `options`: the
  // layer's scale, soft-cap and sliding window.
  virtual void attention(KvCache& cache, std::int64_t layer, const float* q, const float* k, const float* v,
                         std::span<const std::int32_t> slots, std::span<const std::int32_t> positions,
                         std::int64_t heads, float* out, const AttentionOptions& options = {}) = 0;
};

std::unique_ptr<Backend> make_cpu_backend(unsigned threads);

// A device as the command line names it: "auto" (the first CUDA GPU when this build has the
// CUDA backend and a GPU is present, else the CPU), "cpu", "cuda" (GPU 0) or "cuda:N".
struct Device {
  enum class Kind { Cpu, Cuda } kind = Kind::Cpu;
  int index = 0;  // the GPU, for Cuda
};
// Parses and resolves a device name; "auto" becomes cpu or cuda:0 here. Throws aero::Error
// (one line) for an unknown name, for cuda in a build without CUDA, and when no GPU (or no
// driver) answers or there is no GPU N.
Device choose_device(std::string_view name);
std::string device_name(const Device& device);  // "cpu", "cuda:0"

// The backend for a device name (choose_device's names); `threads` are the CPU backend's
// compute threads (the CUDA backend uses them only to convert weights at upload).
std::unique_ptr<Backend> make_backend(std::string_view device, unsigned threads);
std::unique_ptr<Backend> make_backend(const Device& device, unsigned threads);

// The CUDA GPUs this process can use; empty in a build without CUDA or when no driver or GPU
// answers (never throws for that), with the reason in `why` when given.
struct GpuInfo {
  int index = 0;
  std::string name;
  std::uint64_t total_bytes = 0, free_bytes = 0;
  int cc_major = 0, cc_minor = 0;  // compute capability
};
std::vector<GpuInfo> list_gpus(std::string* why = nullptr);
// True when this build has the CUDA backend (whether or not a GPU is present).
bool built_with_cuda();

// Pinned host→GPU copies on GPU `index`, GB/s: alone, and while `cpu_pass` (one pass of the CPU
// reading RAM with every core, returning its GB/s) runs beside them, with the CPU's rate then:
// whether RAM has room for the copies and the CPU's layers together (the planner's ram_total).
// Zeros in a build without CUDA or when the copies cannot be set up (the plan then assumes).
struct HostCopyProbe {
  double copy = 0;           // copies alone
  double copy_with_cpu = 0;  // copies while the CPU reads
  double cpu_with_copy = 0;  // the CPU's reads meanwhile
};
HostCopyProbe probe_host_copies(int index, const std::function<double()>& cpu_pass);

}  // namespace aero::backend
