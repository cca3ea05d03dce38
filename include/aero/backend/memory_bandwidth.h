// This machine's memory read bandwidth, measured: the ceiling token generation is judged
// against (each generated token reads every weight once).
#pragma once

#include <cstddef>

#include "aero/backend/thread_pool.h"

namespace aero::backend {

// GB/s reading a buffer of `bytes` (far larger than the caches) with every pool thread,
// median of `runs` passes after a warm-up pass.
double measure_read_bandwidth(ThreadPool& pool, std::size_t bytes = std::size_t{1} << 30, int runs = 5);

}  // namespace aero::backend
