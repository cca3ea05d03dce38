// The CUDA backend's operations against the CPU backend's on random inputs: the same buffers
// go through both and the results are compared with the tolerance each operation warrants.
// Skipped, saying why, without a CUDA GPU (or in a build without the CUDA backend).
#include <cmath>
#include <cstring>
#include <numeric>
#include <random>

#include "aero/backend/backend.h"
#include "aero/error.h"
#include "aero/model/rope.h"
#include "backend/cuda_test_support.h"
#include "quant/half.h"

namespace aero::test {
namespace {

using backend::Backend;
using backend::KvType;

std::vector<float> random_floats(std::size_t n, std::uint32_t seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-scale, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = u(rng);
  return v;
}

class CudaOps : public ::testing::Test {
 protected:
  void SetUp() override {
    AERO_REQUIRE_GPU();
    cpu = backend::make_cpu_backend(2);
    gpu = backend::make_backend("cuda", 2);
  }
  // Runs `op` on both backends with `inputs` uploaded to each; returns both results (`out`
  // floats of the buffer `op` writes, which it returns).
  template <class Op>
  std::pair<std::vector<float>, std::vector<float>> both(const std::vector<std::vector<float>>& inputs, std::size_t out,
                                                         const Op& op) {
    auto run = [&](Backend& b) {
      std::vector<float*> buffers;
      for (const auto& in : inputs) buffers.push_back(upload(b, in));
      const float* result = op(b, buffers);
      return download(b, result, out);
    };
    return {run(*gpu), run(*cpu)};
  }
  std::unique_ptr<Backend> cpu, gpu;
};

TEST_F(CudaOps, NameSaysCudaAndTheGpu) {
  EXPECT_EQ(gpu->name().rfind("cuda (", 0), 0u) << gpu->name();
  EXPECT_NE(gpu->name().find("cc "), std::string::npos) << gpu->name();
}

TEST_F(CudaOps, ReadReturnsWhatWriteStored) {
  const auto v = random_floats(1000, 1);
  float* p = upload(*gpu, v);
  EXPECT_EQ(download(*gpu, p, v.size()), v);
  EXPECT_EQ(download(*gpu, gpu->allocate(7), 7), std::vector<float>(7, 0.0f));  // buffers start as zeros
}

// f32 sums in a different order than the CPU's double sum: 2e-5 of the largest output.
TEST_F(CudaOps, RmsNormEqualsCpu) {
  for (const auto& shape : {std::pair<std::int64_t, std::int64_t>{4096, 3}, {128, 40}, {100, 5}, {1, 2}}) {
    const std::int64_t width = shape.first, rows = shape.second;
    const auto x = random_floats(static_cast<std::size_t>(width * rows), 2);
    const auto weight = random_floats(static_cast<std::size_t>(width), 3);
    const auto n = static_cast<std::size_t>(width * rows);
    auto [g, c] = both({x}, n, [&](Backend& b, const std::vector<float*>& in) {
      float* y = b.allocate(n);
      b.rms_norm(in[0], weight.data(), width, rows, 1e-6, y);
      return y;
    });
    EXPECT_LE(relative_error(g, c), 2e-5f) << width << " x " << rows;
    auto [gi, ci] = both({x}, n, [&](Backend& b, const std::vector<float*>& in) {  // in place, as per-head norms run
      b.rms_norm(in[0], weight.data(), width, rows, 1e-6, in[0]);
      return in[0];
    });
    EXPECT_LE(relative_error(gi, ci), 2e-5f) << width << " x " << rows << " in place";
  }
}

// The same f32 products (the GPU may fuse a multiply and an add): 1e-5.
TEST_F(CudaOps, RopeEqualsCpuInBothLayouts) {
  const std::int64_t n = 5, heads = 4, head_dim = 64;
  std::vector<std::int32_t> positions = {3, 4, 5, 6, 4000};
  std::vector<double> inv_freq(static_cast<std::size_t>(head_dim / 2));
  for (std::size_t i = 0; i < inv_freq.size(); ++i) inv_freq[i] = std::pow(10000.0, -2.0 * static_cast<double>(i) / head_dim);
  const auto table = model::rope_table(positions, inv_freq);
  const auto x = random_floats(static_cast<std::size_t>(n * heads * head_dim), 4);
  for (auto layout : {model::RopeLayout::HalfSplit, model::RopeLayout::Interleaved}) {
    auto [g, c] = both({x}, x.size(), [&](Backend& b, const std::vector<float*>& in) {
      b.rope(in[0], n, heads, head_dim, table, layout);
      return in[0];
    });
    EXPECT_LE(relative_error(g, c), 1e-5f) << (layout == model::RopeLayout::HalfSplit ? "half split" : "interleaved");
  }
  // A second table of the same size (the next pass's positions) is used, not the first one again.
  positions = {7, 8, 9, 10, 11};
  const auto next = model::rope_table(positions, inv_freq);
  auto [g, c] = both({x}, x.size(), [&](Backend& b, const std::vector<float*>& in) {
    b.rope(in[0], n, heads, head_dim, table, model::RopeLayout::HalfSplit);
    b.rope(in[0], n, heads, head_dim, next, model::RopeLayout::HalfSplit);
    return in[0];
  });
  EXPECT_LE(relative_error(g, c), 1e-5f);
}

// expf against the CPU's vector exp: 1e-5.
TEST_F(CudaOps, GeluTanhMulScaleAndSoftcapEqualCpu) {
  const std::size_t n = 10007;
  const auto gate = random_floats(n, 15, 8.0f), up = random_floats(n, 16);
  auto [g, c] = both({gate, up}, n, [&](Backend& b, const std::vector<float*>& in) {
    b.gelu_tanh_mul(in[0], in[1], static_cast<std::int64_t>(n), in[0]);
    return in[0];
  });
  EXPECT_LE(relative_error(g, c), 1e-5f) << "gelu_tanh_mul";
  auto [gs, cs] = both({gate}, n, [&](Backend& b, const std::vector<float*>& in) {
    b.scale(in[0], static_cast<std::int64_t>(n), 47.98f);
    return in[0];
  });
  EXPECT_EQ(gs, cs) << "scale";
  auto [gc, cc] = both({gate}, n, [&](Backend& b, const std::vector<float*>& in) {
    b.softcap(in[0], static_cast<std::int64_t>(n), 3.0f);
    return in[0];
  });
  EXPECT_LE(relative_error(gc, cc), 1e-6f) << "softcap";
  EXPECT_THROW(gpu->softcap(gpu->allocate(1), 1, 0.0f), Error);
}

TEST_F(CudaOps, SiluMulEqualsCpu) {
  const std::size_t n = 10007;
  const auto gate = random_floats(n, 5, 8.0f), up = random_floats(n, 6);
  auto [g, c] = both({gate, up}, n, [&](Backend& b, const std::vector<float*>& in) {
    b.silu_mul(in[0], in[1], static_cast<std::int64_t>(n), in[0]);  // in place, as the forward pass runs it
    return in[0];
  });
  EXPECT_LE(relative_error(g, c), 1e-5f);
}

// A mixture of experts' moves: gathering rows is exact; adding weighted rows back differs from
// the CPU's at most by a fused multiply-add's rounding.
TEST_F(CudaOps, GatherAndScatterAddRowsEqualCpu) {
  const std::int64_t width = 130, rows = 9;
  const auto x = random_floats(static_cast<std::size_t>(width * rows), 21), acc = random_floats(static_cast<std::size_t>(width * rows), 22);
  const std::vector<std::int32_t> picked = {7, 0, 3, 8};
  const std::vector<float> weights = {0.25f, 0.5f, 0.125f, 0.125f};
  auto [g, c] = both({x, std::vector<float>(static_cast<std::size_t>(width) * picked.size()), acc},
                     static_cast<std::size_t>(width * rows), [&](Backend& b, const std::vector<float*>& in) {
                       b.gather_rows(in[0], picked, width, in[1]);
                       b.scatter_add_rows(in[1], picked, weights, width, in[2]);
                       return in[2];
                     });
  EXPECT_LE(relative_error(g, c), 1e-6f);
  auto [gg, cg] = both({x, std::vector<float>(static_cast<std::size_t>(width) * picked.size())}, static_cast<std::size_t>(width) * picked.size(),
                       [&](Backend& b, const std::vector<float*>& in) {
                         b.gather_rows(in[0], picked, width, in[1]);
                         return in[1];
                       });
  EXPECT_EQ(gg, cg);
}

// One addition per element: exact.
TEST_F(CudaOps, AddAndBiasEqualCpuExactly) {
  const std::size_t width = 96, rows = 7;
  const auto x = random_floats(width * rows, 7), y = random_floats(width * rows, 8), bias = random_floats(width, 9);
  auto [g, c] = both({x, y}, x.size(), [&](Backend& b, const std::vector<float*>& in) {
    b.add(in[0], in[1], static_cast<std::int64_t>(x.size()));
    b.add_bias(in[0], bias, static_cast<std::int64_t>(rows));
    return in[0];
  });
  EXPECT_EQ(g, c);
}

// A table of `rows` random rows in `type`.
std::vector<std::uint8_t> make_table(quant::GgmlType type, std::int64_t rows, std::int64_t cols, std::size_t& row_bytes) {
  const auto traits = *quant::type_traits(static_cast<std::uint32_t>(type));
  row_bytes = *quant::row_bytes(traits, static_cast<std::uint64_t>(cols));
  std::vector<std::uint8_t> table(row_bytes * static_cast<std::size_t>(rows));
  for (std::int64_t r = 0; r < rows; ++r) {
    const auto row = random_floats(static_cast<std::size_t>(cols), 100 + static_cast<std::uint32_t>(r));
    std::uint8_t* dst = table.data() + static_cast<std::size_t>(r) * row_bytes;
    if (type == quant::GgmlType::F32) std::memcpy(dst, row.data(), row_bytes);
    else if (type == quant::GgmlType::F16 || type == quant::GgmlType::BF16)
      for (std::size_t c = 0; c < row.size(); ++c) {
        const std::uint16_t h = type == quant::GgmlType::F16 ? quant::fp32_to_fp16(row[c]) : quant::fp32_to_bf16(row[c]);
        std::memcpy(dst + 2 * c, &h, 2);
      }
    else quant::encode_from_f32(type, row, {dst, row_bytes});
  }
  return table;
}

// Both decode rows with the same reference decoders: exact.
TEST_F(CudaOps, EmbedEqualsCpuForEveryTableFormat) {
  using quant::GgmlType;
  const std::int64_t rows = 10, cols = 512;
  const std::vector<std::int32_t> ids = {3, 0, 9, 3};
  for (auto type : {GgmlType::F32, GgmlType::F16, GgmlType::BF16, GgmlType::Q8_0, GgmlType::Q4_0, GgmlType::Q4_K,
                    GgmlType::Q6_K, GgmlType::Q5_K, GgmlType::IQ4_XS}) {
    std::size_t row_bytes = 0;
    const auto bytes = make_table(type, rows, cols, row_bytes);
    const quant::Matrix table{.type = type, .data = bytes.data(), .rows = rows, .cols = cols, .row_bytes = row_bytes};
    const auto n = ids.size() * static_cast<std::size_t>(cols);
    auto [g, c] = both({}, n, [&](Backend& b, const std::vector<float*>&) {
      float* out = b.allocate(n);
      b.embed(table, ids, out);
      return out;
    });
    EXPECT_EQ(g, c) << quant::type_traits(static_cast<std::uint32_t>(type))->name;
  }
  std::size_t row_bytes = 0;
  const auto bytes = make_table(GgmlType::F32, rows, cols, row_bytes);
  const quant::Matrix table{.type = GgmlType::F32, .data = bytes.data(), .rows = rows, .cols = cols, .row_bytes = row_bytes};
  const std::int32_t bad[] = {1, 10};
  EXPECT_THROW(gpu->embed(table, bad, gpu->allocate(2 * cols)), Error);
}

// Attention through the cache: a prompt batch, then tokens one at a time, compared with the
// CPU after every call.
struct AttentionCase {
  std::int64_t heads, kv_heads, head_dim;
  KvType kv;
  std::int64_t prompt, steps;  // prompt tokens in one call, then single tokens
  backend::AttentionOptions options = {};
};

std::string case_name(const AttentionCase& c) {
  return fmt::format("{}q{}kv d{} {} prompt {} + {}, scale {} softcap {} window {}", c.heads, c.kv_heads, c.head_dim,
                     backend::kv_type_name(c.kv), c.prompt, c.steps, c.options.scale, c.options.softcap, c.options.window);
}

// F32: the same sums in another order, 1e-5. F16: both round keys and values to the same
// halves, 1e-4. Q8_0: the CPU also quantizes each query to 8 bits for its integer dot (the GPU
// keeps it f32), which moves scores by about 1%: 3e-2 of the largest output.
float tolerance(KvType kv) { return kv == KvType::F32 ? 1e-5f : kv == KvType::F16 ? 1e-4f : 3e-2f; }

void check_attention(Backend& cpu, Backend& gpu, const AttentionCase& c) {
  const std::int64_t layers = 2, layer = 1, capacity = c.prompt + c.steps + 3;
  auto cpu_cache = cpu.create_kv_cache(layers, c.kv_heads, c.head_dim, capacity, 1, c.kv);
  auto gpu_cache = gpu.create_kv_cache(layers, c.kv_heads, c.head_dim, capacity, 1, c.kv);
  std::int64_t position = 0;
  std::uint32_t seed = 1000;
  auto call = [&](std::int64_t n) {
    const auto q = random_floats(static_cast<std::size_t>(n * c.heads * c.head_dim), seed++, 2.0f);
    const auto k = random_floats(static_cast<std::size_t>(n * c.kv_heads * c.head_dim), seed++, 2.0f);
    const auto v = random_floats(static_cast<std::size_t>(n * c.kv_heads * c.head_dim), seed++);
    std::vector<std::int32_t> positions(static_cast<std::size_t>(n));
    std::iota(positions.begin(), positions.end(), static_cast<std::int32_t>(position));
    const std::vector<std::int32_t> slots(static_cast<std::size_t>(n), 0);
    position += n;
    const auto out_size = static_cast<std::size_t>(n * c.heads * c.head_dim);
    auto run = [&](Backend& b, backend::KvCache& cache) {
      float* out = b.allocate(out_size);
      b.attention(cache, layer, upload(b, q), upload(b, k), upload(b, v), slots, positions, c.heads, out, c.options);
      return download(b, out, out_size);
    };
    const auto expected = run(cpu, *cpu_cache);
    const auto got = run(gpu, *gpu_cache);
    EXPECT_LE(relative_error(got, expected), tolerance(c.kv)) << case_name(c) << ", " << n << " tokens at " << position - n;
  };
  call(c.prompt);
  for (std::int64_t s = 0; s < c.steps; ++s) call(1);
}

// Several sequences in one cache, as a batched forward pass calls attention: each call holds
// runs of tokens of several slots (a prompt chunk of one, single tokens of others, slots in
// any order), each slot at its own position. `calls` lists per call its (slot, tokens) runs.
using SlotRuns = std::vector<std::pair<std::int32_t, std::int64_t>>;
void check_slot_attention(Backend& cpu, Backend& gpu, std::int64_t heads, std::int64_t kv_heads, std::int64_t head_dim,
                          KvType kv, std::int64_t slots, std::int64_t capacity, const std::vector<SlotRuns>& calls) {
  const std::int64_t layers = 2, layer = 1;
  auto cpu_cache = cpu.create_kv_cache(layers, kv_heads, head_dim, capacity, slots, kv);
  auto gpu_cache = gpu.create_kv_cache(layers, kv_heads, head_dim, capacity, slots, kv);
  std::vector<std::int32_t> next(static_cast<std::size_t>(slots));  // each slot's next position
  std::uint32_t seed = 2000;
  for (std::size_t i = 0; i < calls.size(); ++i) {
    std::vector<std::int32_t> token_slots, positions;
    for (const auto& [slot, count] : calls[i])
      for (std::int64_t t = 0; t < count; ++t) {
        token_slots.push_back(slot);
        positions.push_back(next[static_cast<std::size_t>(slot)]++);
      }
    const auto n = static_cast<std::int64_t>(positions.size());
    const auto q = random_floats(static_cast<std::size_t>(n * heads * head_dim), seed++, 2.0f);
    const auto k = random_floats(static_cast<std::size_t>(n * kv_heads * head_dim), seed++, 2.0f);
    const auto v = random_floats(static_cast<std::size_t>(n * kv_heads * head_dim), seed++);
    const auto out_size = static_cast<std::size_t>(n * heads * head_dim);
    auto run = [&](Backend& b, backend::KvCache& cache) {
      float* out = b.allocate(out_size);
      b.attention(cache, layer, upload(b, q), upload(b, k), upload(b, v), token_slots, positions, heads, out);
      return download(b, out, out_size);
    };
    const auto expected = run(cpu, *cpu_cache);
    const auto got = run(gpu, *gpu_cache);
    EXPECT_LE(relative_error(got, expected), tolerance(kv))
        << heads << "q" << kv_heads << "kv d" << head_dim << " " << backend::kv_type_name(kv) << ", " << slots
        << " slots, call " << i;
  }
}

// Query tiles (16 rows: four tokens of a 4-head group) never straddle two slots: runs of 3 and
// 5 tokens, slots out of order, one slot idle while the others run, decodes of every slot.
TEST_F(CudaOps, AttentionOverSeveralSlotsEqualsCpu) {
  const std::vector<SlotRuns> calls = {
      {{2, 7}, {0, 5}},
      {{0, 1}, {1, 9}, {2, 1}},
      {{3, 3}, {0, 1}, {1, 1}, {2, 5}},
      {{3, 1}, {1, 1}, {0, 1}, {2, 1}},
      {{1, 1}, {3, 1}},
      {{0, 1}, {1, 1}, {2, 1}, {3, 1}},
  };
  for (KvType kv : {KvType::F32, KvType::F16, KvType::Q8_0}) {
    check_slot_attention(*cpu, *gpu, 8, 2, 64, kv, 4, 32, calls);    // GQA
    check_slot_attention(*cpu, *gpu, 6, 1, 96, kv, 4, 32, calls);    // MQA: 6 rows a token
    check_slot_attention(*cpu, *gpu, 4, 4, 128, kv, 4, 32, calls);   // MHA: one row a token
  }
}

// Long sequences in some slots, short in others: generation steps whose positions are split
// over blocks, the short slots' tiles finding some splits empty; then a slot filled to its
// last position (the last slot's, so that a row past it would fall outside the cache).
TEST_F(CudaOps, LongAttentionOverSeveralSlotsEqualsCpu) {
  for (KvType kv : {KvType::F32, KvType::F16, KvType::Q8_0}) {
    const std::vector<SlotRuns> calls = {
        {{0, 300}}, {{1, 40}, {0, 1}}, {{2, 1}, {0, 1}, {1, 1}}, {{1, 1}, {2, 1}, {0, 1}}, {{2, 317}, {1, 1}, {0, 1}},
        {{0, 1}, {1, 1}, {2, 1}}};
    check_slot_attention(*cpu, *gpu, 8, 2, 64, kv, 3, 320, calls);
  }
  check_slot_attention(*cpu, *gpu, 32, 8, 128, KvType::F16, 2, 1300, {{{1, 1200}}, {{0, 1}, {1, 1}}, {{1, 1}, {0, 1}}});
}

TEST_F(CudaOps, AttentionEqualsCpu) {
  for (KvType kv : {KvType::F32, KvType::F16, KvType::Q8_0}) {
    check_attention(*cpu, *gpu, {8, 2, 64, kv, 7, 4});    // GQA
    check_attention(*cpu, *gpu, {4, 4, 128, kv, 7, 3});   // MHA
    check_attention(*cpu, *gpu, {6, 1, 96, kv, 7, 3});    // MQA
    check_attention(*cpu, *gpu, {32, 8, 128, kv, 1, 2});  // Llama 3 8B's heads, from an empty cache
  }
  check_attention(*cpu, *gpu, {8, 2, 80, KvType::F16, 7, 2});  // a head size that is no power of two
}

// Rows moved between a CPU and a GPU cache (a wide pass's CPU layer on the GPU) mean the same
// keys and values there: a prompt stored by the CPU, moved into another layer and slot of the
// GPU's cache, then one more token attends on each over them; and the moved bytes read back
// as they were written.
TEST_F(CudaOps, KvRowsMovedBetweenBackendsAttendAlike) {
  const std::int64_t heads = 8, kv_heads = 2, d = 64, prompt = 5, capacity = 12;
  for (KvType kv : {KvType::F32, KvType::F16, KvType::Q8_0}) {
    auto cpu_cache = cpu->create_kv_cache(1, kv_heads, d, capacity, 1, kv);
    auto gpu_cache = gpu->create_kv_cache(2, kv_heads, d, capacity, 3, kv);
    ASSERT_EQ(cpu_cache->position_bytes(), gpu_cache->position_bytes());
    auto attend = [&](Backend& b, backend::KvCache& cache, std::int64_t layer, std::int32_t slot, std::int64_t n,
                      std::int32_t first, std::uint32_t seed) {
      const auto q = random_floats(static_cast<std::size_t>(n * heads * d), seed, 2.0f);
      const auto k = random_floats(static_cast<std::size_t>(n * kv_heads * d), seed + 1, 2.0f);
      const auto v = random_floats(static_cast<std::size_t>(n * kv_heads * d), seed + 2);
      std::vector<std::int32_t> positions(static_cast<std::size_t>(n));
      std::iota(positions.begin(), positions.end(), first);
      const std::vector<std::int32_t> slots(static_cast<std::size_t>(n), slot);
      float* out = b.allocate(static_cast<std::size_t>(n * heads * d));
      b.attention(cache, layer, upload(b, q), upload(b, k), upload(b, v), slots, positions, heads, out, {});
      return download(b, out, static_cast<std::size_t>(n * heads * d));
    };
    (void)attend(*cpu, *cpu_cache, 0, 0, prompt, 0, 300);
    std::vector<std::uint8_t> rows(static_cast<std::size_t>(prompt * cpu_cache->position_bytes()));
    cpu_cache->read_rows(0, 0, 0, prompt, rows.data());
    gpu_cache->write_rows(1, 2, 0, prompt, rows.data());
    std::vector<std::uint8_t> back(rows.size());
    gpu_cache->read_rows(1, 2, 0, prompt, back.data());
    EXPECT_EQ(back, rows) << backend::kv_type_name(kv);
    const auto expected = attend(*cpu, *cpu_cache, 0, 0, 1, prompt, 400);
    const auto got = attend(*gpu, *gpu_cache, 1, 2, 1, prompt, 400);
    EXPECT_LE(relative_error(got, expected), tolerance(kv)) << backend::kv_type_name(kv);
  }
  EXPECT_THROW(cpu->create_kv_cache(1, 2, 64, 4, 1, KvType::F16)->read_rows(0, 0, 2, 3, nullptr), Error);
}

// Gemma's attention: its own scale, scores soft-capped (a cap low enough to bend them), and a
// sliding window, over prompts longer than the window (whole tiles of keys skipped) and steps
// split over blocks (splits left empty by the window).
TEST_F(CudaOps, AttentionWithScaleSoftcapAndWindowEqualsCpu) {
  const backend::AttentionOptions gemma2{.scale = 1 / std::sqrt(144.0), .softcap = 3.0, .window = 16};
  const backend::AttentionOptions window_only{.scale = 0, .softcap = 0, .window = 40};
  for (KvType kv : {KvType::F32, KvType::F16, KvType::Q8_0}) {
    check_attention(*cpu, *gpu, {8, 4, 64, kv, 40, 4, gemma2});
    check_attention(*cpu, *gpu, {4, 2, 128, kv, 300, 5, window_only});
    check_attention(*cpu, *gpu, {8, 2, 64, kv, 7, 3, {.scale = 0, .softcap = 2.0, .window = 0}});
  }
  check_attention(*cpu, *gpu, {8, 4, 256, KvType::F16, 600, 3, {.scale = 0.0625, .softcap = 50.0, .window = 100}});
}

// Long enough that the positions are split over blocks (and combined): a prompt of 300 (few
// enough rows that it is split too) and generation steps past it; a prompt of 1200 tokens
// with Llama 3 8B's heads (blocks enough without splitting), then steps (split).
TEST_F(CudaOps, LongAttentionSplitOverBlocksEqualsCpu) {
  for (KvType kv : {KvType::F32, KvType::F16, KvType::Q8_0}) check_attention(*cpu, *gpu, {8, 2, 64, kv, 300, 5});
  check_attention(*cpu, *gpu, {32, 8, 128, KvType::F16, 1200, 3});
}

// Steps of one shape are recorded on their second run and replayed after; a replay whose
// operations differ from the recording's (here: another input buffer) runs them directly
// instead. Each step's result against the same additions on the host.
TEST_F(CudaOps, StepsReplayOnlyTheirOwnOperations) {
  const std::size_t n = 4096;
  const auto a = random_floats(n, 11), b = random_floats(n, 12), c = random_floats(n, 13);
  float* x = upload(*gpu, a);
  float* y = upload(*gpu, b);
  float* z = upload(*gpu, c);
  std::vector<float> expected = a;
  const std::vector<float> rope_angles = {1.0f, 0.0f};  // a host input: staged on every step
  const std::vector<float> pair = {1.0f, 2.0f};
  float* r = upload(*gpu, pair);
  for (int step = 0; step < 6; ++step) {
    const bool other = step == 4;  // step 4 adds z where the recording added y
    gpu->run_step(1, step, [&] {
      gpu->rope(r, 1, 1, 2, rope_angles, model::RopeLayout::Interleaved);
      gpu->add(x, other ? z : y, static_cast<std::int64_t>(n));
    });
    for (std::size_t i = 0; i < n; ++i) expected[i] += other ? c[i] : b[i];
    ASSERT_EQ(download(*gpu, x, n), expected) << "step " << step;
  }
  EXPECT_EQ(download(*gpu, r, 2), pair);  // rotated by angle 0, six times
}

TEST_F(CudaOps, BadInputIsAnError) {
  auto cache = gpu->create_kv_cache(1, 2, 64, 8, 2, KvType::F16);
  float* q = gpu->allocate(8 * 64);
  float* kv = gpu->allocate(2 * 64);
  const std::int32_t past_end[] = {8}, slot0[] = {0}, slot2[] = {2}, two[] = {0, 1};
  EXPECT_THROW(gpu->attention(*cache, 0, q, kv, kv, slot0, past_end, 8, q), Error);
  const std::int32_t fine[] = {0};
  EXPECT_THROW(gpu->attention(*cache, 0, q, kv, kv, slot0, fine, 7, q), Error);  // 7 heads cannot share 2
  EXPECT_THROW(gpu->attention(*cache, 1, q, kv, kv, slot0, fine, 8, q), Error);  // the cache has one layer
  EXPECT_THROW(gpu->attention(*cache, 0, q, kv, kv, slot2, fine, 8, q), Error);  // two slots: 0 and 1
  EXPECT_THROW(gpu->attention(*cache, 0, q, kv, kv, two, fine, 8, q), Error);    // a slot per position
  EXPECT_THROW(gpu->create_kv_cache(1, 2, 264, 8, 1, KvType::F16), Error);   // heads up to 256
  EXPECT_THROW(gpu->create_kv_cache(1, 2, 18, 8, 1, KvType::F16), Error);    // a multiple of 4
  EXPECT_THROW(gpu->create_kv_cache(1, 2, 48, 8, 1, KvType::Q8_0), Error);   // q8_0 rows need 32 | head_dim
  EXPECT_THROW(gpu->create_kv_cache(1, 2, 64, 8, 0, KvType::F16), Error);    // no slot
  EXPECT_THROW(gpu->create_kv_cache(1 << 20, 64, 256, 1 << 20, 1, KvType::F32), Error);  // petabytes: out of memory
  // The backend still works after a refused allocation.
  const auto v = random_floats(10, 11);
  EXPECT_EQ(download(*gpu, upload(*gpu, v), v.size()), v);
}

TEST(CudaDevice, NamesAreCheckedAndResolved) {
  EXPECT_EQ(backend::choose_device("cpu").kind, backend::Device::Kind::Cpu);
  for (const char* bad : {"gpu", "cuda:", "cuda:-1", "cuda:1x", "CUDA", "", "cuda0"})
    EXPECT_THROW(backend::choose_device(bad), Error) << bad;
  const auto resolved = backend::choose_device("auto");
  EXPECT_EQ(resolved.kind == backend::Device::Kind::Cuda, why_no_gpu().empty());
  if (why_no_gpu().empty()) {
    EXPECT_EQ(backend::choose_device("cuda:0").kind, backend::Device::Kind::Cuda);
    EXPECT_THROW(backend::choose_device("cuda:4096"), Error);
  } else {
    EXPECT_THROW(backend::choose_device("cuda"), Error);
    EXPECT_THROW(backend::make_backend("cuda:0", 1), Error);
  }
  EXPECT_EQ(backend::make_backend("cpu", 1)->name().rfind("cpu", 0), 0u);
}

}  // namespace
}  // namespace aero::test
