// Choosing how one token's products run on this CPU by measuring, not by recognizing the CPU:
// the candidate GEMV variants (cpu_gemv.h's GemvVariant) each multiply synthetic rows of the
// model's format and width, larger than the caches, with the pool's threads; the fastest is set
// for that format. A result is kept per CPU signature, thread count, format and width in the
// user's cache folder, so a later run takes it without measuring; `aero bench --calibrate`
// measures again.
#pragma once

#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

#include "aero/backend/cpu_gemv.h"
#include "aero/backend/thread_pool.h"

namespace aero::backend::cpu {

struct GemvMeasurement {
  GemvVariant variant;
  double gbps = 0;  // median over the rounds
};

struct GemvCalibration {
  quant::GgmlType type{};
  std::int64_t rows = 0, cols = 0;
  unsigned threads = 0;
  GemvVariant chosen;
  std::vector<GemvMeasurement> measured;  // every candidate, as measured (also when cached)
  bool from_cache = false;
  std::string why() const;  // one line: chosen, its GB/s and the runner-up's / the default's
};

// Where calibrations are kept: $AERO_CACHE_DIR, else $XDG_CACHE_HOME/aero, else ~/.cache/aero;
// the file gemv-calibration.json there. Empty when none of them is set.
std::filesystem::path gemv_calibration_file();
// Vendor, family, model, stepping and name of the CPU, and the kernel set in use.
std::string cpu_signature();

struct CalibrationOptions {
  bool force = false;                 // measure even when a cached result exists
  std::size_t bytes = 0;              // synthetic weights per candidate; 0: 2× the last-level cache, 64-256 MiB
  int rounds = 5;                     // each candidate's median over this many rounds, interleaved
  bool use_cache = true;              // read and write the cache file
};

// The candidates for `type` on this CPU: the default first, then row orders, prefetch distances,
// narrow kernels where they differ; AERO_GEMV_ROWS fixes the order. Task sizes are tried for the
// best of these in a second stage (gemv_task_candidates).
std::vector<GemvVariant> gemv_candidates(quant::GgmlType type);
std::vector<GemvVariant> gemv_task_candidates(const GemvVariant& best);

// Measures (or takes from the cache) and sets the fastest variant for one-token products of
// `type` matrices of `rows` × `cols` on `pool`: the synthetic weights are as many such matrices
// as fill options.bytes, multiplied one after another as a token's products are (so that task
// balance and the pool's hand-offs count as they do in generation). A format without a
// dedicated row kernel, or without a quantizer to make synthetic rows from, keeps the default
// (returned, not measured).
GemvCalibration calibrate_gemv(quant::GgmlType type, std::int64_t rows, std::int64_t cols, ThreadPool& pool,
                               const CalibrationOptions& options = {});

// The calibrations this process made or loaded, in order, for reports (`aero bench`).
std::vector<GemvCalibration> gemv_calibrations();

// Calibrates a model's formats as the CPU backend does before a model runs (Backend::prepare):
// for each format among `matrices` with a dedicated row kernel, the largest matrix's shape; not
// at all for a model whose token reads under `min_bytes_per_token` (it runs from the caches,
// where the variants hardly differ), nor when gemv_calibration_enabled() is false. `force`
// measures again whatever the cache holds (`aero bench --calibrate`).
void calibrate_for_model(std::span<const quant::Matrix* const> matrices, std::uint64_t bytes_per_token, ThreadPool& pool);
inline constexpr std::uint64_t kMinCalibratedBytesPerToken = std::uint64_t{64} << 20;
void force_gemv_calibration(bool force);

// Whether the engine calibrates at all: AERO_GEMV_CALIBRATE=0 keeps every format at the default
// (for comparing against it); any other value but 1 is an error.
bool gemv_calibration_enabled();

}  // namespace aero::backend::cpu
