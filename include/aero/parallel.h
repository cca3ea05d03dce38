// Runs independent jobs (hashing shards, checking files) on a few threads. The first
// exception a job throws is rethrown once all threads have stopped.
#pragma once

#include <cstddef>
#include <functional>

namespace aero {

unsigned default_thread_count();
void parallel_for(std::size_t count, unsigned threads, const std::function<void(std::size_t)>& job);

}  // namespace aero
