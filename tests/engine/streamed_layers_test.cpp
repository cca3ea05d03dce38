// The GPU streaming executor's order of loads, binds and retires (engine/streamed_layers.h),
// checked on the CPU: a backend that computes on the CPU but, like a GPU, reads streamed
// matrices only from the slots of its weight ring. A slot is poisoned when retired and a load
// into a slot still bound or never used is refused, so a layer computed from the wrong slot,
// a stale one or one overwritten too early gives logits other than the resident run's, or an
// error. The resident run is the reference: same kernels, same bytes, bit-identical logits.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <set>

#include "aero/error.h"
#include "engine/hf_reference.h"
#include "engine/streaming_test_support.h"
#include "test_support.h"

namespace aero::test {
namespace {

class HostRing final : public backend::WeightRing {
 public:
  HostRing(int slots, std::uint64_t slot_bytes, int& loads) : loads_(loads), slot_bytes_(slot_bytes), slots_(static_cast<std::size_t>(slots)) {
    for (auto& s : slots_) s.bytes.assign(slot_bytes, 0xA5);
  }
  int slots() const override { return static_cast<int>(slots_.size()); }
  std::uint64_t slot_bytes() const override { return slot_bytes_; }
  std::uint64_t bytes_in_slot(std::span<const quant::Matrix* const> ms) const override {
    std::uint64_t b = 0;
    for (const auto* m : ms) b += static_cast<std::uint64_t>(m->rows) * m->row_bytes;
    return b;
  }
  quant::Matrix keep(const quant::Matrix& m) override {
    kept_.emplace_back(m.data, m.data + static_cast<std::size_t>(m.rows) * m.row_bytes);
    quant::Matrix k = m;
    k.data = kept_.back().data();
    kept_addresses_.insert(k.data);
    return k;
  }
  void load(int slot, std::span<const quant::Matrix* const> ms) override {
    Slot& s = at(slot);
    if (!s.bound.empty()) fail("load into slot {} while it is bound", slot);
    if (s.loaded && !s.was_bound) fail("load into slot {} whose last load was never used", slot);
    if (bytes_in_slot(ms) > slot_bytes_) fail("a layer larger than a slot");
    s.matrices.clear();
    std::size_t off = 0;
    for (const auto* m : ms) {
      const std::size_t n = static_cast<std::size_t>(m->rows) * m->row_bytes;
      std::memcpy(s.bytes.data() + off, m->data, n);
      quant::Matrix in_slot = *m;
      in_slot.data = s.bytes.data() + off;
      s.matrices.push_back(in_slot);
      off += n;
      loaded_ += n;
    }
    s.loaded = true;
    s.was_bound = false;
    ++loads_;
  }
  void bind(int slot, std::span<const quant::Matrix* const> ms) override {
    Slot& s = at(slot);
    if (!s.loaded || ms.size() != s.matrices.size()) fail("bind of slot {}, which holds no such layer", slot);
    for (std::size_t i = 0; i < ms.size(); ++i) {
      if (ms[i]->rows != s.matrices[i].rows || ms[i]->cols != s.matrices[i].cols) fail("slot {} holds other shapes", slot);
      bound_[ms[i]->data] = s.matrices[i];
      s.bound.push_back(ms[i]->data);
    }
    s.was_bound = true;
  }
  void retire(int slot) override {
    Slot& s = at(slot);
    for (const void* h : s.bound) bound_.erase(h);
    s.bound.clear();
    s.loaded = false;
    std::memset(s.bytes.data(), 0xA5, s.bytes.size());  // a later read of this slot is garbage
  }
  std::uint64_t bytes_loaded() const override { return loaded_; }

