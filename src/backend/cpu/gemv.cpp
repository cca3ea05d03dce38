#include <cpuid.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstring>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "aero/backend/cpu_gemv.h"
#include "aero/error.h"
#include "backend/cpu/dot.h"
#include "quant/half.h"

namespace aero::backend::cpu {
namespace {

using quant::GgmlType;

DotFn dot_field(GgmlType type, const DotKernels& k) {
  switch (type) {
    case GgmlType::F32: return k.f32;
    case GgmlType::F16: return k.f16;
    case GgmlType::BF16: return k.bf16;
    case GgmlType::Q8_0: return k.q8_0;
    case GgmlType::Q4_0: return k.q4_0;
    case GgmlType::Q4_K: return k.q4_k;
    case GgmlType::Q5_K: return k.q5_k;
    case GgmlType::Q6_K: return k.q6_k;
    default: return nullptr;
  }
}

ActivationLayout layout_field(GgmlType type, const DotKernels& k) {
  switch (type) {
    case GgmlType::Q8_0: return k.act_q8_0;
    case GgmlType::Q4_0: return k.act_q4_0;
    case GgmlType::Q4_K: return k.act_q4_k;
    case GgmlType::Q5_K: return k.act_q5_k;
    case GgmlType::Q6_K: return k.act_q6_k;
    case GgmlType::BF16: return k.act_bf16;
    default: return {};
  }
}

TileFn tile_for(GgmlType type, const DotKernels& k) {
  switch (type) {
    case GgmlType::F32: return k.tile_f32;
    case GgmlType::F16: return k.tile_f16;
    case GgmlType::BF16: return k.tile_bf16;
    case GgmlType::Q8_0: return k.tile_q8_0;
    case GgmlType::Q4_0: return k.tile_q4_0;
    case GgmlType::Q4_K: return k.tile_q4_k;
    case GgmlType::Q5_K: return k.tile_q5_k;
    default: return nullptr;
  }
}

// The decode-then-dot fallback sees a block format's activations as an integer kernel would:
// quantized as ggml pairs the format (Q8_K for 256-column blocks, else Q8_0) and decoded back
// to f32, so that every path computes the same product of a format.
template <GgmlType kAct>
void prepare_dequantized(const float* x, std::int64_t cols, std::uint8_t* out) {
  thread_local std::vector<std::uint8_t> blocks;
  blocks.resize(*quant::row_bytes(*quant::type_traits(static_cast<std::uint32_t>(kAct)), static_cast<std::uint64_t>(cols)));
  quant::encode_from_f32(kAct, {x, static_cast<std::size_t>(cols)}, blocks);
  quant::decode_to_f32(kAct, blocks, {reinterpret_cast<float*>(out), static_cast<std::size_t>(cols)});
}

std::size_t f32_bytes(std::int64_t cols) { return static_cast<std::size_t>(cols) * sizeof(float); }

ActivationLayout fallback_layout(const quant::TypeTraits& traits) {
  if (traits.block_elements == 256) return {f32_bytes, prepare_dequantized<GgmlType::Q8_K>};
  if (traits.block_elements == 32) return {f32_bytes, prepare_dequantized<GgmlType::Q8_0>};
  return {};  // float formats: as they are
}

// Rows per task: `task_kib` of weights, or fewer so that each thread gets `tasks_per_thread` of a
// small matrix; whole groups of kMaxRows, so that row × token tiles fill. Rows read in sequence
// make one stream per task, and longer ones did better there (1 MiB and two per thread on Zen 4:
// generation +4-22% Q4_K_M over 256 KiB and eight); the calibration decides per machine.
std::int64_t rows_per_task(const quant::Matrix& w, unsigned threads, const GemvVariant& v) {
  const std::size_t task_bytes = std::size_t{v.task_kib} << 10;
  const std::int64_t by_bytes = std::max<std::int64_t>(1, static_cast<std::int64_t>(task_bytes / std::max<std::size_t>(w.row_bytes, 1)));
  const std::int64_t by_balance =
      std::max<std::int64_t>(1, w.rows / (std::int64_t{std::max<std::uint32_t>(v.tasks_per_thread, 1)} * static_cast<std::int64_t>(threads)));
  return (std::min(by_bytes, by_balance) + kMaxRows - 1) / kMaxRows * kMaxRows;
}

// The calibrated variant of each format (type id → packed variant; 0: none set).
constexpr std::size_t kTypeSlots = 64;
std::array<std::atomic<std::uint64_t>, kTypeSlots> chosen_variants{};

std::uint64_t pack(const GemvVariant& v) {
  return 1u | (std::uint64_t{v.narrow} << 1) | (std::uint64_t{v.order == RowOrder::Sequence} << 2) |
         (std::uint64_t(v.prefetch_ahead & 0xff) << 8) | (std::uint64_t{v.tasks_per_thread & 0xffff} << 16) |
         (std::uint64_t{v.task_kib} << 32);
}

GemvVariant unpack(std::uint64_t p) {
  GemvVariant v;
  v.narrow = p & 2;
  v.order = p & 4 ? RowOrder::Sequence : RowOrder::Groups;
  v.prefetch_ahead = static_cast<int>((p >> 8) & 0xff);
  v.tasks_per_thread = static_cast<std::uint32_t>((p >> 16) & 0xffff);
  v.task_kib = static_cast<std::uint32_t>(p >> 32);
  return v;
}

// AERO_GEMV_ROWS's order imposed on a variant (sequence reads one stream: no prefetch).
GemvVariant with_override(GemvVariant v) {
  if (const auto order = gemv_row_order_override(); order && *order != v.order) {
    v.order = *order;
    v.prefetch_ahead = *order == RowOrder::Sequence ? 0 : 1;
  }
  return v;
}

}  // namespace

RowKernel row_kernel(GgmlType type, const DotKernels& k) {
  if (DotFn dot = dot_field(type, k)) return {dot, layout_field(type, k)};
  if (const RowKernel* generic = k.block_rows ? k.block_rows(type) : nullptr) return *generic;
  return {};
}

std::optional<RowOrder> gemv_row_order_override() {
  static const std::optional<RowOrder> order = []() -> std::optional<RowOrder> {
    const char* env = std::getenv("AERO_GEMV_ROWS");
    if (!env) return std::nullopt;
    const std::string_view v(env);
    if (v == "groups") return RowOrder::Groups;
    if (v == "sequence") return RowOrder::Sequence;
    fail("AERO_GEMV_ROWS must be groups or sequence, not '{}'", v);
  }();
  return order;
}

bool batch_invariant_products() {
  static const bool on = [] {
    const char* env = std::getenv("AERO_BATCH_INVARIANT");
    const std::string_view v = env ? env : "0";
    if (v != "0" && v != "1") fail("AERO_BATCH_INVARIANT must be 0 or 1, not '{}'", v);
    return v == "1";
  }();
  return on;
}

GemvVariant default_gemv_variant() { return with_override(GemvVariant{}); }

GemvVariant gemv_variant(GgmlType type) {
  const auto slot = static_cast<std::size_t>(type);
  const std::uint64_t packed = slot < kTypeSlots ? chosen_variants[slot].load(std::memory_order_relaxed) : 0;
  return packed ? with_override(unpack(packed)) : default_gemv_variant();
}

void set_gemv_variant(GgmlType type, const GemvVariant& variant) {
  const auto slot = static_cast<std::size_t>(type);
  if (slot >= kTypeSlots) fail("no GEMV variant slot for type {}", slot);
  if (variant.task_kib == 0 || variant.prefetch_ahead < 0 || variant.prefetch_ahead > 8)
    fail("invalid GEMV variant ({})", variant.name());
  chosen_variants[slot].store(pack(variant), std::memory_order_relaxed);
}

std::string_view row_order_name(RowOrder order) { return order == RowOrder::Sequence ? "rows in sequence" : "row groups"; }

std::string GemvVariant::name() const {
  std::string s = narrow ? "256-bit rows, " : "";
  s += order == RowOrder::Sequence ? "sequence" : "groups";
  s += prefetch_ahead ? fmt::format(", prefetch {} ahead", prefetch_ahead) : ", no prefetch";
  s += task_kib % 1024 == 0 ? fmt::format(", {} MiB tasks x{}", task_kib / 1024, tasks_per_thread)
                            : fmt::format(", {} KiB tasks x{}", task_kib, tasks_per_thread);
  return s;
}

// Zen 4 executes each 512-bit operation as two 256-bit halves, and read in sequence from DRAM
// the 256-bit row kernels kept up better there (one thread at 2048 columns, share of the probe,
// AVX-512 / AVX2: Q4_0 57 / 80%, Q8_0 75 / 93%): a narrow variant takes them on an AVX-512 CPU.
RowKernel gemv_row_kernel(GgmlType type, Isa isa, const GemvVariant& variant) {
  if (isa == Isa::Avx512 && variant.narrow)
    if (const RowKernel narrow = row_kernel(type, kernels(Isa::Avx2)); narrow.dot) return narrow;
  return row_kernel(type, kernels(isa));
}

// A narrow variant changes a format's results only where the wide set computes something else:
// BF16 on VDPBF16PS rounds the activations to bf16 first, the AVX2 kernel does not.
bool gemv_narrow_applies(GgmlType type) {
  return best_isa() == Isa::Avx512 && !(type == GgmlType::BF16 && rounds_bf16_activations(Isa::Avx512)) &&
         row_kernel(type, kernels(Isa::Avx2)).dot != nullptr;
}

// Each set is built on first use only, and only where the CPU runs it: building one runs code
// compiled for its instruction set (GCC initializes the AVX-512 set with 512-bit stores).
const DotKernels& kernels(Isa isa) {
  if (isa > best_isa()) fail("this CPU cannot run {} kernels", isa_name(isa));
  switch (isa) {
    case Isa::Avx512: {
      static const DotKernels avx512 = avx512_kernels();
      return avx512;
    }
    case Isa::Avx2: {
      static const DotKernels avx2 = avx2_kernels();
      return avx2;
    }
    case Isa::Scalar: break;
  }
  static const DotKernels scalar = scalar_kernels();
  return scalar;
}

// CPUID and XGETBV directly: the features must exist in the CPU and their register state
// must be enabled by the OS. (__builtin_cpu_supports names differ between gcc and clang.)
Isa best_isa() {
  static const Isa isa = [] {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return Isa::Scalar;
    const bool fma = c & (1u << 12), f16c = c & (1u << 29), osxsave = c & (1u << 27), avx = c & (1u << 28);
    if (!(fma && f16c && osxsave && avx)) return Isa::Scalar;
    unsigned xcr0_lo, xcr0_hi;
    __asm__("xgetbv" : "=a"(xcr0_lo), "=d"(xcr0_hi) : "c"(0));
    const bool ymm_state = (xcr0_lo & 0x6) == 0x6, zmm_state = (xcr0_lo & 0xe6) == 0xe6;
    if (!ymm_state || !__get_cpuid_count(7, 0, &a, &b, &c, &d)) return Isa::Scalar;
    const bool avx2 = (b & (1u << 5)) && !cpu_feature_disabled("avx2");
    const bool avx512 = (b & (1u << 16)) && (b & (1u << 30)) && (b & (1u << 31)) && (c & (1u << 11));  // F BW VL VNNI
    if (avx512 && zmm_state && avx2 && !cpu_feature_disabled("avx512")) return Isa::Avx512;
    return avx2 ? Isa::Avx2 : Isa::Scalar;
  }();
  return isa;
}

std::string_view isa_name(Isa isa) {
  switch (isa) {
    case Isa::Scalar: return "scalar";
    case Isa::Avx2: return "avx2";
    case Isa::Avx512: return "avx512";
  }
  return "?";
}

bool has_fast_dot(GgmlType type, Isa isa) { return row_kernel(type, kernels(isa)).dot != nullptr; }

void quantize_activations(bool q8k, const float* x, std::int64_t cols, std::uint8_t* blocks) {
  if (best_isa() == Isa::Avx512) return q8k ? quantize_q8_k_avx512(x, cols, blocks) : quantize_q8_0_avx512(x, cols, blocks);
  if (best_isa() == Isa::Avx2) return q8k ? quantize_q8_k_avx2(x, cols, blocks) : quantize_q8_0_avx2(x, cols, blocks);
  const auto n = static_cast<std::size_t>(cols);
  quant::encode_from_f32(q8k ? GgmlType::Q8_K : GgmlType::Q8_0, {x, n}, {blocks, n / (q8k ? 256 : 32) * (q8k ? 292 : 34)});
}

ActivationBlocks quantize_activation_blocks(bool q8k, const float* x, std::int64_t cols) {
  thread_local std::vector<std::uint8_t> buffer;
  const ActivationBlocks blocks{q8k, nullptr};
  buffer.resize(static_cast<std::size_t>(cols / (q8k ? 256 : 32)) * blocks.block_bytes());
  quantize_activations(q8k, x, cols, buffer.data());
  return {q8k, buffer.data()};
}

namespace {

std::size_t q8_0_bytes(std::int64_t cols) { return static_cast<std::size_t>(cols / 32) * 34; }

void prepare_q8_0(const float* x, std::int64_t cols, std::uint8_t* xq) { quantize_activations(false, x, cols, xq); }

std::size_t q4_0_pairs_bytes(std::int64_t cols) {
  return q4_0_pairs_offset(cols) + static_cast<std::size_t>((cols / 32 + 7) / 8) * kQ4PairChunkBytes;
}

void prepare_q4_0_pairs(const float* x, std::int64_t cols, std::uint8_t* xq) {
  const std::int64_t blocks = cols / 32;
  quantize_activations(false, x, cols, xq);
  std::uint8_t* chunks = xq + q4_0_pairs_offset(cols);
  std::memset(chunks, 0, q4_0_pairs_bytes(cols) - q4_0_pairs_offset(cols));
  for (std::int64_t b = 0; b < blocks; ++b) {
    const std::uint8_t* block = xq + 34 * b;
    std::uint8_t* chunk = chunks + b / 8 * kQ4PairChunkBytes;
    const int i = static_cast<int>(b % 8);
    // Columns 0..15 of the block into its half of the pair's first 32 bytes, 16..31 into the second's.
    std::memcpy(chunk + 64 * (i / 2) + 16 * (i % 2), block + 2, 16);
    std::memcpy(chunk + 64 * (i / 2) + 32 + 16 * (i % 2), block + 18, 16);
    std::int32_t sum = 0;
    for (int j = 0; j < 32; ++j) sum += static_cast<std::int8_t>(block[2 + j]);
    const float dx = quant::fp16_to_fp32(quant::load_u16(block)), offset = 8 * dx * static_cast<float>(sum);
    const int lane = i / 2 + 4 * (i % 2);  // even blocks in the low 128 bits, odd in the high
    std::memcpy(chunk + 256 + 4 * lane, &dx, 4);
    std::memcpy(chunk + 288 + 4 * lane, &offset, 4);
  }
}

std::size_t q8_k_bytes(std::int64_t cols) { return static_cast<std::size_t>(cols / 256) * 292; }

void prepare_q8_k(const float* x, std::int64_t cols, std::uint8_t* xq) {
  quantize_activations(true, x, cols, xq);
}

// Each 64 columns' quants as [0..15, 32..47, 16..31, 48..63]: see dot.h.
void prepare_q8_k_nibble_pairs(const float* x, std::int64_t cols, std::uint8_t* xq) {
  quantize_activations(true, x, cols, xq);
  for (std::int64_t g = 0; g < cols / 64; ++g) {
    std::uint8_t* q = xq + g / 4 * 292 + 4 + g % 4 * 64;
    std::uint8_t second[16];
    std::memcpy(second, q + 16, 16);
    std::memcpy(q + 16, q + 32, 16);
    std::memcpy(q + 32, second, 16);
  }
}

template <bool kQ8K, int kSub>
std::size_t sub_block_bytes(std::int64_t cols) {
  return sub_block_quant_bytes(cols) + 2 * sizeof(float) * static_cast<std::size_t>(cols / kSub);
}

template <bool kQ8K, int kSub>
void prepare_sub_blocks(const float* x, std::int64_t cols, std::uint8_t* out) {
  constexpr int kBlock = kQ8K ? 256 : 32;
  const ActivationBlocks blocks = quantize_activation_blocks(kQ8K, x, cols);
  std::memset(out + cols, 0, sub_block_quant_bytes(cols) - static_cast<std::size_t>(cols));
  const std::int64_t subs = cols / kSub;
  auto* dx = reinterpret_cast<float*>(out + sub_block_quant_bytes(cols));
  float* dsum = dx + subs;
  for (std::int64_t b = 0; b < cols / kBlock; ++b) {
    const std::int8_t* q = blocks.quants(b);
    std::memcpy(out + kBlock * b, q, kBlock);
    const float d = blocks.scale(b);
    for (int part = 0; part < kBlock / kSub; ++part) {
      std::int32_t sum = 0;
      for (int j = 0; j < kSub; ++j) sum += q[part * kSub + j];
      const std::int64_t sub = b * (kBlock / kSub) + part;
      dx[sub] = d;
      dsum[sub] = d * static_cast<float>(sum);
    }
  }
}

}  // namespace

ActivationLayout sub_block_layout(bool q8k, int sub) {
  if (!q8k) return {sub_block_bytes<false, 32>, prepare_sub_blocks<false, 32>};
  if (sub == 16) return {sub_block_bytes<true, 16>, prepare_sub_blocks<true, 16>};
  return {sub_block_bytes<true, 32>, prepare_sub_blocks<true, 32>};
}

ActivationLayout q8_0_layout() { return {q8_0_bytes, prepare_q8_0}; }
ActivationLayout q4_0_pairs_layout() { return {q4_0_pairs_bytes, prepare_q4_0_pairs}; }
ActivationLayout q8_k_layout() { return {q8_k_bytes, prepare_q8_k}; }
ActivationLayout q8_k_nibble_pairs_layout() { return {q8_k_bytes, prepare_q8_k_nibble_pairs}; }

bool cpu_has_avx512_vbmi() {
  unsigned a, b, c, d;
  return __get_cpuid_count(7, 0, &a, &b, &c, &d) && (c & (1u << 1)) && !cpu_feature_disabled("vbmi");
}

bool cpu_has_avx512_bf16() {
  // Asked at every product's planning: CPUID traps to the hypervisor on a VM (1% of generation).
  static const bool has = [] {
    unsigned a, b, c, d;
    return __get_cpuid_count(7, 1, &a, &b, &c, &d) && (a & (1u << 5)) && !cpu_feature_disabled("bf16");
  }();
  return has;
}

bool cpu_feature_disabled(std::string_view feature) {
  static const std::vector<std::string> disabled = [] {
    std::vector<std::string> names;
    const char* env = std::getenv("AERO_CPU_DISABLE");
    for (std::string_view rest = env ? env : ""; !rest.empty();) {
      const std::size_t comma = rest.find(',');
      const std::string_view name = rest.substr(0, comma);
      if (name != "avx2" && name != "avx512" && name != "vbmi" && name != "bf16")
        fail("AERO_CPU_DISABLE lists avx2, avx512, vbmi or bf16, not '{}'", name);
      names.emplace_back(name);
      rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
    }
    return names;
  }();
  return std::find(disabled.begin(), disabled.end(), feature) != disabled.end();
}

std::string kernel_set_name(Isa isa) {
  std::string name(isa_name(isa));
  if (isa == Isa::Avx512 && cpu_has_avx512_vbmi()) name += "+vbmi";
  if (isa == Isa::Avx512 && cpu_has_avx512_bf16()) name += "+bf16";
  return name;
}

namespace {

// One matrix of a group product: its kernels, where its prepared activations lie and how its
// rows are split into tasks.
struct Plan {
  const quant::Matrix* w = nullptr;
  float* y = nullptr;
  quant::TypeTraits traits{};
  const GemmKernel* gemm = nullptr;  // packed panels, else the row kernels (and their tiles)
  DotFn dot = nullptr;               // null: decode a row, dot in f32
  TileFn tile = nullptr;
  ActivationLayout layout;
  std::size_t xq_stride = 0;
  const std::uint8_t* xq = nullptr;       // prepared activations, xq_stride bytes per token
  const std::uint8_t* tile_in = nullptr;  // what tiles and panels read
  std::size_t tile_stride = 0;
  std::int64_t chunk = 0;  // rows per task
  std::size_t tasks = 0;
  int rows_per_call = kMaxRows;  // row kernels: 1 for one token's product read in sequence
  int prefetch_ahead = 1;        // the variant's, set on the thread that runs each task

