// The thread pool runs every task of every call exactly once, also when calls come back to
// back and a worker is still leaving the previous one (the case that once ran a task twice).
#include <gtest/gtest.h>

#include <atomic>
#include <vector>

#include "aero/backend/thread_pool.h"

namespace aero::backend {
namespace {

TEST(ThreadPool, EveryTaskRunsExactlyOnceAcrossBackToBackCalls) {
  for (unsigned threads : {2u, 3u, 4u}) {
    ThreadPool pool(threads);
    std::vector<std::atomic<int>> runs(64);
    std::uint64_t expected_total = 0;
    std::atomic<std::uint64_t> total{0};
    for (int call = 0; call < 20000; ++call) {
      const std::size_t tasks = 1 + static_cast<std::size_t>(call * 7919 % 64);
      for (std::size_t i = 0; i < tasks; ++i) runs[i].store(0);
      pool.run(tasks, [&](std::size_t i) {
        runs[i].fetch_add(1);
        total.fetch_add(i + 1);
      });
      for (std::size_t i = 0; i < tasks; ++i) ASSERT_EQ(runs[i].load(), 1) << "call " << call << " task " << i;
      expected_total += tasks * (tasks + 1) / 2;
    }
    EXPECT_EQ(total.load(), expected_total);
  }
}

TEST(ThreadPool, RunsEveryTaskOnceAcrossManyLargeCalls) {
  ThreadPool pool(3);
  std::vector<std::atomic<int>> hits(1000);
  for (int call = 0; call < 200; ++call) pool.run(hits.size(), [&](std::size_t i) { hits[i].fetch_add(1); });
  for (auto& h : hits) EXPECT_EQ(h.load(), 200);
}

}  // namespace
}  // namespace aero::backend