  // What a product reads for `m`: its slot's copy when bound; a streamed layer's matrix that
  // is not bound is an error (the GPU would read stale memory).
  const quant::Matrix& resolve(const quant::Matrix& m) const {
    if (auto it = bound_.find(m.data); it != bound_.end()) return it->second;
    if (kept_addresses_.count(m.data)) fail("a streamed matrix used while not bound to a slot");
    return m;
  }
 private:
  struct Slot {
    std::vector<std::uint8_t> bytes;
    std::vector<quant::Matrix> matrices;
    std::vector<const void*> bound;
    bool loaded = false, was_bound = true;
  };
  Slot& at(int slot) {
    if (slot < 0 || slot >= slots()) fail("slot {} of {}", slot, slots());
    return slots_[static_cast<std::size_t>(slot)];
  }
  int& loads_;
  std::uint64_t slot_bytes_;
  std::vector<Slot> slots_;
  std::vector<std::vector<std::uint8_t>> kept_;
  std::set<const void*> kept_addresses_;
  std::map<const void*, quant::Matrix> bound_;
  std::uint64_t loaded_ = 0;
};

// The CPU backend, with a HostRing for streamed layers.
class CpuWithRing final : public backend::Backend {
 public:
  CpuWithRing() : cpu_(backend::make_cpu_backend(2)) {}
  std::string name() const override { return "cpu with a weight ring"; }
  std::unique_ptr<backend::WeightRing> create_weight_ring(int slots, std::uint64_t slot_bytes) override {
    auto r = std::make_unique<HostRing>(slots, slot_bytes, loads);
    ring = r.get();
    ring_slots = slots;
    return r;
  }
  float* allocate(std::size_t count) override { return cpu_->allocate(count); }
  void read(const float* src, std::size_t count, float* host) override { cpu_->read(src, count, host); }
  void write(const float* host, std::size_t count, float* dst) override { cpu_->write(host, count, dst); }
  void embed(const quant::Matrix& table, std::span<const std::int32_t> ids, float* out) override { cpu_->embed(table, ids, out); }
  using Backend::matmul;
  void matmul(std::span<const quant::Matrix* const> ws, const float* x, std::int64_t n, std::span<float* const> ys) override {
    std::vector<const quant::Matrix*> resolved;
    for (const auto* w : ws) resolved.push_back(ring ? &ring->resolve(*w) : w);
    cpu_->matmul(resolved, x, n, ys);
  }
  void rms_norm(const float* x, const float* weight, std::int64_t width, std::int64_t rows, double eps, float* y) override {
    cpu_->rms_norm(x, weight, width, rows, eps, y);
  }
  void add_bias(float* x, std::span<const float> bias, std::int64_t rows) override { cpu_->add_bias(x, bias, rows); }
  void add(float* x, const float* y, std::int64_t count) override { cpu_->add(x, y, count); }
  void silu_mul(const float* gate, const float* up, std::int64_t count, float* out) override {
    cpu_->silu_mul(gate, up, count, out);
  }
  void gelu_tanh_mul(const float* gate, const float* up, std::int64_t count, float* out) override {
    cpu_->gelu_tanh_mul(gate, up, count, out);
  }
  void scale(float* x, std::int64_t count, float factor) override { cpu_->scale(x, count, factor); }
  void softcap(float* x, std::int64_t count, float cap) override { cpu_->softcap(x, count, cap); }
  void rope(float* x, std::int64_t n, std::int64_t heads, std::int64_t head_dim, std::span<const float> cos_sin,
            model::RopeLayout layout) override {
    cpu_->rope(x, n, heads, head_dim, cos_sin, layout);
  }
  std::unique_ptr<backend::KvCache> create_kv_cache(std::int64_t layers, std::int64_t kv_heads, std::int64_t head_dim,
                                                    std::int64_t capacity, std::int64_t slots,
                                                    backend::KvType type) override {
    return cpu_->create_kv_cache(layers, kv_heads, head_dim, capacity, slots, type);
  }
  void attention(backend::KvCache& cache, std::int64_t layer, const float* q, const float* k, const float* v,
                 std::span<const std::int32_t> slots, std::span<const std::int32_t> positions, std::int64_t heads,
                 float* out, const backend::AttentionOptions& options) override {
    cpu_->attention(cache, layer, q, k, v, slots, positions, heads, out, options);
  }
  HostRing* ring = nullptr;  // the live ring (a session's)
  int ring_slots = 0, loads = 0;

