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
//                  the pass's CPU backend computes where it lies.
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

 private:
  bool streamed(std::int64_t layer) const;
  int take_slot();                          // the next slot, round robin
  void load(std::int64_t layer);            // a kept layer into the next slot
  void load_ahead(std::int64_t after);      // the streamed layers after `after`, while slots are free

  model::LayerResidency& inner_;
  std::vector<residency::Placement> placement_;
  std::unique_ptr<backend::WeightRing> ring_;
  std::vector<model::LayerWeights> kept_;   // StreamedToGpu layers, matrices in pinned memory
  std::vector<std::int64_t> order_;         // the layers crossing PCIe, in pass order
  std::vector<std::int64_t> position_;      // per layer: its place in order_ (-1: not streamed)
  std::vector<int> slot_of_;                // per layer: its slot while loaded or bound, else -1
  std::int64_t loaded_ahead_ = 0;           // loads queued and not yet bound
  int next_slot_ = 0;
  std::uint64_t pinned_bytes_ = 0;
};

}  // namespace aero::engine
