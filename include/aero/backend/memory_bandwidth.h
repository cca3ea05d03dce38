// This machine's memory read bandwidth, measured: the ceiling token generation is judged
// against (each generated token reads every weight once).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "aero/backend/thread_pool.h"

namespace aero::backend {

// GB/s reading a buffer of `bytes` (far larger than the caches) with every pool thread,
// median of `runs` passes after a warm-up pass.
double measure_read_bandwidth(ThreadPool& pool, std::size_t bytes = std::size_t{1} << 30, int runs = 5);

// GB/s of one such pass over `buffer`: for timing a kernel against the probe on the same bytes,
// pass by pass, so that both see the same pages and the same moment's contention.
double read_pass(ThreadPool& pool, std::span<const std::uint8_t> buffer);

}  // namespace aero::backend
