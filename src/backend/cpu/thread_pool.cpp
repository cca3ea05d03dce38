#include "aero/backend/thread_pool.h"

#include <immintrin.h>

#include "aero/error.h"

namespace aero::backend {
namespace {
constexpr int kSpinIterations = 20000;  // ~50-100 µs before a worker sleeps
}

ThreadPool::ThreadPool(unsigned threads) {
  for (unsigned i = 1; i < std::max(threads, 1u); ++i) workers_.emplace_back([this] { worker_loop(); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
    generation_.fetch_add(1);
  }
  wake_.notify_all();
  for (auto& w : workers_) w.join();
}

// A claim is a compare-and-swap on one word holding (call number, task count, next task):
// a worker still leaving an earlier call can never take a task twice or one of a call whose
// fields it has not seen, because the swap fails as soon as the word belongs to another call.
void ThreadPool::take_tasks() {
  std::uint64_t word = claim_.load(std::memory_order_acquire);
  while (true) {
    const std::uint64_t next = word & kIndexMask, tasks = (word >> kIndexBits) & kIndexMask;
    if (next >= tasks) return;
    if (!claim_.compare_exchange_weak(word, word + 1, std::memory_order_acq_rel, std::memory_order_acquire)) continue;
    (*task_.load(std::memory_order_acquire))(static_cast<std::size_t>(next));
    done_.fetch_add(1, std::memory_order_release);
    word = claim_.load(std::memory_order_acquire);
  }
}

void ThreadPool::worker_loop() {
  std::uint64_t seen = 0;
  while (true) {
    int spins = 0;
    while (generation_.load(std::memory_order_acquire) == seen && spins < kSpinIterations) {
      _mm_pause();
      ++spins;
    }
    if (generation_.load(std::memory_order_acquire) == seen) {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [&] { return generation_.load() != seen; });
    }
    seen = generation_.load(std::memory_order_acquire);
    if (stop_) return;
    take_tasks();
  }
}

void ThreadPool::run(std::size_t tasks, const std::function<void(std::size_t)>& task) {
  if (workers_.empty() || tasks <= 1) {
    for (std::size_t i = 0; i < tasks; ++i) task(i);
    return;
  }
  if (tasks > kIndexMask) fail("thread pool: {} tasks in one call (at most {})", tasks, kIndexMask);
  {
    std::lock_guard lock(mutex_);
    task_.store(&task, std::memory_order_relaxed);
    done_.store(0, std::memory_order_relaxed);
    ++calls_;
    claim_.store((calls_ << (2 * kIndexBits)) | (static_cast<std::uint64_t>(tasks) << kIndexBits),
                 std::memory_order_release);
    generation_.fetch_add(1, std::memory_order_release);
  }
  wake_.notify_all();
  take_tasks();
  while (done_.load(std::memory_order_acquire) < tasks) _mm_pause();
}

}  // namespace aero::backend
