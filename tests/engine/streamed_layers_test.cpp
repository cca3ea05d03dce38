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
#include "backend/forwarding_backend.h"
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
  void discard(int slot) override {
    Slot& s = at(slot);
    if (!s.bound.empty()) fail("discard of slot {} while it is bound", slot);
    s.loaded = false;
    s.was_bound = true;
    std::memset(s.bytes.data(), 0xA5, s.bytes.size());
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
class CpuWithRing final : public ForwardingBackend {
 public:
  CpuWithRing() : ForwardingBackend(backend::make_cpu_backend(2)) {}
  std::string name() const override { return "cpu with a weight ring"; }
  std::unique_ptr<backend::WeightRing> create_weight_ring(int slots, std::uint64_t slot_bytes) override {
    auto r = std::make_unique<HostRing>(slots, slot_bytes, loads);
    ring = r.get();
    ring_slots = slots;
    return r;
  }
  using Backend::matmul;
  void matmul(std::span<const quant::Matrix* const> ws, const float* x, std::int64_t n, std::span<float* const> ys) override {
    std::vector<const quant::Matrix*> resolved;
    for (const auto* w : ws) resolved.push_back(ring ? &ring->resolve(*w) : w);
    inner_->matmul(resolved, x, n, ys);
  }
  HostRing* ring = nullptr;  // the live ring (a session's)
  int ring_slots = 0, loads = 0;
};

struct Case {
  const char* name;
  std::vector<residency::Placement> kinds;
  int slots;
  residency::Placement head = kResident;
  std::int64_t wide = 0;  // Plan::wide_tokens
};

class StreamedLayersOnCpu : public ::testing::TestWithParam<Case> {};

TEST_P(StreamedLayersOnCpu, LogitsAreTheResidentRunsBitForBit) {
  AERO_REQUIRE_SHARED(shared);
  for (const char* fixture : {"llama", "qwen3"}) {
    const auto dir = shared / "fixtures/hf" / fixture;
    const auto ref = HfReference::load(dir);
    auto resident_model = engine::Model::open(dir);
    CpuWithRing plain;
    const auto expected = logits_of_greedy_run(*resident_model, plain, ref, backend::KvType::F32);

    auto model = engine::Model::open(dir, {}, {.planner = placing(GetParam().kinds, GetParam().slots, GetParam().head, GetParam().wide),
                                                      .disk = {}});
    CpuWithRing streaming;
    const auto got = logits_of_greedy_run(*model, streaming, ref, backend::KvType::F32);
    const bool streams = std::any_of(GetParam().kinds.begin(), GetParam().kinds.end(), [](residency::Placement p) {
      return p.compute == residency::Processor::Gpu && p.tier != residency::Tier::GpuResident;
    });
    if (streams) {
      EXPECT_GE(streaming.ring_slots, 1) << fixture;
      EXPECT_LE(streaming.ring_slots, GetParam().slots) << fixture;
      EXPECT_GE(streaming.loads, static_cast<int>(got.size())) << fixture;  // a layer or more each pass
    }
    if (GetParam().wide > 0) {  // the CPU layers did cross in the wide passes: more loads than without them
      auto narrow_model = engine::Model::open(dir, {}, {.planner = placing(GetParam().kinds, GetParam().slots, GetParam().head), .disk = {}});
      CpuWithRing narrow;
      (void)logits_of_greedy_run(*narrow_model, narrow, ref, backend::KvType::F32);
      EXPECT_GT(streaming.loads, narrow.loads) << fixture;
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
                                           Case{"all_on_cpu_but_the_head", {kOnCpu}, 2},
                                           // Wide passes: the prompt's pass computes the CPU layers on
                                           // the "GPU" (their KV rows moved to the CPU's cache after it);
                                           // with wide 1 every pass does (the earlier rows moved there first).
                                           Case{"split_wide_prompt", {kStreamed, kOnCpu}, 2, kResident, 2},
                                           Case{"split_every_pass_wide", {kOnCpu, kStreamed, kResident}, 2, kResident, 1},
                                           Case{"cpu_layers_only_wide", {kResident, kOnCpu}, 2, kOnCpu, 2}),
                         [](const auto& info) { return std::string(info.param.name); });

// Narrow passes, then a wide one, then narrow ones again, over one sequence: a wide pass reads the
// rows the CPU wrote (moved to the GPU's one-layer cache first), and the CPU reads the wide pass's
// rows afterwards. Every position's logits are the resident run's.
TEST(StreamedLayers, WidePassesBetweenNarrowOnesKeepTheCache) {
  AERO_REQUIRE_SHARED(shared);
  const auto dir = shared / "fixtures/hf/llama";
  const auto ref = HfReference::load(dir);
  ASSERT_GE(ref.input_ids.size(), 6u);
  // The same pieces through the resident model and the split one (pieces of one token and of
  // several run different kernels: each is compared with its own kind).
  auto run_in_pieces = [&](engine::Model& model) {
    CpuWithRing b;
    engine::Session session(model, b, {.kv_type = backend::KvType::F32});
    std::vector<float> all;
    const std::size_t cuts[] = {0, 1, 2, 5, ref.input_ids.size()};  // 1, 1 (narrow), 3 (wide), the rest
    for (std::size_t c = 0; c + 1 < std::size(cuts); ++c) {
      const auto part = session.eval(std::span(ref.input_ids).subspan(cuts[c], cuts[c + 1] - cuts[c]), true);
      all.insert(all.end(), part.begin(), part.end());
    }
    return all;
  };
  auto resident = engine::Model::open(dir);
  const auto expected = run_in_pieces(*resident);
  auto model = engine::Model::open(dir, {}, {.planner = placing({kOnCpu, kStreamed}, 2, kResident, 3), .disk = {}});
  const auto got = run_in_pieces(*model);
  const auto vocab = static_cast<std::size_t>(ref.vocab);
  ASSERT_EQ(got.size(), expected.size());
  for (std::size_t t = 0; t < ref.input_ids.size(); ++t)
    EXPECT_TRUE(std::equal(got.begin() + t * vocab, got.begin() + (t + 1) * vocab, expected.begin() + t * vocab))
        << "position " << t;
}

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