 private:
  std::unique_ptr<backend::Backend> cpu_;
};

// The prompt in one pass (all logits), then each greedy continuation token alone.
std::vector<std::vector<float>> run(engine::Model& model, backend::Backend& b, const HfReference& ref) {
  engine::Session session(model, b, {.kv_type = backend::KvType::F32});
  std::vector<std::vector<float>> out;
  auto l = session.eval(ref.prompt_ids, true);
  out.emplace_back(l.begin(), l.end());
  for (std::size_t t = ref.prompt_ids.size(); t < ref.greedy_ids.size(); ++t) {
    auto step = session.eval(std::span(ref.greedy_ids).subspan(t - 1, 1));
    out.emplace_back(step.begin(), step.end());
  }
  return out;
}

struct Case {
  const char* name;
  std::vector<residency::Placement> kinds;
  int slots;
  residency::Placement head = kResident;
};

class StreamedLayersOnCpu : public ::testing::TestWithParam<Case> {};

TEST_P(StreamedLayersOnCpu, LogitsAreTheResidentRunsBitForBit) {
  AERO_REQUIRE_SHARED(shared);
  for (const char* fixture : {"llama", "qwen3"}) {
    const auto dir = shared / "fixtures/hf" / fixture;
    const auto ref = HfReference::load(dir);
    auto resident_model = engine::Model::open(dir);
    CpuWithRing plain;
    const auto expected = run(*resident_model, plain, ref);

    auto model = engine::Model::open(dir, {}, {.planner = placing(GetParam().kinds, GetParam().slots, GetParam().head), .disk = {}});
    CpuWithRing streaming;
    const auto got = run(*model, streaming, ref);
    const bool streams = std::any_of(GetParam().kinds.begin(), GetParam().kinds.end(), [](residency::Placement p) {
      return p.compute == residency::Processor::Gpu && p.tier != residency::Tier::GpuResident;
    });
    if (streams) {
      EXPECT_GE(streaming.ring_slots, 1) << fixture;
      EXPECT_LE(streaming.ring_slots, GetParam().slots) << fixture;
      EXPECT_GE(streaming.loads, static_cast<int>(got.size())) << fixture;  // a layer or more each pass
    }
    ASSERT_EQ(got.size(), expected.size());
    for (std::size_t i = 0; i < got.size(); ++i) EXPECT_EQ(got[i], expected[i]) << fixture << ", pass " << i;
  }
}

INSTANTIATE_TEST_SUITE_P(Plans, StreamedLayersOnCpu,
                         ::testing::Values(Case{"all_streamed_two_slots", {kStreamed}, 2},
                                           Case{"all_streamed_one_slot", {kStreamed}, 1},
                                           Case{"resident_and_streamed", {kResident, kStreamed}, 3},
                                           Case{"from_disk", {kFromDisk}, 2},
                                           Case{"every_kind", {kStreamed, kFromDisk, kResident}, 2},
                                           // The split: layers (and the head) computed by a CPU backend of the
                                           // pass's own, x crossing between the two.
                                           Case{"split", {kStreamed, kOnCpu}, 2},
                                           Case{"split_head_on_cpu", {kResident, kOnCpu, kFromDisk}, 2, kOnCpu},
                                           Case{"split_disk_on_cpu", {kDiskOnCpu, kStreamed, kResident}, 2},
                                           Case{"all_on_cpu_but_the_head", {kOnCpu}, 2}),
                         [](const auto& info) { return std::string(info.param.name); });

// A plan that streams the head is refused in one line (the engine does not stream it yet); so
// is streaming to a backend without a ring (the CPU).
TEST(StreamedLayers, PlansTheEngineCannotRunAreErrors) {
  AERO_REQUIRE_SHARED(shared);
  const auto dir = shared / "fixtures/hf/llama";
  auto streamed_head = engine::Model::open(dir, {}, {.planner = placing({kStreamed}, 2, kStreamed), .disk = {}});
  CpuWithRing b;
  EXPECT_THROW(engine::Session(*streamed_head, b), Error);
  auto streamed = engine::Model::open(dir, {}, {.planner = placing({kStreamed}, 2), .disk = {}});
  auto cpu = backend::make_cpu_backend(2);
  try {
    engine::Session s(*streamed, *cpu);
    FAIL() << "a CPU backend took a plan that streams to a GPU";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("streams layers to a GPU"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace aero::test
