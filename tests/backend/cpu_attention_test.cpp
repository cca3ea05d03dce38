// The CPU backend's attention over a KV cache of several slots against the same sequences each
// in a one-slot cache of its own: a batched call (runs of tokens of several slots, in any order)
// must give every token exactly what its sequence alone gives, for every cache type.
#include <gtest/gtest.h>

#include <cmath>
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

// Attention with Gemma's options (scale, soft-cap, sliding window) against the definition,
// in double: a prompt in one call, then tokens one by one, for the grouped kernels (d 64) and
// the head-by-head path (d 20).
void check_options_against_definition(std::int64_t d, const backend::AttentionOptions& o) {
  auto cpu = backend::make_cpu_backend(2);
  const std::int64_t heads = 4, kv_heads = 2, group = heads / kv_heads, total = 30;
  auto cache = cpu->create_kv_cache(1, kv_heads, d, total, 1, KvType::F32);
  std::mt19937 rng(11);
  const auto q = random_floats(static_cast<std::size_t>(total * heads * d), rng);
  const auto k = random_floats(static_cast<std::size_t>(total * kv_heads * d), rng);
  const auto v = random_floats(static_cast<std::size_t>(total * kv_heads * d), rng);
  std::vector<float> out(q.size());
  const std::int64_t prompt = 21;
  std::vector<std::int32_t> positions, slots;
  for (std::int32_t t = 0; t < prompt; ++t) positions.push_back(t), slots.push_back(0);
  cpu->attention(*cache, 0, q.data(), k.data(), v.data(), slots, positions, heads, out.data(), o);
  for (std::int64_t t = prompt; t < total; ++t) {
    const std::int32_t pos[] = {static_cast<std::int32_t>(t)}, slot[] = {0};
    cpu->attention(*cache, 0, q.data() + t * heads * d, k.data() + t * kv_heads * d, v.data() + t * kv_heads * d, slot,
                   pos, heads, out.data() + t * heads * d, o);
  }
  const double scale = o.scale > 0 ? o.scale : 1.0 / std::sqrt(static_cast<double>(d));
  for (std::int64_t t = 0; t < total; ++t)
    for (std::int64_t h = 0; h < heads; ++h) {
      const std::int64_t g = h / group, from = o.window > 0 ? std::max<std::int64_t>(0, t - o.window + 1) : 0;
      std::vector<double> p;
      double max = -INFINITY, sum = 0;
      for (std::int64_t j = from; j <= t; ++j) {
        double s = 0;
        for (std::int64_t i = 0; i < d; ++i) s += double{q[static_cast<std::size_t>((t * heads + h) * d + i)]} * k[static_cast<std::size_t>((j * kv_heads + g) * d + i)];
        s *= scale;
        if (o.softcap > 0) s = o.softcap * std::tanh(s / o.softcap);
        p.push_back(s);
        max = std::max(max, s);
      }
      for (double& x : p) sum += (x = std::exp(x - max));
      for (std::int64_t i = 0; i < d; ++i) {
        double expected = 0;
        for (std::int64_t j = from; j <= t; ++j)
          expected += p[static_cast<std::size_t>(j - from)] / sum * v[static_cast<std::size_t>((j * kv_heads + g) * d + i)];
        ASSERT_NEAR(out[static_cast<std::size_t>((t * heads + h) * d + i)], expected, 1e-5)
            << "d " << d << " window " << o.window << " softcap " << o.softcap << ": token " << t << " head " << h;
      }
    }
}

TEST(CpuAttention, ScaleSoftcapAndWindowFollowTheirDefinition) {
  for (std::int64_t d : {64, 20}) {
    check_options_against_definition(d, {});
    check_options_against_definition(d, {.scale = 0.3, .softcap = 0, .window = 0});
    check_options_against_definition(d, {.scale = 0, .softcap = 1.5, .window = 0});  // caps the scores hard
    check_options_against_definition(d, {.scale = 0, .softcap = 0, .window = 7});
    check_options_against_definition(d, {.scale = 0.2, .softcap = 2.0, .window = 5});
  }
}

TEST(CpuElementwise, GeluTanhScaleAndSoftcapFollowTheirDefinition) {
  auto cpu = backend::make_cpu_backend(2);
  std::mt19937 rng(3);
  const std::size_t n = 3000;  // several of the gate's blocks of 1024
  const auto gate = random_floats(n, rng), up = random_floats(n, rng);
  std::vector<float> out(n), x = gate;
  cpu->gelu_tanh_mul(gate.data(), up.data(), static_cast<std::int64_t>(n), out.data());
  for (std::size_t i = 0; i < n; ++i) {
    const double g = gate[i];
    const double gelu = 0.5 * g * (1 + std::tanh(std::sqrt(2 / M_PI) * (g + 0.044715 * g * g * g)));
    ASSERT_NEAR(out[i], gelu * up[i], 1e-6) << i;
  }
  cpu->scale(x.data(), static_cast<std::int64_t>(n), 8.0f);
  for (std::size_t i = 0; i < n; ++i) ASSERT_EQ(x[i], gate[i] * 8.0f);
  x = gate;
  cpu->softcap(x.data(), static_cast<std::int64_t>(n), 0.5f);
  for (std::size_t i = 0; i < n; ++i) ASSERT_NEAR(x[i], 0.5 * std::tanh(gate[i] / 0.5), 1e-6);
  EXPECT_THROW(cpu->softcap(x.data(), 1, 0.0f), Error);
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
