// The CPU backend's attention over a KV cache of several slots against the same sequences each
// in a one-slot cache of its own: a batched call (runs of tokens of several slots, in any order)
// must give every token exactly what its sequence alone gives, for every cache type.
#include <gtest/gtest.h>

#include <cstring>
#include <random>

#include "aero/backend/backend.h"
#include "aero/error.h"

namespace aero::test {
namespace {

using backend::KvType;

std::vector<float> random_floats(std::size_t n, std::mt19937& rng) {
  std::uniform_real_distribution<float> u(-2.0f, 2.0f);
  std::vector<float> v(n);
  for (auto& x : v) x = u(rng);
  return v;
}

struct Shape {
  std::int64_t heads, kv_heads, head_dim;
};

// Each call: (slot, tokens) runs. Slots keep their own positions.
using SlotRuns = std::vector<std::pair<std::int32_t, std::int64_t>>;

void check_slots_equal_separate_caches(const Shape& s, KvType kv, std::int64_t slots, std::int64_t capacity,
                                       const std::vector<SlotRuns>& calls) {
  auto cpu = backend::make_cpu_backend(2);
  const std::int64_t layers = 2, layer = 1, d = s.head_dim;
  auto batched = cpu->create_kv_cache(layers, s.kv_heads, d, capacity, slots, kv);
  std::vector<std::unique_ptr<backend::KvCache>> alone;
  for (std::int64_t i = 0; i < slots; ++i) alone.push_back(cpu->create_kv_cache(layers, s.kv_heads, d, capacity, 1, kv));
  std::vector<std::int32_t> next(static_cast<std::size_t>(slots));
  std::mt19937 rng(7);
  for (std::size_t c = 0; c < calls.size(); ++c) {
    std::vector<std::int32_t> token_slots, positions;
    for (const auto& [slot, count] : calls[c])
      for (std::int64_t t = 0; t < count; ++t) {
        token_slots.push_back(slot);
        positions.push_back(next[static_cast<std::size_t>(slot)]++);
      }
    const auto n = static_cast<std::int64_t>(positions.size());
    const auto q = random_floats(static_cast<std::size_t>(n * s.heads * d), rng);
    const auto k = random_floats(static_cast<std::size_t>(n * s.kv_heads * d), rng);
    const auto v = random_floats(static_cast<std::size_t>(n * s.kv_heads * d), rng);
    std::vector<float> out(static_cast<std::size_t>(n * s.heads * d));
    cpu->attention(*batched, layer, q.data(), k.data(), v.data(), token_slots, positions, s.heads, out.data());
    // Each run again, alone in its sequence's own cache.
    std::int64_t first = 0;
    for (const auto& [slot, count] : calls[c]) {
      const std::vector<std::int32_t> zeros(static_cast<std::size_t>(count), 0);
      const std::span<const std::int32_t> run_positions(positions.data() + first, static_cast<std::size_t>(count));
      std::vector<float> expected(static_cast<std::size_t>(count * s.heads * d));
      cpu->attention(*alone[static_cast<std::size_t>(slot)], layer, q.data() + first * s.heads * d,
                     k.data() + first * s.kv_heads * d, v.data() + first * s.kv_heads * d, zeros, run_positions, s.heads,
                     expected.data());
      EXPECT_EQ(std::memcmp(expected.data(), out.data() + first * s.heads * d, expected.size() * sizeof(float)), 0)
          << backend::kv_type_name(kv) << " " << s.heads << "q" << s.kv_heads << "kv d" << d << ": call " << c
          << ", slot " << slot;
      first += count;
    }
  }
}

TEST(CpuAttention, SlotsOfOneCacheEqualSeparateCaches) {
  const std::vector<SlotRuns> calls = {
      {{2, 7}, {0, 5}},          {{0, 1}, {1, 9}, {2, 1}},         {{3, 3}, {0, 1}, {1, 1}, {2, 5}},
      {{3, 1}, {1, 1}, {0, 1}, {2, 1}}, {{1, 1}, {3, 1}}, {{0, 1}, {1, 1}, {2, 1}, {3, 17}},
  };
  for (KvType kv : {KvType::F32, KvType::F16, KvType::Q8_0}) {
    check_slots_equal_separate_caches({8, 2, 64}, kv, 4, 40, calls);   // GQA (the grouped kernels)
    check_slots_equal_separate_caches({4, 4, 32}, kv, 4, 40, calls);   // MHA
  }
  check_slots_equal_separate_caches({6, 2, 20}, KvType::F32, 4, 40, calls);  // d % 8 != 0: head by head
}

TEST(CpuAttention, BadSlotsAreErrors) {
  auto cpu = backend::make_cpu_backend(1);
  auto cache = cpu->create_kv_cache(1, 2, 64, 8, 2, KvType::F16);
  EXPECT_EQ(cache->slots(), 2);
  EXPECT_EQ(cache->capacity(), 8);
  std::vector<float> q(8 * 64), kv(2 * 64);
  const std::int32_t zero[] = {0}, two[] = {2}, minus[] = {-1}, eight[] = {8}, pair[] = {0, 1};
  EXPECT_THROW(cpu->attention(*cache, 0, q.data(), kv.data(), kv.data(), two, zero, 8, q.data()), Error);
  EXPECT_THROW(cpu->attention(*cache, 0, q.data(), kv.data(), kv.data(), minus, zero, 8, q.data()), Error);
  EXPECT_THROW(cpu->attention(*cache, 0, q.data(), kv.data(), kv.data(), zero, eight, 8, q.data()), Error);
  EXPECT_THROW(cpu->attention(*cache, 0, q.data(), kv.data(), kv.data(), pair, zero, 8, q.data()), Error);
  EXPECT_THROW(cpu->attention(*cache, 0, q.data(), kv.data(), kv.data(), zero, zero, 7, q.data()), Error);
  EXPECT_THROW(cpu->create_kv_cache(1, 2, 64, 8, 0, KvType::F16), Error);
}

}  // namespace
}  // namespace aero::test
