// A persistent pool for the compute kernels: threads are created once and parked; a call
// splits its work into tasks that every thread (the caller included) takes from a shared
// counter. Workers spin briefly before sleeping, because kernel calls come back to back
// during generation and a futex wake costs more than a short matrix-vector product.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace aero::backend {

class ThreadPool {
 public:
  explicit ThreadPool(unsigned threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  unsigned size() const { return static_cast<unsigned>(workers_.size()) + 1; }
  // Runs task(i) for i in [0, tasks), spread over the pool; returns when all are done.
  // Tasks must not throw.
  void run(std::size_t tasks, const std::function<void(std::size_t)>& task);

 private:
  void worker_loop();
  void take_tasks();

  std::vector<std::thread> workers_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::atomic<std::uint64_t> generation_{0};  // bumped per call: wakes the workers
  // (call number : 24 bits, task count : 20 bits, next task : 20 bits), claimed by CAS.
  static constexpr int kIndexBits = 20;
  static constexpr std::uint64_t kIndexMask = (std::uint64_t{1} << kIndexBits) - 1;
  std::atomic<std::uint64_t> claim_{0};
  std::uint64_t calls_ = 0;
  std::atomic<std::size_t> done_{0};
  std::atomic<const std::function<void(std::size_t)>*> task_{nullptr};
  std::atomic<bool> stop_{false};
};

}  // namespace aero::backend
