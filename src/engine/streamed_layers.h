// The layers a plan does not keep in GPU memory, brought to it pass after pass (issue 26's GPU
// streaming): a LayerResidency over the model's own (resident or disk tier) whose acquire()
// returns a layer whose matrices the backend reads from a slot of its WeightRing.
//
//   StreamedToGpu  kept in pinned host memory (copied there once, here), loaded into the ring
//                  ahead of use: acquiring layer i queues the loads of the streamed layers after
//                  it (the next pass's first ones after the last), as many as the ring has free
//                  slots, so the copy engine brings them while i computes;
//   Disk (GPU)     read by the disk tier when acquired, loaded from its buffer then (no load
//                  goes ahead past a disk layer: its slot must be free when it comes);
//   GpuResident    the model's own layer: the backend uploads it once and keeps it;
//   on the CPU     (a split plan's CpuCompute, or Disk computed there) the model's own, which
//                  the pass's CPU backend computes where it lies — except CpuCompute layers of a
//                  plan with wide passes (Plan::wide_tokens): those are kept in pinned memory
//                  like the streamed ones, computed there by the CPU, and in a wide pass
//                  (set_wide) loaded into the ring and computed by the GPU.
//
// Slots are used round robin in load order; a load waits (on the device) for the computation
// that last read its slot. Same kernels on the same bytes: a streamed run's logits are the
// resident run's, bit for bit.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "aero/backend/backend.h"
#include "aero/model/weights.h"
#include "aero/residency/plan.h"

namespace aero::engine {

class StreamedLayers final : public model::LayerResidency {
 public:
  // Throws aero::Error when the backend cannot stream (the CPU), the plan streams the head,
  // or the GPU's memory or pinned host memory are not there.
  StreamedLayers(model::LayerResidency& inner, const residency::Plan& plan, backend::Backend& backend);
  ~StreamedLayers() override;

  const model::GlobalWeights& globals() const override { return inner_.globals(); }
  const model::LayerWeights& acquire(std::int64_t layer) override;
  void release(std::int64_t layer) override;

  std::uint64_t bytes_loaded() const { return ring_->bytes_loaded(); }
  std::uint64_t pinned_bytes() const { return pinned_bytes_; }

  // Whether the passes from now on are wide: the CPU layers go through the ring too. Between
  // passes only (loads queued ahead for the other kind of pass are dropped).
  void set_wide(bool wide);
  bool wide() const { return wide_; }

 private:
  bool streamed(std::int64_t layer) const;  // through the ring in the current kind of pass
  bool kept(std::int64_t layer) const { return kept_[static_cast<std::size_t>(layer)].q.data != nullptr; }
  int take_slot();                          // the next slot, round robin
  void load(std::int64_t layer);            // a kept layer into the next slot
  void load_ahead(std::int64_t after);      // the streamed layers after `after`, while slots are free

  model::LayerResidency& inner_;
  std::vector<residency::Placement> placement_;
  std::unique_ptr<backend::WeightRing> ring_;
  std::vector<model::LayerWeights> kept_;   // StreamedToGpu layers, matrices in pinned memory
  // The layers crossing PCIe in pass order, and per layer its place there (-1: not crossing):
  // [0] in a narrow pass, [1] in a wide one.
  std::vector<std::int64_t> order_[2];
  std::vector<std::int64_t> position_[2];
  bool wide_ = false;
  std::vector<int> slot_of_;                // per layer: its slot while loaded or bound, else -1
  std::int64_t loaded_ahead_ = 0;           // loads queued and not yet bound
  int next_slot_ = 0;
  std::uint64_t pinned_bytes_ = 0;
};

}  // namespace aero::engine