  void run(std::size_t task, const float* x, std::int64_t n, DotFn f32_dot) const;
};

void Plan::run(std::size_t task, const float* x, std::int64_t n, DotFn f32_dot) const {
  const std::int64_t begin = static_cast<std::int64_t>(task) * chunk, end = std::min(w->rows, begin + chunk);
  prefetch_calls_ahead = prefetch_ahead;
  if (gemm) {
    gemm->run(w->data + static_cast<std::size_t>(begin) * w->row_bytes, w->row_bytes, end - begin, w->cols, tile_in,
              tile_stride, n, y + begin, static_cast<std::size_t>(w->rows));
    return;
  }
  if (dot) {
    // A few weight rows at a time against every activation row: the rows stay in L1 while
    // the activations stream past, so a batch reads the weights from memory once. One token's
    // product takes its rows one at a time where the CPU reads them best in sequence.
    for (std::int64_t r = begin; r < end; r += rows_per_call) {
      const int n_rows = static_cast<int>(std::min<std::int64_t>(rows_per_call, end - r));
      const std::uint8_t* rows = w->data + static_cast<std::size_t>(r) * w->row_bytes;
      std::int64_t t = 0;
      if (tile && n_rows == kTileRows)
        for (; t + kTileTokens <= n; t += kTileTokens)
          tile(rows, w->row_bytes, tile_in + static_cast<std::size_t>(t) * tile_stride, tile_stride, w->cols,
               y + t * w->rows + r, static_cast<std::size_t>(w->rows));
      for (; t < n; ++t)
        dot(rows, w->row_bytes, n_rows, x + t * w->cols, xq + static_cast<std::size_t>(t) * xq_stride, w->cols,
            y + t * w->rows + r);
    }
    return;
  }
  std::vector<float> decoded(static_cast<std::size_t>(w->cols));  // fallback: decode a row, dot in f32
  for (std::int64_t r = begin; r < end; ++r) {
    traits.decode(w->data + static_cast<std::size_t>(r) * w->row_bytes, decoded.data(), w->cols);
    for (std::int64_t t = 0; t < n; ++t) {
      const float* xt = xq_stride ? reinterpret_cast<const float*>(xq + static_cast<std::size_t>(t) * xq_stride)
                                  : x + t * w->cols;
      f32_dot(reinterpret_cast<const std::uint8_t*>(decoded.data()), 0, 1, xt, nullptr, w->cols, y + t * w->rows + r);
    }
  }
}

Plan make_plan(const quant::Matrix& w, float* y, std::int64_t n, Isa isa, unsigned threads) {
  const DotKernels& ks = kernels(isa);
  Plan p;
  p.w = &w;
  p.y = y;
  p.traits = *quant::type_traits(static_cast<std::uint32_t>(w.type));
  // Enough tokens to pay for unpacking each panel once: the packed-panel product; else row
  // kernels (and their 4 × 4 tiles). Batch-invariant products: every token as if alone.
  const bool as_one_token = n == 1 || batch_invariant_products();
  p.gemm = !as_one_token && n >= kGemmMinTokens && ks.gemm ? ks.gemm(w.type) : nullptr;
  const GemvVariant variant = gemv_variant(w.type);
  const RowKernel row = as_one_token ? gemv_row_kernel(w.type, isa, variant) : row_kernel(w.type, ks);
  p.dot = row.dot;
  p.tile = as_one_token ? nullptr : tile_for(w.type, ks);
  p.layout = p.gemm ? p.gemm->act : p.dot ? row.act : fallback_layout(p.traits);
  p.xq_stride = p.layout.bytes ? p.layout.bytes(w.cols) : 0;
  const std::int64_t block = p.gemm ? p.gemm->row_block : 1;
  p.rows_per_call = as_one_token ? gemv_rows_per_call(variant) : kMaxRows;
  p.prefetch_ahead = variant.prefetch_ahead;
  // Batches keep the default's tasks: the calibration measures one token's products only.
  p.chunk = (rows_per_task(w, threads, as_one_token ? variant : default_gemv_variant()) + block - 1) / block * block;
  p.tasks = static_cast<std::size_t>((w.rows + p.chunk - 1) / p.chunk);
  return p;
}

}  // namespace

void matmul(std::span<const quant::Matrix* const> ws, std::span<const float> x, std::int64_t n,
            std::span<float* const> ys, ThreadPool& pool, Isa isa) {
  if (ws.empty() || ws.size() != ys.size()) fail("matmul: {} matrices, {} outputs", ws.size(), ys.size());
  const std::int64_t cols = ws[0]->cols;
  if (n < 1 || static_cast<std::int64_t>(x.size()) != n * cols)
    fail("matmul: shapes disagree ({} columns, {} inputs for {} rows)", cols, x.size(), n);
  for (const quant::Matrix* w : ws) {
    if (w->cols != cols) fail("matmul: matrices of one input differ in width ({} and {})", cols, w->cols);
    auto traits = quant::type_traits(static_cast<std::uint32_t>(w->type));
    if (!traits || !traits->decode) fail("matmul: no kernel or decoder for type {}", traits ? traits->name : "?");
  }
  const DotKernels& ks = kernels(isa);  // refuses a set this CPU cannot run
  std::vector<Plan> plans;
  plans.reserve(ws.size());
  for (std::size_t i = 0; i < ws.size(); ++i) plans.push_back(make_plan(*ws[i], ys[i], n, isa, pool.size()));

  // Activations prepared once per layout (q, k and v of one format share theirs). Kept per
  // calling thread: generation makes hundreds of these calls per token. Named through a plain
  // reference, because a lambda naming a thread_local directly would reach each worker's own
  // (empty) instance.
  thread_local std::vector<std::vector<std::uint8_t>> caller_buffers;
  std::vector<std::vector<std::uint8_t>>& buffers = caller_buffers;
  if (buffers.size() < plans.size()) buffers.resize(plans.size());
  for (std::size_t i = 0; i < plans.size(); ++i) {
    Plan& p = plans[i];
    // Tiles and panels read prepared blocks for the integer formats, the f32 rows themselves
    // for floats.
    p.tile_in = reinterpret_cast<const std::uint8_t*>(x.data());
    p.tile_stride = static_cast<std::size_t>(cols) * sizeof(float);
    const auto key = [](const Plan& q) { return std::pair{q.layout.prepare, q.gemm ? q.gemm->batch_prepare : nullptr}; };
    if (key(p) == key(Plan{})) continue;  // nothing to prepare: float rows read x itself
    const auto same = std::find_if(plans.begin(), plans.begin() + static_cast<std::ptrdiff_t>(i),
                                   [&](const Plan& q) { return key(q) == key(p); });
    if (same != plans.begin() + static_cast<std::ptrdiff_t>(i)) {
      p.xq = same->xq;
      p.tile_in = same->tile_in;
      p.tile_stride = same->tile_stride;
      continue;
    }
    std::vector<std::uint8_t>& xq = buffers[i];
    xq.resize(p.xq_stride * static_cast<std::size_t>(n));
    if (p.xq_stride) {
      auto prepare = [&](std::size_t t) { p.layout.prepare(x.data() + t * cols, cols, xq.data() + t * p.xq_stride); };
      if (n == 1) prepare(0);
      else pool.run(static_cast<std::size_t>(n), prepare);
      p.tile_in = xq.data();
      p.tile_stride = p.xq_stride;
    }
    if (p.gemm && p.gemm->batch_bytes) {  // the panels' own packing of the whole batch
      xq.resize(p.gemm->batch_bytes(n, cols));
      pool.run(static_cast<std::size_t>((n + p.gemm->batch_tokens - 1) / p.gemm->batch_tokens), [&](std::size_t b) {
        p.gemm->batch_prepare(x.data(), n, cols, xq.data(), static_cast<std::int64_t>(b));
      });
      p.tile_in = xq.data();
    }
    p.xq = xq.data();
  }

  // Every matrix's tasks in one call: one wait for the slowest task of the group, not one each.
  std::size_t total = 0;
  for (const Plan& p : plans) total += p.tasks;
  const DotFn f32_dot = ks.f32;
  pool.run(total, [&](std::size_t task) {
    for (const Plan& p : plans) {
      if (task < p.tasks) return p.run(task, x.data(), n, f32_dot);
      task -= p.tasks;
    }
  });
}

void matmul(const quant::Matrix& w, std::span<const float> x, std::int64_t n, std::span<float> y, ThreadPool& pool,
            Isa isa) {
  if (static_cast<std::int64_t>(y.size()) != n * w.rows)
    fail("matmul: shapes disagree ({}x{} matrix, {} outputs for {} rows)", w.rows, w.cols, y.size(), n);
  const quant::Matrix* ws[] = {&w};
  float* ys[] = {y.data()};
  matmul(ws, x, n, ys, pool, isa);
}

void gemv(const quant::Matrix& w, std::span<const float> x, std::span<float> y, ThreadPool& pool, Isa isa) {
  matmul(w, x, 1, y, pool, isa);
}

}  // namespace aero::backend::cpu
