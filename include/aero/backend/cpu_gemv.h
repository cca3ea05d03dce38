// Matrix-vector products directly on quantized weights, the kernel of token generation:
// y = W x with W stored as rows of ggml blocks (mapped from the model file, never decoded
// as a whole) and x in f32. Activations are quantized on the fly to Q8_0 for the block
// formats that have an integer dot product, as ggml does; other types dot in f32.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "aero/backend/thread_pool.h"
#include "aero/quant/matrix.h"

namespace aero::backend::cpu {

enum class Isa { Scalar, Avx2, Avx512 };
Isa best_isa();  // what this CPU runs, detected once
std::string_view isa_name(Isa isa);
// The set's name with the extensions its kernels use, e.g. "avx512+vbmi+bf16".
std::string kernel_set_name(Isa isa);
// Whether AERO_CPU_DISABLE (a comma-separated list of avx2, avx512, vbmi, bf16; any other name
// is an error) leaves `feature` unused, as if the CPU lacked it: to run another CPU's kernels on
// this one (the tests run every AVX-512 variant so), or to keep BF16 weights' products on f32
// activations where AVX512_BF16 would round them to bf16.
bool cpu_feature_disabled(std::string_view feature);

// How a matrix-vector product (one token) walks its rows. Groups: kMaxRows rows per kernel call
// sharing the activation loads, each call prefetching the rows some calls ahead (a row alone is a
// stream too short for the hardware prefetcher on Zen 3 and Zen 5). Sequence: one row after
// another, so that a task's weights are one ascending stream; on Zen 4 four interleaved rows,
// prefetched or not, read half of what one stream does (GEMV from DRAM at 45-55% of the probe
// against 85-95%).
enum class RowOrder { Groups, Sequence };
std::string_view row_order_name(RowOrder order);

// Everything that decides how fast one token's product reads its weights, and that differs
// between machines in ways no table of CPU models predicts: which kernels, in which order, how
// far ahead they prefetch, how the rows are cut into tasks. The calibration (cpu_calibration.h)
// measures the candidates on the machine and sets the fastest per weight format; until then,
// and for formats it has not measured, the default applies. Every variant computes the same
// product: only the order of float additions differs between row orders and kernel widths.
struct GemvVariant {
  bool narrow = false;             // the AVX2 (256-bit) row kernels on an AVX-512 CPU
  RowOrder order = RowOrder::Groups;
  int prefetch_ahead = 1;          // software prefetch of the rows this many calls ahead; 0: none
  std::uint32_t task_kib = 256;    // weight bytes per task (rows rounded to whole groups)
  std::uint32_t tasks_per_thread = 8;  // at most: a small matrix is cut finer for balance
  bool operator==(const GemvVariant&) const = default;
  std::string name() const;  // e.g. "avx2 rows, groups, prefetch 1 ahead, 256 KiB tasks x8"
};
// The variant in force for one token's products of `type` (calibrated, or the default).
GemvVariant gemv_variant(quant::GgmlType type);
void set_gemv_variant(quant::GgmlType type, const GemvVariant& variant);
// Groups with prefetch one call ahead, 256 KiB tasks, eight per thread; AERO_GEMV_ROWS=groups|sequence
// overrides the order (and sequence means no prefetch), for every variant, calibrated or not.
GemvVariant default_gemv_variant();
// Whether a narrow variant runs other kernels than the wide one for `type` on this CPU (an AVX-512
// CPU whose AVX2 set has a row kernel for it; not BF16 where VDPBF16PS rounds the activations).
bool gemv_narrow_applies(quant::GgmlType type);
// AERO_GEMV_ROWS's order when set (any other value: an error).
std::optional<RowOrder> gemv_row_order_override();

// Batch-invariant products (AERO_BATCH_INVARIANT=1; 0 or unset: off, anything else an error):
// every token of a batched product goes through the one-token kernels as a product of its own
// would (same row kernel, rows per call and tasks), so a token's result is bit for bit what it is
// alone, whatever else is in the batch. Off, batches of 4+ tokens take the 4 × 4 tiles (F32, F16,
// BF16, Q4_0 and Q8_0/Q4_K on some sets) and of 8+ the packed panels, whose sums run in another
// order than one token's (the same value to a few ulp, not the same bits). Batched products stay
// one read of the weights, but with no panel or tile reuse of unpacked blocks: for the tests of
// a server whose batched answers must equal the same request alone, not for speed.
bool batch_invariant_products();

// y[t] = W · x[t] for n activation rows (x is n × cols, y is n × rows, row-major): the
// batched form prompt processing uses; each weight row is read from memory once per call.
void matmul(const quant::Matrix& w, std::span<const float> x, std::int64_t n, std::span<float> y, ThreadPool& pool,
            Isa isa = best_isa());

// The products of several matrices with one input (q, k and v; gate and up): y_i[t] = W_i · x[t],
// each y_i n × W_i.rows. The activations are prepared once per layout and every matrix's rows
// spread over the pool in one call.
void matmul(std::span<const quant::Matrix* const> ws, std::span<const float> x, std::int64_t n,
            std::span<float* const> ys, ThreadPool& pool, Isa isa = best_isa());

// y[rows] = W · x[cols]. Rows are spread over the pool. Throws for a type with no decoder.
void gemv(const quant::Matrix& w, std::span<const float> x, std::span<float> y, ThreadPool& pool,
          Isa isa = best_isa());

// True when `type` has a dedicated dot product (not the decode-then-dot fallback) for `isa`.
bool has_fast_dot(quant::GgmlType type, Isa isa);

}  // namespace aero::backend::cpu
