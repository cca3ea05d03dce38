// Matrix-vector products directly on quantized weights, the kernel of token generation:
// y = W x with W stored as rows of ggml blocks (mapped from the model file, never decoded
// as a whole) and x in f32. Activations are quantized on the fly to Q8_0 for the block
// formats that have an integer dot product, as ggml does; other types dot in f32.
#pragma once

#include <cstddef>
#include <cstdint>
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
// sharing the activation loads, each call prefetching the next call's rows (a row alone is a
// stream too short for the hardware prefetcher on Zen 3 and Zen 5). Sequence: one row after
// another and no software prefetch, so that a task's weights are one ascending stream; on Zen 4
// four interleaved rows, prefetched or not, read half of what one stream does (GEMV from DRAM at
// 45-55% of the probe against 85-95%). Detected once; AERO_GEMV_ROWS=groups|sequence overrides.
enum class RowOrder { Groups, Sequence };
RowOrder gemv_row_order();
std::string_view row_order_name(RowOrder order);


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
